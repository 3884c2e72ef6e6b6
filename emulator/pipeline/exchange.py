"""One request as it travels the pipeline (LocalStack's RequestContext): what the client sent, what
each handler found out about it, and the answer once there is one. Handlers read and fill it; none
passes anything to the next one but this."""

from __future__ import annotations

import functools
import itertools
import os
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import IO, Any, Callable

from emulator.aws import identity
from emulator.context import RequestContext
from emulator.protocol.http import HttpRequest, HttpResponse


@dataclass
class Exchange:
    scope: dict
    receive: Callable
    send: Callable
    headers: dict[str, str]  # lower-case names, a repeated header's values joined with commas
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    service: Any = None  # the Service that answers (emulator/pipeline/services.py), once detected
    body: bytes = b""
    spooled: IO[bytes] | None = None  # the body of a request handed on to moto, read whole
    context: RequestContext | None = None  # who calls, once identified
    operation: str = ""
    response: HttpResponse | None = None  # the answer still to send
    close: bool = False  # close the connection after the answer
    status: int = 0  # as sent, for the access log
    sent: int = 0  # body bytes sent

    @property
    def method(self) -> str:
        return self.scope["method"]

    @property
    def path(self) -> str:
        return self.scope["path"]

    @functools.cached_property
    def credential_scope(self) -> tuple[str | None, str | None, str | None]:
        """(access key, region, signing service) of the SigV4 Authorization, read once: detection
        and the caller's identity both ask for it."""
        return identity.credential_scope(self.headers.get("authorization", ""))

    def request(self) -> HttpRequest:
        """The request as the protocol layer reads it."""
        query = self.scope.get("query_string") or b""
        return HttpRequest(method=self.method, path=self.path, headers=self.headers, body=self.body,
                           query=urllib.parse.parse_qs(query.decode("latin-1"), keep_blank_values=True)
                           if query else {})


def header_dict(pairs) -> dict[str, str]:
    """(name, value) byte pairs, names lower-case already (ASGI's), as one dict; a repeated header's
    values joined with commas."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


def new_request_id() -> str:
    """A request id in the form of a version-4 UUID: its first 80 bits drawn at random once per
    process, its last 48 counted. A request id needs to be unique, not secret, and counting is
    cheaper than drawing (os.urandom is a system call)."""
    return _ids.prefix + "%012x" % (next(_ids.count) & 0xFFFFFFFFFFFF)


class _RequestIds:
    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """A new random prefix (version nibble 4, RFC 4122 variant bits) and counter start."""
        self.prefix = "%08x-%04x-4%03x-%04x-" % (random.getrandbits(32), random.getrandbits(16),
                                                 random.getrandbits(12), 0x8000 | random.getrandbits(14))
        self.count = itertools.count(random.getrandbits(48))


_ids = _RequestIds()
os.register_at_fork(after_in_child=_ids.reset)  # a forked child counts from a prefix of its own
