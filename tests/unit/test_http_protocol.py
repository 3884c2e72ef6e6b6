"""The connection-level InvokeEndpoint's answer bytes (emulator/http_protocol.py `_encode`): exactly
what uvicorn would write, with the remembered header lines still checked and uvicorn's Date
followed as it changes."""

from __future__ import annotations

import pytest

from emulator.http_protocol import HttpProtocol, _header_lines
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
    for n in range(_header_lines.cache_info().maxsize + 10):
        proto._encode(answer(**{"X-Amzn-SageMaker-Custom-Attributes": str(n)}), True)
    assert _header_lines.cache_info().currsize <= _header_lines.cache_info().maxsize
