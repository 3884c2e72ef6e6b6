"""The seam's vocabulary: a request, the two kinds of answer, a transport, and the two failures."""

from __future__ import annotations

from typing import AsyncIterator, NamedTuple, Protocol


class UpstreamConnectionError(ConnectionError):
    """The container could not be reached, or the connection broke before the answer was complete."""


class UpstreamTimeout(TimeoutError):
    """The container did not answer within the request's timeout."""


class Request(NamedTuple):
    """A POST to a container: `headers` as (name, value) pairs, `timeout` in seconds."""

    path: str
    body: bytes
    headers: tuple
    timeout: float


class Reply(Protocol):
    """A whole answer."""

    status: int
    data: bytes

    def header(self, name: str) -> str | None:
        """One header's value (`name` in lower case); a repeated header's values joined by ', '."""


class StreamedReply(Protocol):
    """An answer whose body is still arriving: iterate it (`async for piece in reply`) or `read` it
    whole; `aclose` gives up on the rest. Its connection is free again once the body is exhausted."""

    status: int

    def header(self, name: str) -> str | None: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes: ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    async def send(self, request: Request) -> Reply: ...

    async def stream(self, request: Request) -> StreamedReply: ...

    def close(self) -> None:
        """Close the idle connections; safe from any thread."""

