"""The small HTTP value the protocol layer and the pipeline hand each other, and the JSON-object
body both JSON protocols (json 1.1 and rest-json) read, refused with the same errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

from emulator import errors


@dataclass
class HttpRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""


def json_object(body: bytes) -> dict:
    """A request body that must be one JSON object; anything else is a SerializationException."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise errors.serialization("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise errors.serialization("The request body must be a JSON object.")
    return document
