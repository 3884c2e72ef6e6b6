"""AWS event-stream framing (application/vnd.amazon.eventstream), for streaming responses.

Each message: total length, headers length, prelude CRC32, headers (name, type 7 = string, value),
payload, message CRC32 — the format botocore's EventStreamBuffer reads.
"""

from __future__ import annotations

import struct
import zlib

CONTENT_TYPE = "application/vnd.amazon.eventstream"


def _headers(headers: dict[str, str]) -> bytes:
    out = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    return out


def message(headers: dict[str, str], payload: bytes) -> bytes:
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + head + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def event(event_type: str, payload: bytes, content_type: str = "application/octet-stream") -> bytes:
    return message({":event-type": event_type, ":content-type": content_type, ":message-type": "event"}, payload)


def exception(error_type: str, payload: bytes) -> bytes:
    return message({":exception-type": error_type, ":content-type": "application/json",
                    ":message-type": "exception"}, payload)
