"""An in-process runtime for API tests: each 'container' is a tiny echo HTTP server on a thread.

/ping answers 200; /invocations echoes the body with its Content-Type and Custom-Attributes, a body
of `fail` answers 500 and `bad` 400, so routing and error paths are testable without Docker or
programs. Training jobs do not run on it (they wait in Starting until stopped).
"""

from __future__ import annotations

import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from emulator.runtime.base import Runtime, ServerProcess, ServerSpec


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # one write per answer: no Nagle/delayed-ACK stall between headers and body
    disable_nagle_algorithm = True

    def log_message(self, *args):  # quiet
        self.server.output.put(f"{self.command} {self.path}")

    def do_GET(self):
        self._answer(200 if self.path == "/ping" else 404, b"", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/invocations":
            return self._answer(404, b"no such path", "text/plain")
        if body == b"fail":
            return self._answer(500, b"the model failed", "text/plain")
        if body == b"bad":
            return self._answer(400, b"bad input", "text/plain")
        extra = {}
        if self.headers.get("X-Amzn-SageMaker-Custom-Attributes"):
            extra["X-Amzn-SageMaker-Custom-Attributes"] = self.headers["X-Amzn-SageMaker-Custom-Attributes"]
        extra["X-Echo-Instance"] = self.server.instance_id
        self._answer(200, body, self.headers.get("Content-Type", "application/octet-stream"), extra)

    def _answer(self, status, body, content_type, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


class FakeServer(ServerProcess):
    def __init__(self, spec: ServerSpec):
        self.spec = spec
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        self.httpd.daemon_threads = True
        self.httpd.output = queue.Queue()
        self.httpd.instance_id = spec.instance_id
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._code: int | None = None
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.httpd.output.put(f"echo server for {spec.endpoint}/{spec.variant} on {self.url}")

    def lines(self) -> Iterator[str]:
        while self._code is None:
            try:
                yield self.httpd.output.get(timeout=0.2)
            except queue.Empty:
                continue

    def exit_code(self) -> int | None:
        return self._code

    def stop(self, grace_seconds: float) -> None:
        self.kill(0)
        self.removed = True

    def kill(self, code: int = 137) -> None:
        """Tests use this to simulate a container that died."""
        if self._code is None:
            self._code = code
            self.httpd.shutdown()
            self.httpd.server_close()


class FakeRuntime(Runtime):
    name = "fake"

    def __init__(self):
        super().__init__()
        self.servers: dict[str, FakeServer] = {}
        # Tests clear the gate to hold servers "starting", so in-flight states can be observed.
        self.gate = threading.Event()
        self.gate.set()
        self.fail_images: set[str] = set()  # images whose servers never turn healthy

    def start_server(self, spec: ServerSpec) -> ServerProcess:
        self.gate.wait(timeout=60)
        server = FakeServer(spec)
        if spec.image in self.fail_images:
            server.kill(1)
        self.servers[spec.instance_id] = server
        return self._track(server)
