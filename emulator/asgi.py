"""The ASGI application on smlocal's port: InvokeEndpoint on the event loop, everything else to the
WSGI gateway in a thread pool.

Why two paths: InvokeEndpoint is the data plane, called as fast as clients can; everything else
(SageMaker's control plane, S3 through moto, Logs, STS) is the control plane. Under a threaded WSGI
server an invocation cost ~1.3 ms of smlocal's CPU (server, WSGI, a worker thread's hand-offs) on top
of the container's own work — three times the container's cost for a small model, and under the GIL
that capped every endpoint at a third of its own throughput. On the loop, an invocation is parsed by
httptools, validated by the same botocore-model reader (`restjson`), routed, forwarded over a
keep-alive connection and answered without a thread switch.

The plain invocation (a Content-Length body within 6 MB) does not even reach this ASGI application:
smlocal's HTTP protocol (emulator/http_protocol.py) calls `Front.start` from the connection itself,
skipping uvicorn's ASGI cycle, and gets the answer back by callback (no task, no future). What comes
here is every other request, and the invocations that need uvicorn's handling (chunked bodies,
`Expect: 100-continue`, a body declared too large).

The WSGI side is unchanged: `Gateway` runs under a2wsgi's thread pool (request bodies streamed to it,
answers streamed back), so the control plane's handlers stay plain blocking code.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import urllib.parse
from typing import Callable

from a2wsgi import WSGIMiddleware

from emulator import errors
from emulator.aws import identity
from emulator.callbacks import settler
from emulator.context import RequestContext
from emulator.gateway import MAX_BODY, new_request_id, request_context, signed_for_sagemaker
from emulator.protocol import restjson
from emulator.protocol.http import HttpRequest, HttpResponse

log = logging.getLogger("smlocal.gateway")
SERVICE = "sagemaker-runtime"

# Request headers that a client changes from call to call without changing what is asked: the
# body's length, and a signed call's signature, time and SDK bookkeeping. They stay out of a call's
# shape (see `Shape`); the length and the Authorization are read per call.
PER_CALL_HEADERS = frozenset({b"content-length", b"authorization", b"x-amz-date", b"amz-sdk-invocation-id",
                              b"amz-sdk-request"})
SHAPES = 256  # distinct shapes remembered (a client repeats a handful; a changing value just misses)
SHAPE_BYTES = 16 * 1024  # a larger path and headers are read afresh on every call, never remembered


class ShapeTooLarge(Exception):
    """Raised by `shape_of` instead of remembering a large shape: headers have no size limit here."""


class Front:
    """ASGI: InvokeEndpoint → `invoke`; anything else → the WSGI gateway."""

    def __init__(self, wsgi_app, runtime_provider, threads: int):
        self.wsgi = WSGIMiddleware(wsgi_app, workers=threads)
        self.runtime = runtime_provider

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and is_invocation_scope(scope):
            await self.invoke(scope, receive, send)
        else:
            await self.wsgi(scope, receive, send)

    def close(self) -> None:
        self.wsgi.executor.shutdown(wait=False, cancel_futures=True)

    async def invoke(self, scope, receive, send) -> None:
        headers = header_dict(scope["headers"])
        try:
            body = await _body(receive, headers)
        except errors.ServiceError as err:
            await send_response(send, restjson.serialize_error(err, request_context(SERVICE, headers).request_id))
            return
        await send_response(send, await self.answer(scope["path"], scope["query_string"], headers, body))

    def start_shaped(self, shape: Shape, scope: tuple, body: bytes, done: Callable[[HttpResponse], None]) -> None:
        """`start` for a call whose shape was read and checked before (`shape_of`), signed by the
        credential `scope` (access key, region, service; Nones when unsigned): the same answer,
        without reading the path and the headers again."""
        ctx = RequestContext(identity.account_for(scope[0], shape.headers), identity.region_for(scope[1]), SERVICE,
                             "InvokeEndpoint", new_request_id(), shape.headers)
        self._start(ctx, shape.op, {**shape.params, "Body": body}, done)

    def start(self, path: str, query: bytes, headers: dict[str, str], body: bytes,
              done: Callable[[HttpResponse], None]) -> None:
        """InvokeEndpoint's whole answer (an AWS error included) to one request, handed to `done`
        once the container has answered — or at once, for a call refused before it is sent. The
        same for the ASGI path and the connection-level one (emulator/http_protocol.py)."""
        ctx = request_context(SERVICE, headers)
        ctx.operation = "InvokeEndpoint"
        try:
            op, params = _read_call(path, query, headers, body)
        except Exception as exc:
            done(_failure(ctx, exc))
            return
        self._start(ctx, op, params, done)

    async def answer(self, path: str, query: bytes, headers: dict[str, str], body: bytes) -> HttpResponse:
        """`start`, awaited."""
        answered = asyncio.get_running_loop().create_future()
        settle = settler(answered)
        self.start(path, query, headers, body, lambda response: settle(response, None))
        return await answered

    def _start(self, ctx: RequestContext, op, params: dict, done: Callable[[HttpResponse], None]) -> None:
        """Serve the call; its answer, or its error as AWS answers it, goes to `done`."""

        def served(result: dict | None, exc: BaseException | None) -> None:
            try:
                response = restjson.serialize(op, result, ctx.request_id) if exc is None else _failure(ctx, exc)
            except Exception as failure:  # a bug of ours in the answer: say so, keep serving
                response = _failure(ctx, failure)
            done(response)

        try:
            self.runtime.start_invoke_endpoint(ctx, params, served)
        except Exception as exc:  # refused before anything was sent
            done(_failure(ctx, exc))


def _failure(ctx: RequestContext, exc: BaseException) -> HttpResponse:
    """An error as AWS answers it; anything but a ServiceError is a bug of ours: logged, answered as
    an internal error."""
    if isinstance(exc, errors.ServiceError):
        return restjson.serialize_error(exc, ctx.request_id)
    log.error("%s InvokeEndpoint failed", SERVICE, exc_info=exc)
    return restjson.serialize_error(errors.internal(), ctx.request_id)


def _read_call(path: str, query: bytes, headers: dict[str, str], body: bytes) -> tuple:
    """(operation, checked parameters) of an InvokeEndpoint read from the wire."""
    request = _post(path, query, headers, body)
    op, labels = restjson.route(SERVICE, request)
    return op, restjson.parse(op, request, labels)


def _post(path: str, query: bytes, headers: dict[str, str], body: bytes) -> HttpRequest:
    return HttpRequest(method="POST", path=path, headers=headers, body=body,
                       query=urllib.parse.parse_qs(query.decode("latin-1")) if query else {})


class Shape:
    """What every InvokeEndpoint with the same path, query and headers (but `PER_CALL_HEADERS`)
    shares, worked out once: the headers as text, the operation, and the checked parameters but the
    Body (None when they are not valid: such a call goes the whole way through `answer`, which
    refuses it with AWS's error each time)."""

    __slots__ = ("path", "query", "headers", "op", "params")

    def __init__(self, path: str, query: bytes, headers: dict[str, str]):
        self.path, self.query, self.headers = path, query, headers
        self.op, self.params = None, None


@functools.lru_cache(maxsize=SHAPES)
def shape_of(url: bytes, pairs: tuple) -> Shape | None:
    """The shape of a POST to `url` with these header pairs (lower-case names, PER_CALL_HEADERS left
    out); None unless it is a plain InvokeEndpoint (a chunked body, an escaped path that uvicorn
    unquotes, another operation). Whether it is signed for SageMaker is the Authorization's to say,
    per call. Raises ShapeTooLarge above SHAPE_BYTES (so that nothing is remembered)."""
    if len(url) + sum(len(name) + len(value) for name, value in pairs) > SHAPE_BYTES:
        raise ShapeTooLarge
    path, _, query = url.partition(b"?")
    headers = header_dict(pairs)
    if b"%" in path or "transfer-encoding" in headers:
        return None
    path = path.decode("latin-1")
    if not is_invoke_endpoint("POST", path, None):
        return None
    shape = Shape(path, query, headers)
    request = _post(path, query, headers, b"")
    try:
        shape.op, labels = restjson.route(SERVICE, request)
        shape.params = restjson.parse_without_payload(shape.op, request, labels)
    except errors.ServiceError:
        shape.params = None
    return shape


def is_invoke_endpoint(method: str, path: str, authorization: str | None) -> bool:
    """POST /endpoints/<name>/invocations signed for sagemaker (or unsigned). Its siblings
    (…/invocations-response-stream, …/async-invocations) stream or run later: WSGI serves them."""
    if method != "POST" or not path.startswith("/endpoints/") or not path.endswith("/invocations"):
        return False
    if path.count("/") != 3:
        return False
    return authorization is None or signed_for_sagemaker(authorization)


def is_invocation_scope(scope) -> bool:
    authorization = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"),
                         None)
    return is_invoke_endpoint(scope["method"], scope["path"], authorization)


def header_dict(pairs) -> dict[str, str]:
    """(name, value) byte pairs, names lower-case already (ASGI's and uvicorn's), as one dict; a
    repeated header's values joined with commas."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


async def _body(receive, headers: dict[str, str]) -> bytes:
    """The whole request body, refused before it is read when it says it is too large."""
    try:
        declared = int(headers.get("content-length") or 0)
    except ValueError:
        raise errors.serialization("Content-Length is not a number.") from None
    if declared > MAX_BODY:
        raise too_large(f"of {declared} bytes ")
    pieces, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise errors.serialization("The client went away before sending the whole body.")
        piece = message.get("body", b"")
        size += len(piece)
        if size > MAX_BODY:  # a chunked body declares no length
            raise too_large("")
        pieces.append(piece)
        if not message.get("more_body"):
            return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def too_large(size: str) -> errors.ServiceError:
    return errors.ServiceError("ValidationError", f"Request body {size}exceeds the limit of {MAX_BODY} bytes "
                               "(a real-time endpoint takes at most 6 MB).")


async def send_response(send, response: HttpResponse) -> None:
    """An HttpResponse as ASGI messages (its Content-Length included)."""
    body = bytes(response.body)
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
