"""smlocal's HTTP/1.1 protocol: uvicorn's httptools protocol, with InvokeEndpoint answered on the
connection itself.

Why: on a small machine an endpoint under load is CPU-bound, and every microsecond smlocal spends per
call is taken from the clients and the container. uvicorn's ASGI cycle costs more CPU per request
than all of InvokeEndpoint's own work (a scope, a RequestResponseCycle with an Event, receive/send
messages, per-header checks, the head and the body in two writes). Here the plain invocation — POST
/endpoints/<name>/invocations with a Content-Length within 6 MB — is parsed by the same httptools
parser, answered by the same `Front.start` the ASGI path uses, and written in one piece. What a
client repeats call after call — the path, the query and the headers but the per-call ones (the
body's length, a signature and its time) — is its call's *shape*, read and checked once
(`asgi.shape_of`); a call of a known shape goes straight to `Front.start_shaped`. No task runs the
call: the container's answer comes back through callbacks, and the answer is written from the
container connection's own `data_received`.

Everything else keeps uvicorn's own handling and reaches `asgi.Front` unchanged: every other
operation, chunked or `Expect: 100-continue` bodies, bodies declared too large (Front refuses them
before reading), protocol upgrades. Requests pipelined behind an invocation queue in uvicorn's
pipeline as they would behind any request, so answers keep their order.
"""

from __future__ import annotations

import functools
import logging

from uvicorn.protocols.http.httptools_impl import HEADER_VALUE_RE, STATUS_LINE, HttpToolsProtocol

from emulator.asgi import PER_CALL_HEADERS, ShapeTooLarge, header_dict, is_invoke_endpoint, shape_of
from emulator.aws import identity
from emulator.gateway import MAX_BODY
from emulator.protocol.http import HttpResponse

log = logging.getLogger("smlocal.gateway")


_INTERNAL_ERROR = (b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error")


class _NoEvent:
    """uvicorn sets its cycle's message event when a connection drops; ours has nobody waiting."""

    @staticmethod
    def set() -> None:
        pass


class _Invocation:
    """One InvokeEndpoint on the connection, standing where uvicorn keeps its request cycle (so
    pipelining, connection loss and shutdown treat it as they treat any request)."""

    __slots__ = ("shape", "scope", "path", "query", "headers", "body", "keep_alive", "received", "turn",
                 "response_complete", "disconnected", "protocol")
    message_event = _NoEvent

    def __init__(self, path: str, query: bytes, headers: dict[str, str] | None, keep_alive: bool,
                 shape=None, scope: tuple = ()):
        """Either a checked `shape` and the caller's credential `scope`, or the `path`, `query` and
        `headers` for `Front.start` to read."""
        self.path, self.query, self.headers, self.keep_alive = path, query, headers, keep_alive
        self.shape, self.scope = shape, scope
        self.body: list[bytes] = []
        self.received = False  # the whole body is in
        self.turn = False  # every request before it on the connection is answered
        self.response_complete = False
        self.disconnected = False
        self.protocol: HttpProtocol | None = None  # the connection, once the call has started

    def answer(self, response: HttpResponse) -> None:
        """`Front`'s answer to this call (the callback it is given)."""
        self.protocol._answer(self, response)


class HttpProtocol(HttpToolsProtocol):
    """Set `front` (an `asgi.Front`) on a subclass before uvicorn creates connections, and
    `data_plane` (emulator/data_plane.py) where workers may take InvokeEndpoint's connections."""

    front = None
    data_plane = None
    first_read = True  # until the connection's first bytes have come
    _defaults, _defaults_lines = None, b""  # uvicorn's default headers, and as lines (`_default_lines`)

    def data_received(self, data: bytes) -> None:
        if self.first_read:
            self.first_read = False
            if self.data_plane is not None and self.data_plane.hand_off(self.transport, data):
                return  # a data-plane worker serves this connection now
        super().data_received(data)

    def on_message_begin(self) -> None:
        """uvicorn's start of a request but its ASGI scope, which only a request that uvicorn's
        cycle serves needs (`_asgi_scope`, called before uvicorn reads the scope)."""
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = None
        self.shape_pairs: list[tuple[bytes, bytes]] = []  # the headers but PER_CALL_HEADERS
        self.per_call: list[tuple[bytes, bytes]] = []

    def _asgi_scope(self) -> None:
        """uvicorn's own scope for this request, around the URL and headers read so far."""
        url, headers, expect_100_continue = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect_100_continue
        self.headers = self.scope["headers"] = headers

    def on_header(self, name: bytes, value: bytes) -> None:
        """uvicorn's header handling (lower-case name, trailing whitespace dropped, Expect noticed),
        with each header also sorted into the call's shape or its per-call part."""
        name = name.lower()
        value = value.rstrip(b" \t")
        pair = (name, value)
        if name in PER_CALL_HEADERS:
            self.per_call.append(pair)
        else:
            if name == b"expect" and value.lower() == b"100-continue":
                self.expect_100_continue = True
            self.shape_pairs.append(pair)
        self.headers.append(pair)

    def on_headers_complete(self) -> None:
        invocation = self._plain_invocation()
        if invocation is None:
            self._asgi_scope()
            super().on_headers_complete()
            return
        previous, self.cycle = self.cycle, invocation
        invocation.turn = previous is None or previous.response_complete
        if not invocation.turn:  # pipelined behind an unanswered request: wait in uvicorn's queue
            self.flow.pause_reading()
            self.pipeline.appendleft((invocation, None))

    def on_body(self, body: bytes) -> None:
        if type(self.cycle) is _Invocation:
            self.cycle.body.append(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if type(cycle) is not _Invocation:
            super().on_message_complete()
            return
        cycle.received = True
        if cycle.turn:
            self._start(cycle)

    def _start_asgi_task(self, cycle, app) -> None:
        """uvicorn starts the next pipelined request here once the one before it is answered."""
        if type(cycle) is not _Invocation:
            super()._start_asgi_task(cycle, app)
            return
        cycle.turn = True
        if cycle.received:
            self._start(cycle)

    # -- keep-alive -------------------------------------------------------------------------------
    # uvicorn makes a timer for the keep-alive timeout after every answer, which the next request
    # cancels: two timer operations per call. Here one timer per connection looks at how long the
    # connection has been idle when it fires, and is made again only for what is left.

    idle_since: float | None = None  # loop time of the last answer, while no request has come since
    keep_alive_timer = None

    def on_response_complete(self) -> None:
        """uvicorn's (count the request, resume reading, start the next pipelined request), with
        the lazy keep-alive timer."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self.idle_since = self.loop.time()
        if self.keep_alive_timer is None:
            self.keep_alive_timer = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_check)

    def _unset_keepalive_if_required(self) -> None:
        """Data came (or the connection went): not idle."""
        self.idle_since = None
        if self.timeout_keep_alive_task is not None:  # uvicorn's own timer, should anything still make one
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def _keep_alive_check(self) -> None:
        self.keep_alive_timer = None
        if self.idle_since is None:
            return  # busy: the next answer starts the timer again
        left = self.idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.keep_alive_timer = self.loop.call_later(left, self._keep_alive_check)
        else:
            self.timeout_keep_alive_handler()

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        if self.keep_alive_timer is not None:  # a closed connection is not kept for its timer
            self.keep_alive_timer.cancel()
            self.keep_alive_timer = None

    # -- the invocation ---------------------------------------------------------------------------

    def _plain_invocation(self) -> _Invocation | None:
        url = self.url
        if (not url.startswith(b"/endpoints/") or self.expect_100_continue or self.parser.get_method() != b"POST"
                or self.parser.should_upgrade()):
            return None
        return self._shaped_invocation(url) or self._read_invocation(url)

    def _shaped_invocation(self, url: bytes) -> _Invocation | None:
        """The common call: its shape checked before (or now, once). None for anything unusual — a
        repeated per-call header, a shape that is not valid — which `_read_invocation` reads whole."""
        per_call = dict(self.per_call)
        length = per_call.get(b"content-length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY or len(per_call) != len(self.per_call):
            return None
        try:
            shape = shape_of(url, tuple(self.shape_pairs))
        except ShapeTooLarge:
            return None
        if shape is None or shape.params is None:
            return None
        authorization = per_call.get(b"authorization")
        scope = identity.credential_scope(authorization.decode("latin-1")) if authorization is not None else _UNSIGNED
        if scope[2] not in (None, "sagemaker"):
            return None
        return _Invocation(shape.path, shape.query, None, self._keep_alive(), shape, scope)

    def _read_invocation(self, url: bytes) -> _Invocation | None:
        pairs = self.headers  # names are lower-case already
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in pairs}
        if len(headers) != len(pairs):  # a repeated header: its values joined, as the ASGI path does
            headers = header_dict(pairs)
        length = headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY or "transfer-encoding" in headers:
            return None
        path, _, query = url.partition(b"?")
        if b"%" in path:
            return None  # uvicorn unquotes it
        path = path.decode("latin-1")
        if not is_invoke_endpoint("POST", path, headers.get("authorization")):
            return None
        return _Invocation(path, query, headers, self._keep_alive())

    def _keep_alive(self) -> bool:
        """HTTP/1.1 keeps the connection unless asked not to; 1.0 closes it after the answer."""
        return self.parser.should_keep_alive() and self.parser.get_http_version() != "1.0"

    def _start(self, cycle: _Invocation) -> None:
        body = cycle.body[0] if len(cycle.body) == 1 else b"".join(cycle.body)
        cycle.protocol = self
        if cycle.shape is not None:
            self.front.start_shaped(cycle.shape, cycle.scope, body, cycle.answer)
        else:
            self.front.start(cycle.path, cycle.query, cycle.headers, body, cycle.answer)

    def _answer(self, cycle: _Invocation, response: HttpResponse) -> None:
        """Write the answer in one piece, then go on as uvicorn does after a response."""
        if cycle.disconnected or self.transport.is_closing():
            return
        try:
            answer = self._encode(response, cycle.keep_alive)
        except ValueError:  # as uvicorn answers an application's invalid header
            log.exception("InvokeEndpoint's answer cannot be sent")
            answer, cycle.keep_alive = _INTERNAL_ERROR, False
        self.transport.write(answer)
        cycle.response_complete = True
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()

    def _encode(self, response: HttpResponse, keep_alive: bool) -> bytes:
        """Status line, headers and body in one buffer, with uvicorn's default headers (its Date).
        The header lines but the request id (which AWS answers lead with, new on every call) repeat
        from call to call, so each distinct set is encoded and checked once (`_header_lines`)."""
        body = bytes(response.body)
        headers = response.headers
        first = b""
        if headers and headers[0][0] == "x-amzn-RequestId":
            request_id = headers[0][1].encode("latin-1")
            if HEADER_VALUE_RE.search(request_id):
                raise ValueError(f"invalid request id {request_id!r}")
            first, headers = b"x-amzn-requestid: " + request_id + b"\r\n", headers[1:]
        try:
            lines = _remembered_lines(tuple(headers))
        except _TooLarge:
            lines = _header_lines(headers)
        return b"".join((STATUS_LINE[response.status], self._default_lines(), first, lines,
                         b"content-length: %d\r\n" % len(body), b"" if keep_alive else b"connection: close\r\n",
                         b"\r\n", body))

    def _default_lines(self) -> bytes:
        """uvicorn's default headers as lines; its server loop puts a new list in place when the Date
        changes (once a second), so the lines are joined again only then."""
        defaults = self.server_state.default_headers
        if defaults is not self._defaults:
            self._defaults = defaults
            self._defaults_lines = b"".join(name + b": " + value + b"\r\n" for name, value in defaults)
        return self._defaults_lines


class _TooLarge(Exception):
    pass


@functools.lru_cache(maxsize=256)
def _remembered_lines(headers: tuple) -> bytes:
    """`_header_lines`, remembered unless they are large (a container's header values have no
    size limit) or refused (ValueError)."""
    if sum(len(name) + len(value) for name, value in headers) > 8 * 1024:
        raise _TooLarge
    return _header_lines(headers)


def _header_lines(headers) -> bytes:
    """Answer headers as uvicorn writes them (lower-case names); a value uvicorn would refuse raises
    ValueError."""
    lines = []
    for name, value in headers:
        encoded = value.encode("latin-1")
        if HEADER_VALUE_RE.search(encoded):
            raise ValueError(f"invalid response header value {name}: {value!r}")
        lines.append(name.lower().encode("latin-1") + b": " + encoded + b"\r\n")
    return b"".join(lines)


_UNSIGNED = (None, None, None)  # the credential scope of an unsigned call


def protocol_for(front, data_plane=None) -> type[HttpProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to this server's front (and
    its data-plane workers, if any)."""
    return type("SmlocalHttpProtocol", (HttpProtocol,), {"front": front, "data_plane": data_plane})

