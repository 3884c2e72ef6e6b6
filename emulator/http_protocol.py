"""smlocal's HTTP/1.1 protocol: uvicorn's httptools protocol, with InvokeEndpoint answered on the
connection itself.

Why: on a small machine an endpoint under load is CPU-bound, and every microsecond smlocal spends per
call is taken from the clients and the container. uvicorn's ASGI cycle costs more CPU per request
than all of InvokeEndpoint's own work (a scope, a RequestResponseCycle with an Event, receive/send
messages, per-header checks, the head and the body in two writes). Here the plain invocation — POST
/endpoints/<name>/invocations with a Content-Length within 6 MB — is parsed by the same httptools
parser, answered by the same `Front.answer` the ASGI path uses, and written in one piece.

Everything else keeps uvicorn's own handling and reaches `asgi.Front` unchanged: every other
operation, chunked or `Expect: 100-continue` bodies, bodies declared too large (Front refuses them
before reading), protocol upgrades. Requests pipelined behind an invocation queue in uvicorn's
pipeline as they would behind any request, so answers keep their order.
"""

from __future__ import annotations

import logging

from uvicorn.protocols.http.httptools_impl import HEADER_VALUE_RE, STATUS_LINE, HttpToolsProtocol

from emulator.asgi import is_invoke_endpoint
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

    __slots__ = ("path", "query", "headers", "body", "keep_alive", "received", "turn", "response_complete",
                 "disconnected")
    message_event = _NoEvent

    def __init__(self, path: str, query: bytes, headers: dict[str, str], keep_alive: bool):
        self.path, self.query, self.headers, self.keep_alive = path, query, headers, keep_alive
        self.body: list[bytes] = []
        self.received = False  # the whole body is in
        self.turn = False  # every request before it on the connection is answered
        self.response_complete = False
        self.disconnected = False


class HttpProtocol(HttpToolsProtocol):
    """Set `front` (an `asgi.Front`) on a subclass before uvicorn creates connections."""

    front = None

    def on_headers_complete(self) -> None:
        invocation = self._plain_invocation()
        if invocation is None:
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

    # -- the invocation ---------------------------------------------------------------------------

    def _plain_invocation(self) -> _Invocation | None:
        if self.expect_100_continue or self.parser.should_upgrade():
            return None
        headers: dict[str, str] = {}
        for name, value in self.headers:  # names are lower-case already
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]},{text}" if key in headers else text
        length = headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY or "transfer-encoding" in headers:
            return None
        path, _, query = self.url.partition(b"?")
        if b"%" in path:
            return None  # uvicorn unquotes it
        path = path.decode("latin-1")
        if not is_invoke_endpoint(self.parser.get_method().decode("ascii"), path, headers.get("authorization")):
            return None
        version = self.parser.get_http_version()
        return _Invocation(path, query, headers, version != "1.0" and self.parser.should_keep_alive())

    def _start(self, cycle: _Invocation) -> None:
        task = self.loop.create_task(self._answer(cycle))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _answer(self, cycle: _Invocation) -> None:
        body = cycle.body[0] if len(cycle.body) == 1 else b"".join(cycle.body)
        response = await self.front.answer(cycle.path, cycle.query, cycle.headers, body)
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
        """Status line, headers and body in one buffer, with uvicorn's default headers (its Date)."""
        body = bytes(response.body)
        content = [STATUS_LINE[response.status]]
        for name, value in self.server_state.default_headers:
            content += (name, b": ", value, b"\r\n")
        for name, value in response.headers:
            encoded = value.encode("latin-1")
            if HEADER_VALUE_RE.search(encoded):
                raise ValueError(f"invalid value for response header {name}: {value!r}")
            content += (name.lower().encode("latin-1"), b": ", encoded, b"\r\n")
        content += (b"content-length: ", str(len(body)).encode("ascii"), b"\r\n")
        if not keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", body)
        return b"".join(content)


def protocol_for(front) -> type[HttpProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to this server's front."""
    return type("SmlocalHttpProtocol", (HttpProtocol,), {"front": front})

