"""The router's HTTP/1.1 clients on their own — the threaded one (streamed answers) and the event
loop's (whole answers) — against scripted servers: every way an answer can be framed, keep-alive
reuse, a peer that closed an idle connection, and the failures the router maps (a broken connection
marks the instance unhealthy; a silent one is a ModelError timeout)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from emulator.services.upstream import Upstream, UpstreamConnectionError, UpstreamTimeout
from emulator.services.upstream_async import AsyncUpstream


class OnALoop:
    """AsyncUpstream driven from a test thread: every call runs on one background event loop, as
    the router's calls run on the server's loop."""

    loop = None

    def __init__(self, url: str):
        if OnALoop.loop is None:
            OnALoop.loop = asyncio.new_event_loop()
            threading.Thread(target=OnALoop.loop.run_forever, daemon=True).start()
        self.upstream = AsyncUpstream(url)

    def post(self, path, body, headers, timeout):
        return asyncio.run_coroutine_threadsafe(self.upstream.post(path, body, headers, timeout), self.loop).result()


@pytest.fixture(params=["threaded", "event loop"])
def client(request):
    """The client class under test: both answer whole bodies the same way."""
    return Upstream if request.param == "threaded" else OnALoop


class Scripted:
    """A TCP server that answers each request on a connection with the next canned reply."""

    def __init__(self, replies: list[bytes], close_after: bool = False, delay: float = 0.0):
        self.replies, self.close_after, self.delay = replies, close_after, delay
        self.requests: list[bytes] = []
        self.connections = 0
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
                conn.sendall(self.replies.pop(0))
                if self.close_after:
                    return

    def close(self):
        self.sock.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_sized_answer_and_forwarded_headers(client):
    server = Scripted([ok(b"1,2,3", b"X-Amzn-SageMaker-Custom-Attributes: a=1\r\n")])
    reply = client(server.url).post("/invocations", b"in", {"Content-Type": "text/csv", "Accept": "text/csv"}, 5)
    assert (reply.status, reply.data) == (200, b"1,2,3")
    assert reply.headers.get("content-type") == "text/csv"
    assert reply.headers["X-Amzn-SageMaker-Custom-Attributes"] == "a=1"
    request = server.requests[0]
    assert request.startswith(b"POST /invocations HTTP/1.1\r\n")
    assert b"\r\nContent-Type: text/csv\r\n" in request and b"\r\nContent-Length: 2\r\n" in request
    assert request.endswith(b"\r\n\r\nin")


def test_keep_alive_reuses_one_connection(client):
    server = Scripted([ok(b"a"), ok(b"b"), ok(b"c")])
    upstream = client(server.url)
    assert [upstream.post("/invocations", b"x", {}, 5).data for _ in range(3)] == [b"a", b"b", b"c"]
    assert server.connections == 1


def test_chunked_answer_with_trailers_and_interim_100(client):
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n")
    server = Scripted([chunked, ok(b"next")])
    upstream = client(server.url)
    assert upstream.post("/invocations", b"x", {}, 5).data == b"abcdefg"
    assert upstream.post("/invocations", b"x", {}, 5).data == b"next"
    assert server.connections == 1


def test_http10_answer_ends_with_the_connection(client):
    server = Scripted([b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"] * 2, close_after=True)
    upstream = client(server.url)
    assert upstream.post("/invocations", b"x", {}, 5).data == b"until close"
    assert upstream.post("/invocations", b"x", {}, 5).data == b"until close"
    assert server.connections == 2


def test_connection_closed_by_the_peer_while_idle_is_not_reused(client):
    server = Scripted([ok(b"first"), ok(b"second")], close_after=True)
    upstream = client(server.url)
    assert upstream.post("/invocations", b"x", {}, 5).data == b"first"
    time.sleep(0.2)  # the server has closed the kept-alive connection by now
    assert upstream.post("/invocations", b"x", {}, 5).data == b"second"
    assert server.connections == 2


def test_streamed_answer_comes_in_pieces():
    server = Scripted([ok(b"x" * 100_000)])
    reply = Upstream(server.url).post("/invocations", b"x", {}, 5, stream=True)
    pieces = list(reply.stream(16 * 1024))
    assert b"".join(pieces) == b"x" * 100_000 and max(map(len, pieces)) <= 16 * 1024


def test_error_status_is_an_answer_not_an_exception(client):
    server = Scripted([b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom"])
    reply = client(server.url).post("/invocations", b"x", {}, 5)
    assert (reply.status, reply.data) == (500, b"boom")


def test_refused_connection_is_a_connection_error(client):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectionError):
        client(f"http://127.0.0.1:{port}").post("/invocations", b"x", {}, 5)


@pytest.mark.parametrize("reply", [
    b"",  # closed without answering
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # closed inside the body
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  # closed inside a chunk
    b"garbage\r\n\r\n",  # not HTTP
])
def test_broken_answers_are_connection_errors(reply, client):
    server = Scripted([reply], close_after=True)
    with pytest.raises(UpstreamConnectionError):
        client(server.url).post("/invocations", b"x", {}, 5)


def test_silent_container_times_out(client):
    server = Scripted([ok(b"late")], delay=1.0)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        client(server.url).post("/invocations", b"x", {}, 0.2)
    assert time.monotonic() - started < 0.9


def test_header_values_cannot_inject_lines(client):
    with pytest.raises(ValueError):
        client("http://127.0.0.1:9").post("/invocations", b"x", {"X-Amzn-SageMaker-Custom-Attributes": "a\r\nX: y"}, 5)


def test_request_head_is_built_once_per_distinct_headers_and_still_checked():
    from emulator.services.upstream import _request_head, request_bytes

    as_dict = request_bytes(b"h:1", "/invocations", b"abc", {"Content-Type": "text/csv", "Accept": "a"})
    as_pairs = request_bytes(b"h:1", "/invocations", b"abc", (("Content-Type", "text/csv"), ("Accept", "a")))
    # only what the InvokeEndpoint reference says reaches the container, and the Host HTTP/1.1 needs
    assert as_dict == as_pairs == (b"POST /invocations HTTP/1.1\r\nHost: h:1\r\nContent-Type: text/csv\r\n"
                                   b"Accept: a\r\nContent-Length: 3\r\n\r\nabc")
    changed = request_bytes(b"h:1", "/invocations", b"", {"Content-Type": "application/json", "Accept": "a"})
    assert b"\r\nContent-Type: application/json\r\n" in changed and changed.endswith(b"Content-Length: 0\r\n\r\n")
    for _ in range(2):  # a refused head is refused again, not remembered
        with pytest.raises(ValueError):
            request_bytes(b"h:1", "/invocations", b"", {"Accept": "a\r\nX: y"})
    for n in range(_request_head.cache_info().maxsize + 10):
        request_bytes(b"h:1", "/invocations", b"", {"X-Amzn-SageMaker-Inference-Id": str(n)})
    assert _request_head.cache_info().currsize <= _request_head.cache_info().maxsize


def test_loop_timeouts_come_on_time_and_only_to_late_answers():
    """The loop client's timeouts are swept (emulator/services/upstream_async.py SWEEP), not timed one
    by one: a late answer fails after its read timeout and at most a sweep later; answers within
    their own timeout are never failed, however long the connection has been busy before."""
    from emulator.services.upstream_async import SWEEP

    prompt = Scripted([ok(b"%d" % n) for n in range(6)], delay=0.15)
    upstream = OnALoop(prompt.url)
    assert [upstream.post("/invocations", b"x", {}, 0.3).data for _ in range(6)] == [b"%d" % n for n in range(6)]
    late = Scripted([ok(b"late")], delay=3.0)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match="did not answer within 0.8 s"):
        OnALoop(late.url).post("/invocations", b"x", {}, 0.8)
    assert 0.8 <= time.monotonic() - started <= 0.8 + SWEEP + 0.3


def _on_the_loop(call):
    """Run `call()` on OnALoop's loop and return what it returns."""
    OnALoop("http://127.0.0.1:9")  # the loop exists
    done = asyncio.run_coroutine_threadsafe(_run(call), OnALoop.loop)
    return done.result(5)


async def _run(call):
    return call()


def test_loop_start_hands_the_answer_to_its_callback_once_and_a_callback_error_stays_its_own():
    """`AsyncUpstream.start` calls `done` once, after it returns, from the container connection's
    own reading — outside the HTTP parser, so that a failing callback is never taken for an
    invalid answer; its error is logged, the connection kept, and the next call reuses it."""
    server = Scripted([ok(b"one"), ok(b"two")])
    upstream = OnALoop(server.url).upstream
    outcomes, answered = [], threading.Event()

    def failing_done(reply, exc):
        outcomes.append((reply.data if reply else None, exc))
        answered.set()
        raise RuntimeError("a bug in the caller")

    def start():
        upstream.start("/invocations", b"x", {}, 5, failing_done)
        return list(outcomes)  # nothing yet: done comes later, on the loop

    assert _on_the_loop(start) == []
    assert answered.wait(5)
    time.sleep(0.1)
    assert outcomes == [(b"one", None)]
    second = asyncio.run_coroutine_threadsafe(upstream.post("/invocations", b"x", {}, 5), OnALoop.loop).result(5)
    assert second.data == b"two" and server.connections == 1  # the same kept-alive connection


def test_loop_answer_complete_before_trailing_garbage_stands_and_the_connection_is_dropped():
    server = Scripted([ok(b"whole") + b"garbage that is not HTTP\r\n\r\n", ok(b"fresh")])
    upstream = OnALoop(server.url)
    assert upstream.post("/invocations", b"x", {}, 5).data == b"whole"
    assert upstream.post("/invocations", b"x", {}, 5).data == b"fresh"
    assert server.connections == 2  # the spoilt connection was not kept


def test_loop_caller_that_goes_away_leaves_the_connection_usable():
    """A cancelled `post` (the client hung up) does not cut the exchange short: the answer is read
    to its end and the connection kept for the next call."""
    server = Scripted([ok(b"slow"), ok(b"next")], delay=0.3)
    upstream = OnALoop(server.url)
    pending = asyncio.run_coroutine_threadsafe(upstream.upstream.post("/invocations", b"x", {}, 5), OnALoop.loop)
    time.sleep(0.1)
    pending.cancel()
    time.sleep(0.4)  # the slow answer arrives and is read
    assert upstream.post("/invocations", b"x", {}, 5).data == b"next"
    assert server.connections == 1
