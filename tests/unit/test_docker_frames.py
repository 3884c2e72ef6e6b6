"""Docker's multiplexed log stream (8-byte header: stream, 3 zero bytes, big-endian length; then
the bytes) cut anywhere by the network: the reader keeps partial frames for the next read."""

import struct

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
