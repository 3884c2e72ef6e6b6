"""The router's keep-alive client on the event loop: POST /invocations to a container, answered whole.

InvokeEndpoint runs on smlocal's event loop (emulator/asgi.py), so the forward must not block it:
an asyncio protocol per connection, parsed by httptools (the parser uvicorn uses for smlocal's own
port). It waits for the container without holding a thread. The threaded `Upstream` still serves
streamed answers (InvokeEndpointWithResponseStream), which are read piece by piece by a WSGI worker.

`AsyncUpstream.start` hands the answer to a callback, called from the connection's own
`data_received`: no future, no task, no extra turn of the loop between the container's answer and
smlocal's (under load, a future and a task per call cost as much CPU as the rest of the forward).
`post` is the same call as a coroutine, for callers that await.

The failure meanings are the threaded client's: a connection that cannot be opened, or breaks
before the answer is complete, raises `UpstreamConnectionError` (the instance is marked unhealthy);
no answer within the read timeout raises `UpstreamTimeout` (checked four times a second, not by a
timer per call: so it comes at most a quarter of a second late). A kept-alive connection that the
container closed while it sat idle is retried once on a fresh one, as urllib3 does, so a routine
idle close never marks an instance unhealthy.
"""

from __future__ import annotations

import asyncio
import logging

import httptools

from emulator.callbacks import Done, awaited
from emulator.services.upstream import (
    CONNECT_TIMEOUT, MAX_HEADERS, UpstreamConnectionError, UpstreamTimeout, _Headers, address, request_bytes)

log = logging.getLogger("smlocal.router")


class AsyncReply:
    """A container's whole answer: `status`, `headers` (case-insensitive), `data`. The headers are
    kept as the parser gave them and read into a dict only when asked for: a call through the
    router reads one or two of them (`header`), so the others are never decoded."""

    __slots__ = ("status", "pairs", "data", "_headers")

    def __init__(self, status: int, pairs: list[tuple[bytes, bytes]], data: bytes):
        self.status, self.pairs, self.data = status, pairs, data
        self._headers: _Headers | None = None

    @property
    def headers(self) -> _Headers:
        if self._headers is None:
            self._headers = _header_dict(self.pairs)
        return self._headers

    def header(self, name: str) -> str | None:
        """One header's value (`name` in lower case), as `headers` would give it."""
        wanted = name.encode("latin-1")
        size = len(wanted)
        found = None
        for key, value in self.pairs:
            if len(key) == size and key.lower() == wanted:  # the length first: most names differ in it
                text = value.decode("latin-1").strip()
                found = text if found is None else f"{found}, {text}"  # repeated: joined, as in `headers`
        return found


SWEEP = 0.25  # seconds between two looks for answers whose time is up


def _header_dict(pairs: list[tuple[bytes, bytes]]) -> _Headers:
    """Header pairs as `_Headers` (lower-case names, values stripped; a repeated header's values
    joined as urllib3 joins them). One comprehension: a callback per header doing this cost more."""
    headers = _Headers({name.decode("latin-1").lower(): value.decode("latin-1").strip() for name, value in pairs})
    if len(headers) < len(pairs):
        headers.clear()
        for name, value in pairs:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1").strip()
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


class _Connection(asyncio.Protocol):
    """One connection of `pool` and its response parser; one request at a time. The request being
    answered is kept with it (`request`, `reused`, `read_timeout` and `deadline`): its pool asks
    again on a fresh connection when a kept-alive one turns out to have been closed."""

    deadline = 0.0  # loop time by which the answer must be in
    read_timeout = 0.0
    request = b""
    reused = False

    def __init__(self, pool: AsyncUpstream):
        self.pool = pool
        self.transport = None
        self.closed = False
        self.parser = httptools.HttpResponseParser(self)
        self._done: Done | None = None  # the call awaiting an answer
        self._reply: AsyncReply | None = None  # complete, handed over once the parser returns
        self._pairs: list[tuple[bytes, bytes]] = []  # the answer's headers as they came
        self._body: list[bytes] = []
        self._received = False
        self._headers_done = False
        self.keep_alive = False

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._received = True
        failure = None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            failure = UpstreamConnectionError("the container asked to switch protocols")
        except httptools.HttpParserError as exc:
            failure = UpstreamConnectionError(f"the container's answer is not valid HTTP: {exc}")
        if failure is not None:
            self.close()
        # handed over here, outside the parser's callbacks, so that the caller's errors stay its own
        reply, self._reply = self._reply, None
        if reply is not None:  # complete before anything went wrong: the answer stands
            self._deliver(reply, None)
        elif failure is not None:
            self._deliver(None, failure)

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self._done is None:
            return
        if self._headers_done and self._ends_with_connection():  # the body ran to its end: complete
            self._deliver(self._complete_reply(), None)
        else:
            self._deliver(None, UpstreamConnectionError(
                "the container closed the connection before its answer was complete"))

    # -- httptools callbacks ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._pairs, self._body, self._headers_done, self.keep_alive = [], [], False, False

    def on_header(self, name: bytes, value: bytes) -> None:
        """Kept as they come: read (`_header_dict`) once the answer is complete."""
        pairs = self._pairs
        if len(pairs) >= MAX_HEADERS:
            raise httptools.HttpParserError("too many headers")
        pairs.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # an interim answer (100 Continue): the real one follows
        # Only meaningful inside a callback. An answer that completes here is framed (Content-Length,
        # chunked, or no body): one whose body runs to the end of the connection completes only then.
        self.keep_alive = self.parser.should_keep_alive()
        if self._done is not None:
            self._reply = self._complete_reply()

    # -- requests -------------------------------------------------------------------------------------

    def send(self, request: bytes, reused: bool, read_timeout: float, deadline: float, done: Done) -> None:
        """Write `request`; `done` gets the answer (or the failure) once, through the pool."""
        self.request, self.reused, self.read_timeout, self.deadline = request, reused, read_timeout, deadline
        self._done = done
        self._received = False
        self._headers_done = False
        self.transport.write(request)

    @property
    def silent(self) -> bool:
        """Nothing came back: the container never saw the request, or dropped an idle connection."""
        return not self._received

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _complete_reply(self) -> AsyncReply:
        body = self._body
        return AsyncReply(self.parser.get_status_code(), self._pairs, body[0] if len(body) == 1 else b"".join(body))

    def _ends_with_connection(self) -> bool:
        """The answer has neither a Content-Length nor a chunked body (nor a status without one)."""
        headers = _header_dict(self._pairs)
        return not ("content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
                    or self.parser.get_status_code() in (204, 304))

    def _deliver(self, reply: AsyncReply | None, exc: Exception | None) -> None:
        done, self._done = self._done, None
        if done is not None:
            self.pool.answered(self, done, reply, exc)

    def expire(self, exc: Exception) -> None:
        """The answer awaited (if any) fails with `exc`."""
        self._deliver(None, exc)


class AsyncUpstream:
    """Keep-alive connections to one container (`http://host:port`), used on one event loop."""

    def __init__(self, url: str, maxsize: int = 32):
        self.host, self.port, self._host_header = address(url)
        self.maxsize = maxsize
        self._idle: list[_Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._waiting: set[_Connection] = set()  # connections whose answer is awaited
        self._sweeper: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task] = set()  # held: the loop keeps only weak references to tasks

    def start(self, path: str, body: bytes, headers, read_timeout: float, done: Done) -> None:
        """POST `body` to `path`; `done(reply, None)` or `done(None, exception)` follows once, on the
        loop, after this returns. `headers`: a dict, or a tuple of (name, value) pairs (see
        `request_bytes`; a header that would inject a line raises ValueError here)."""
        self._send(request_bytes(self._host_header, path, body, headers), read_timeout, done)

    async def post(self, path: str, body: bytes, headers, read_timeout: float) -> AsyncReply:
        """`start`, awaited."""
        return await awaited(self.start, path, body, headers, read_timeout)

    def _send(self, request: bytes, read_timeout: float, done: Done) -> None:
        idle = self._idle
        while idle:  # the most recently used open idle connection: most calls find one
            connection = idle.pop()
            if not connection.closed:
                self._exchange(connection, True, request, read_timeout, done)
                return
        # a new connection takes a turn of the loop or more: a task of its own
        task = asyncio.get_running_loop().create_task(self._send_on_new(request, read_timeout, done))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _send_on_new(self, request: bytes, read_timeout: float, done: Done) -> None:
        try:
            connection = await self._connect()
        except UpstreamConnectionError as exc:
            _hand_over(done, None, exc)
            return
        self._exchange(connection, False, request, read_timeout, done)

    def _exchange(self, connection: _Connection, reused: bool, request: bytes, read_timeout: float,
                  done: Done) -> None:
        """Send on `connection`, its answer timed out after `read_timeout`: a deadline on the
        connection, looked at by one sweep every SWEEP seconds while any answer is awaited (a timer
        per call, made and cancelled, cost more than the rest of the call's bookkeeping)."""
        loop = self._loop
        connection.send(request, reused, read_timeout, loop.time() + read_timeout, done)
        self._waiting.add(connection)
        if self._sweeper is None:
            self._sweeper = loop.call_later(SWEEP, self._sweep, loop)

    def answered(self, connection: _Connection, done: Done, reply: AsyncReply | None,
                 exc: Exception | None) -> None:
        """`connection`'s answer (or failure): the connection back to the idle ones, then `done`."""
        self._waiting.discard(connection)
        if exc is None:
            idle = self._idle
            if connection.keep_alive and not connection.closed and not self._closed and len(idle) < self.maxsize:
                idle.append(connection)
            else:
                connection.close()
            _hand_over(done, reply, None)
            return
        connection.close()  # timed out, broken, or not HTTP: never reused
        if connection.reused and connection.silent and isinstance(exc, UpstreamConnectionError):
            self._send(connection.request, connection.read_timeout, done)  # closed while idle: again
        else:
            _hand_over(done, None, exc)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for connection in [c for c in self._waiting if c.deadline <= now]:
            connection.expire(UpstreamTimeout(
                f"{self.host}:{self.port} did not answer within {connection.read_timeout:g} s"))
        self._sweeper = loop.call_later(SWEEP, self._sweep, loop) if self._waiting else None

    def close(self) -> None:
        """Close the idle connections; safe from any thread (the loop does the closing)."""
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._close_idle)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        self._loop = loop
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self), self.host, self.port), CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            raise UpstreamConnectionError(f"connecting to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise UpstreamConnectionError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        return connection


def _hand_over(done: Done, reply: AsyncReply | None, exc: Exception | None) -> None:
    """Call `done`; an error of its own is logged, never taken out on the container's connection
    (raised from `data_received`, it would make the loop drop the connection)."""
    try:
        done(reply, exc)
    except Exception:
        log.exception("a caller of the loop's upstream client failed on its answer")
