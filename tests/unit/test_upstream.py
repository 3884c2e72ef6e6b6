"""The upstream client (emulator/upstream/http.py) against scripted servers on real sockets: every way
an answer can be framed, keep-alive reuse, a container that closed an idle connection, streamed
answers in pieces, and the failures the router maps (a broken connection marks the instance
unhealthy; a silent one is a ModelError timeout)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import uvloop

from emulator.upstream import HttpTransport, Request, UpstreamConnectionError, UpstreamTimeout
from emulator.upstream.http import _request_head, request_bytes

HANG_UP = b""  # a reply that closes the connection without answering


def run(coroutine):
    """On uvloop, as smlocal's server runs."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def post(body: bytes = b"x", headers: tuple = (), timeout: float = 5.0) -> Request:
    return Request("/invocations", body, headers, timeout)


class Scripted:
    """A TCP server that answers each request with the next canned reply (a list of replies is sent
    piece by piece, each after `gate` is set or `delay` has passed)."""

    def __init__(self, replies: list, close_after: bool = False, delay: float = 0.0):
        self.replies, self.close_after, self.delay = list(replies), close_after, delay
        self.requests: list[bytes] = []
        self.connections = 0
        self.gate = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn):
        try:
            self._answer(conn)
        except OSError:  # the client hung up: its test says what it expects of that
            pass

    def _answer(self, conn):
        with conn:
            reader = conn.makefile("rb")
            while self.replies:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n")
                               if h.lower().startswith(b"content-length")), 0)
                self.requests.append(head + reader.read(length))
                time.sleep(self.delay)
                reply = self.replies.pop(0)
                if reply == HANG_UP:
                    return
                if isinstance(reply, list):
                    self._in_pieces(conn, reply)
                else:
                    conn.sendall(reply)
                if self.close_after:
                    return

    def _in_pieces(self, conn, pieces):
        conn.sendall(pieces[0])
        for piece in pieces[1:]:
            self.gate.wait(5)
            conn.sendall(piece)


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def sends(url: str, *requests: Request) -> list:
    """Each request's whole answer (or its exception), in turn over one transport."""

    async def go():
        transport, out = HttpTransport(url), []
        for request in requests:
            try:
                out.append(await transport.send(request))
            except Exception as exc:
                out.append(exc)
        return out

    return run(go())


def test_sized_answer_and_forwarded_headers():
    server = Scripted([ok(b"1,2,3", b"X-Amzn-SageMaker-Custom-Attributes: a=1\r\nX-Twice: 1\r\nX-Twice: 2\r\n")])
    [reply] = sends(server.url, post(b"in", (("Content-Type", "text/csv"), ("Accept", "text/csv"))))
    assert (reply.status, reply.data) == (200, b"1,2,3")
    assert reply.header("content-type") == "text/csv" and reply.header("x-amzn-sagemaker-custom-attributes") == "a=1"
    assert reply.header("x-twice") == "1, 2" and reply.header("x-none") is None
    request = server.requests[0]
    assert request.startswith(b"POST /invocations HTTP/1.1\r\n")
    assert b"\r\nContent-Type: text/csv\r\n" in request and b"\r\nContent-Length: 2\r\n" in request
    assert request.endswith(b"\r\n\r\nin")


def test_keep_alive_reuses_one_connection():
    server = Scripted([ok(b"a"), ok(b"b"), ok(b"c")])
    assert [r.data for r in sends(server.url, post(), post(), post())] == [b"a", b"b", b"c"]
    assert server.connections == 1


def test_chunked_answer_with_trailers_and_interim_100():
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n")
    server = Scripted([chunked, ok(b"next")])
    assert [r.data for r in sends(server.url, post(), post())] == [b"abcdefg", b"next"]
    assert server.connections == 1


def test_http10_answer_ends_with_the_connection():
    server = Scripted([b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"] * 2, close_after=True)
    assert [r.data for r in sends(server.url, post(), post())] == [b"until close"] * 2
    assert server.connections == 2


def test_connection_closed_by_the_container_while_idle_is_not_reused():
    server = Scripted([ok(b"first"), ok(b"second")], close_after=True)

    async def go():
        transport = HttpTransport(server.url)
        first = await transport.send(post())
        await asyncio.sleep(0.2)  # the container has closed the kept-alive connection by now
        return first.data, (await transport.send(post())).data

    assert run(go()) == (b"first", b"second") and server.connections == 2


def test_a_kept_alive_connection_closed_as_the_request_goes_out_is_retried_once_on_a_fresh_one():
    """The container takes the request on a kept-alive connection and closes it without a word (an
    idle timeout that raced the request): asked again on a new connection, not a failure."""
    server = Scripted([ok(b"first"), HANG_UP, ok(b"again")])
    assert [r.data for r in sends(server.url, post(), post())] == [b"first", b"again"]
    assert server.connections == 2 and len(server.requests) == 3


def test_a_fresh_connection_closed_without_an_answer_is_not_retried():
    server = Scripted([HANG_UP, ok(b"never asked")])
    [failure] = sends(server.url, post())
    assert isinstance(failure, UpstreamConnectionError) and len(server.requests) == 1


def test_error_status_is_an_answer_not_an_exception():
    server = Scripted([b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom"])
    [reply] = sends(server.url, post())
    assert (reply.status, reply.data) == (500, b"boom")


def test_refused_connection_is_a_connection_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    [failure] = sends(f"http://127.0.0.1:{port}", post())
    assert isinstance(failure, UpstreamConnectionError)


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # closed inside the body
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  # closed inside a chunk
    b"garbage\r\n\r\n",  # not HTTP
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
])
def test_broken_answers_are_connection_errors(reply):
    server = Scripted([reply], close_after=True)
    [failure] = sends(server.url, post())
    assert isinstance(failure, UpstreamConnectionError)


def test_silent_container_times_out_on_time():
    server = Scripted([ok(b"late")], delay=1.0)
    started = time.monotonic()
    [failure] = sends(server.url, post(timeout=0.2))
    assert isinstance(failure, UpstreamTimeout) and "did not answer within 0.2 s" in str(failure)
    assert time.monotonic() - started < 0.6


def test_answers_within_their_timeout_are_never_failed_however_long_the_connection_was_busy():
    server = Scripted([ok(b"%d" % n) for n in range(5)], delay=0.15)
    assert [r.data for r in sends(server.url, *[post(timeout=0.3)] * 5)] == [b"%d" % n for n in range(5)]


def test_answer_complete_before_trailing_garbage_stands_and_the_connection_is_dropped():
    server = Scripted([ok(b"whole") + b"garbage that is not HTTP\r\n\r\n", ok(b"fresh")])
    assert [r.data for r in sends(server.url, post(), post())] == [b"whole", b"fresh"]
    assert server.connections == 2


def test_a_caller_that_goes_away_leaves_the_connection_usable():
    """A cancelled `send` (the client hung up) does not cut the exchange short: the answer is read
    to its end and the connection kept for the next call."""
    server = Scripted([ok(b"slow"), ok(b"next")], delay=0.3)

    async def go():
        transport = HttpTransport(server.url)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(transport.send(post()), 0.1)
        await asyncio.sleep(0.4)  # the slow answer arrives and is read
        return (await transport.send(post())).data

    assert run(go()) == b"next" and server.connections == 1


def test_header_values_cannot_inject_lines():
    with pytest.raises(ValueError):
        sends_raising("http://127.0.0.1:9", post(headers=(("X-Amzn-SageMaker-Custom-Attributes", "a\r\nX: y"),)))


def sends_raising(url: str, request: Request):
    return run(HttpTransport(url).send(request))


def test_request_head_is_built_once_per_distinct_headers_and_still_checked():
    built = request_bytes(b"h:1", "/invocations", b"abc", (("Content-Type", "text/csv"), ("Accept", "a")))
    # only what the InvokeEndpoint reference says reaches the container, and the Host HTTP/1.1 needs
    assert built == (b"POST /invocations HTTP/1.1\r\nHost: h:1\r\nContent-Type: text/csv\r\n"
                     b"Accept: a\r\nContent-Length: 3\r\n\r\nabc")
    for _ in range(2):  # a refused head is refused again, not remembered
        with pytest.raises(ValueError):
            request_bytes(b"h:1", "/invocations", b"", (("Accept", "a\r\nX: y"),))
    for n in range(_request_head.cache_info().maxsize + 10):
        request_bytes(b"h:1", "/invocations", b"", (("X-Amzn-SageMaker-Inference-Id", str(n)),))
    assert _request_head.cache_info().currsize <= _request_head.cache_info().maxsize


# -- streamed answers --------------------------------------------------------------------------------

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_a_streamed_answer_comes_piece_by_piece_as_the_container_sends_it():
    server = Scripted([[CHUNKED_HEAD + chunk(b"first"), chunk(b"second") + b"0\r\n\r\n"], ok(b"after")])

    async def go():
        transport = HttpTransport(server.url)
        reply = await transport.stream(post())
        assert (reply.status, reply.header("content-type")) == (200, "text/plain")
        first = await reply.__anext__()  # before the container has sent the rest
        server.gate.set()
        rest = [piece async for piece in reply]
        return first, rest, (await transport.send(post())).data

    assert run(go()) == (b"first", [b"second"], b"after")
    assert server.connections == 1  # the streamed answer's connection is kept alive


def test_a_large_streamed_answer_is_read_only_as_fast_as_it_is_taken():
    size = 4 * 1024 * 1024
    server = Scripted([ok(b"x" * size)])

    async def go():
        reply = await HttpTransport(server.url).stream(post())
        await asyncio.sleep(0.3)  # the reader is slow: reading pauses rather than holding everything
        held = reply._exchange.waiting
        total = 0
        async for piece in reply:
            total += len(piece)
        return held, total

    held, total = run(go())
    assert total == size and held <= 1024 * 1024


def test_a_stream_closed_before_its_end_gives_up_its_connection():
    server = Scripted([[CHUNKED_HEAD + chunk(b"first"), chunk(b"never read") + b"0\r\n\r\n"], ok(b"fresh")])

    async def go():
        transport = HttpTransport(server.url)
        reply = await transport.stream(post())
        first = await reply.__anext__()
        await reply.aclose()
        server.gate.set()
        return first, (await transport.send(post())).data

    assert run(go()) == (b"first", b"fresh") and server.connections == 2


def test_a_stream_that_falls_silent_times_out_and_one_that_breaks_is_a_connection_error():
    silent = Scripted([[CHUNKED_HEAD + chunk(b"first"), b"0\r\n\r\n"]])
    broken = Scripted([CHUNKED_HEAD + chunk(b"first") + b"5\r\nab"], close_after=True)

    async def rest(url):
        reply = await HttpTransport(url).stream(post(timeout=0.3))
        try:
            return [piece async for piece in reply]
        except Exception as exc:
            return exc

    assert isinstance(run(rest(silent.url)), UpstreamTimeout)
    silent.gate.set()
    assert isinstance(run(rest(broken.url)), UpstreamConnectionError)
