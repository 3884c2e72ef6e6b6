"""Docker's multiplexed log stream (8-byte header: stream, 3 zero bytes, big-endian length; then
the bytes) cut anywhere by the network: the reader keeps partial frames for the next read."""

import struct
import time

import emulator.runtime.docker as docker_runtime
from emulator.runtime.docker import _frames


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def test_whole_frames_are_joined_in_order_and_a_partial_one_waits():
    stream = frame(1, b"out 1\n") + frame(2, b"err 1\n") + frame(1, b"") + frame(1, b"out 2\n")
    for cut in range(len(stream) + 1):
        first, rest = _frames(stream[:cut])
        second, left = _frames(rest + stream[cut:])
        assert first + second == b"out 1\nerr 1\nout 2\n" and left == b""


def test_a_header_alone_is_kept():
    payload, rest = _frames(frame(1, b"abc")[:8])
    assert payload == b"" and rest == frame(1, b"abc")[:8]


_REAL_SLEEP = time.sleep


class _Client:
    """A Docker client whose container logs one line every 0.2 ms, the engine sending each line as
    a chunk of its own (a read returns one; what was written while the reader paused is there at
    once)."""

    def __init__(self, lines: int):
        self.lines = lines
        self.api = self

    base_url, api_version = "http://engine", "1.41"

    def wait(self, container_id):
        time.sleep(60)

    def get(self, url, params, stream, timeout):
        client = self

        class Raw:
            sent = 0
            started = time.monotonic()

            def read1(self, size):
                if self.sent == client.lines:
                    return b""
                due = self.started + self.sent * 0.0002  # when the container writes the next line
                _REAL_SLEEP(max(0.0, due - time.monotonic()))
                self.sent += 1
                return frame(1, b"line %d\n" % self.sent)

        class Response:
            raw = Raw()

            def raise_for_status(self):
                pass

            def close(self):
                pass

        return Response()


def test_a_server_logging_fast_is_read_in_batches_and_nothing_is_lost(monkeypatch):
    """A line every 0.2 ms must not wake the reader for every line (each wake takes the GIL from
    the event loop that forwards InvokeEndpoint): it pauses once it has been awake a millisecond."""
    pauses = []
    monkeypatch.setattr(docker_runtime.time, "sleep", lambda s: pauses.append(s) or _REAL_SLEEP(min(s, 0.01)))
    container = docker_runtime.Container.__new__(docker_runtime.Container)
    container.client, container.id = _Client(2000), "c0ffee"
    lines = list(container.lines())
    assert lines == [f"line {n}" for n in range(1, 2001)]
    batched = [s for s in pauses if s == docker_runtime.READ_PAUSE_SECONDS]
    assert 5 <= len(batched) <= 400, len(batched)  # lines read a batch a wake, not one a wake
