"""The connection-level InvokeEndpoint's answer bytes (emulator/http_protocol.py `_encode`): exactly
what uvicorn would write, with the remembered header lines still checked and uvicorn's Date
followed as it changes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import pytest
import uvicorn
import uvloop

from emulator.http_protocol import HttpProtocol, _remembered_lines, protocol_for
from emulator.protocol.http import HttpResponse


class State:
    default_headers = [(b"date", b"Sun, 06 Dec 2026 04:48:26 GMT")]


def protocol() -> HttpProtocol:
    proto = HttpProtocol.__new__(HttpProtocol)  # no connection needed to encode
    proto.server_state = State()
    return proto


def answer(request_id: str = "r-1", **extra: str) -> HttpResponse:
    headers = [("x-amzn-RequestId", request_id), ("Content-Type", "text/csv"),
               ("x-Amzn-Invoked-Production-Variant", "AllTraffic"), *extra.items()]
    return HttpResponse(200, headers, b"1,2,3")


def test_answer_bytes_with_date_request_id_and_length():
    proto = protocol()
    assert proto._encode(answer(), True) == (
        b"HTTP/1.1 200 OK\r\ndate: Sun, 06 Dec 2026 04:48:26 GMT\r\nx-amzn-requestid: r-1\r\n"
        b"content-type: text/csv\r\nx-amzn-invoked-production-variant: AllTraffic\r\ncontent-length: 5\r\n\r\n1,2,3")
    closing = proto._encode(answer("r-2"), False)
    assert b"\r\nx-amzn-requestid: r-2\r\n" in closing and closing.endswith(b"connection: close\r\n\r\n1,2,3")


def test_a_new_date_is_written_as_soon_as_uvicorn_sets_it():
    proto = protocol()
    proto._encode(answer(), True)
    proto.server_state.default_headers = [(b"date", b"Sun, 06 Dec 2026 04:48:27 GMT")]  # uvicorn's next tick
    assert b"\r\ndate: Sun, 06 Dec 2026 04:48:27 GMT\r\n" in proto._encode(answer(), True)


def test_invalid_values_are_refused_every_time_and_the_memo_stays_bounded():
    proto = protocol()
    for _ in range(2):
        with pytest.raises(ValueError):
            proto._encode(answer(**{"X-Amzn-SageMaker-Custom-Attributes": "a\x01b"}), True)
        with pytest.raises(ValueError):
            proto._encode(answer("r\r\nx: y"), True)
    size = _remembered_lines.cache_info().currsize
    large = answer(**{"X-Amzn-SageMaker-Custom-Attributes": "a" * 100_000})  # written, not remembered
    assert b"\r\nx-amzn-sagemaker-custom-attributes: " + b"a" * 100_000 + b"\r\n" in proto._encode(large, True)
    assert _remembered_lines.cache_info().currsize == size
    for n in range(_remembered_lines.cache_info().maxsize + 10):
        proto._encode(answer(**{"X-Amzn-SageMaker-Custom-Attributes": str(n)}), True)
    assert _remembered_lines.cache_info().currsize <= _remembered_lines.cache_info().maxsize


@contextlib.contextmanager
def serving(front, **config):
    """uvicorn with smlocal's protocol around `front` (the ASGI app too) on a port of its own, in a
    thread; yields (server, address). Asks it to stop on the way out unless the test did."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(front, http=protocol_for(front), loop="none", lifespan="off", ws="none",
                                           log_config=None, access_log=False, **config))
    thread = threading.Thread(target=lambda: uvloop.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        yield server, sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(5)
        assert not thread.is_alive()


def test_keep_alive_closes_an_idle_connection_after_its_timeout_and_not_a_busy_one():
    """The keep-alive timeout is one lazy timer per connection (`HttpProtocol.on_response_complete`):
    a connection asked again and again stays open past the timeout; an idle one closes after it."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    with serving(app, timeout_keep_alive=0.5) as (_, address):
        with socket.create_connection(address, timeout=5) as client:
            started = time.monotonic()
            while time.monotonic() - started < 1.5:  # three timeouts long, never idle for one
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert client.recv(4096).endswith(b"\r\n\r\nok")
                time.sleep(0.2)
            answered = time.monotonic()
            assert client.recv(4096) == b""  # closed by the server
            assert 0.45 <= time.monotonic() - answered + 0.2 <= 1.3  # timed from the answer on the server


def test_shutdown_waits_for_an_invocation_in_flight_and_then_closes_its_connection():
    """No task carries a connection-level InvokeEndpoint (its answer comes back by callback), so a
    graceful shutdown must still answer one in flight: uvicorn waits for the connection, which the
    answer then closes (keep-alive is turned off by the shutdown)."""

    class SlowFront:
        """Answers every invocation half a second later, from the loop, as a container would."""

        started = threading.Event()

        async def __call__(self, scope, receive, send):
            raise AssertionError("an invocation must not reach the ASGI path")

        def start_shaped(self, shape, scope, body, done):
            self.started.set()
            asyncio.get_running_loop().call_later(0.5, done, HttpResponse(
                200, [("x-amzn-RequestId", "r-1"), ("Content-Type", "text/csv")], b"late:" + body))

        def start(self, path, query, headers, body, done):
            self.start_shaped(None, None, body, done)

    front = SlowFront()
    with serving(front, timeout_graceful_shutdown=5) as (server, address):
        with socket.create_connection(address, timeout=5) as client:
            client.sendall(b"POST /endpoints/ep/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                           b"Content-Length: 3\r\n\r\n1,2")
            assert front.started.wait(5)
            server.should_exit = True  # while the call is in flight
            received = b""
            while True:
                piece = client.recv(4096)
                if not piece:
                    break  # closed by the server once it answered
                received += piece
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(b"\r\n\r\nlate:1,2")
    assert b"\r\nconnection: close\r\n" in received
