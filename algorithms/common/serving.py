"""The `serve` program every built-in algorithm shares: load the model once, then answer
`GET /ping`, `POST /invocations` and `GET /execution-parameters` on $SAGEMAKER_BIND_TO_PORT.

Content negotiation goes through algorithms.io's tables: an unsupported Content-Type answers 415,
an unsupported Accept 406, a malformed body 400 — which SageMaker Runtime turns into ModelError.
An algorithm may override the whole exchange with `respond(model, body, content_type, accept)`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from algorithms.common import contract, logs
from algorithms.io import DataFormatError, UnsupportedContentTypeError, decode_request, encode_response

MAX_PAYLOAD = int(os.environ.get("SAGEMAKER_MAX_PAYLOAD_IN_MB", "6")) * 1024 * 1024 + 64 * 1024


def respond(spec, model, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, bytes, str]:
    """(status, body, content type) for one invocation, via the spec's predict()."""
    custom = getattr(spec, "respond", None)
    if custom is not None:
        return custom(model, body, content_type, accept)
    if not body:
        return 204, b"", "text/plain"
    try:
        batch = decode_request(body, content_type, supported=spec.request_types, default=spec.default_content_type)
    except UnsupportedContentTypeError as exc:
        return 415, str(exc).encode(), "text/plain"
    except DataFormatError as exc:
        return 400, f"Unable to parse the request: {exc}".encode(), "text/plain"
    try:
        columns = spec.predict(model, batch, accept)
        payload, mime = encode_response(columns, accept, supported=spec.response_types,
                                        default=spec.default_accept, json_key=spec.json_key)
    except UnsupportedContentTypeError as exc:
        return 406, str(exc).encode(), "text/plain"
    except (DataFormatError, ValueError) as exc:
        return 400, f"Unable to score the request: {exc}".encode(), "text/plain"
    return 200, payload, mime


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # one write per answer: no Nagle stall between headers and body
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/ping":
            return self._answer(200, b"", "text/plain")
        if self.path == "/execution-parameters":
            document = {"MaxConcurrentTransforms": os.cpu_count() or 1, "BatchStrategy": "MULTI_RECORD",
                        "MaxPayloadInMB": 6}
            return self._answer(200, json.dumps(document).encode(), "application/json")
        self._answer(404, b"Not found", "text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if self.path != "/invocations":
            return self._answer(404, b"Not found", "text/plain")
        if length > MAX_PAYLOAD:
            self.rfile.read(length)
            return self._answer(413, b"Request payload too large", "text/plain")
        body = self.rfile.read(length)
        try:
            status, payload, mime = respond(self.server.spec, self.server.model, body,
                                            self.headers.get("Content-Type"), self.headers.get("Accept"))
        except Exception as exc:  # a bug of ours: 500 with the reason, and keep serving
            logs.error(f"invocation failed: {type(exc).__name__}: {exc}")
            status, payload, mime = 500, f"{type(exc).__name__}: {exc}".encode(), "text/plain"
        self._answer(status, payload, mime)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(spec) -> int:
    model = spec.load(contract.MODEL)
    server = ThreadingHTTPServer(("0.0.0.0", contract.serving_port()), _Handler)
    server.daemon_threads = True
    server.spec, server.model = spec, model
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    logs.info(f"{spec.name} serving on port {contract.serving_port()}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    print("run `python -m algorithms.<name> serve`", file=sys.stderr)
