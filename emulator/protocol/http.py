"""The small HTTP value the protocol layer and the gateway hand each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable


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
