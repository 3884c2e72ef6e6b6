"""A container in memory, for testing what sits above the upstream seam (the router) without sockets.

`FakeTransport(answer)` calls `answer(request)` for every request it is sent and answers with what
that returns: `(status, headers, body)`, body as bytes or as a list of pieces (streamed one by one;
an exception among them is raised when reached, as a stream that breaks), or an awaitable of that
(to hold a call in flight). `answer` may raise UpstreamConnectionError or
UpstreamTimeout to play a container that cannot be reached or never answers. Every request is kept
in `requests`.
"""

from __future__ import annotations

import inspect
from typing import Callable

from emulator.upstream.base import Request


def echo(request: Request) -> tuple:
    """The body back, with the request's Content-Type."""
    return 200, {"Content-Type": dict(request.headers).get("Content-Type", "application/octet-stream")}, request.body


class FakeReply:
    def __init__(self, status: int, headers: dict[str, str], pieces: list[bytes]):
        self.status = status
        self._headers = {name.lower(): value for name, value in headers.items()}
        self._pieces = list(pieces)
        self.closed = False

    @property
    def data(self) -> bytes:
        return b"".join(self._pieces)

    def header(self, name: str) -> str | None:
        return self._headers.get(name)

    def __aiter__(self) -> FakeReply:
        return self

    async def __anext__(self) -> bytes:
        if self.closed or not self._pieces:
            raise StopAsyncIteration
        piece = self._pieces.pop(0)
        if isinstance(piece, Exception):
            raise piece
        return piece

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self])

    async def aclose(self) -> None:
        self.closed = True


class FakeTransport:
    def __init__(self, answer: Callable = echo):
        self.answer = answer
        self.requests: list[Request] = []
        self.closed = False

    async def send(self, request: Request) -> FakeReply:
        return await self._reply(request)

    async def stream(self, request: Request) -> FakeReply:
        return await self._reply(request)

    async def _reply(self, request: Request) -> FakeReply:
        self.requests.append(request)
        answered = self.answer(request)
        if inspect.isawaitable(answered):
            answered = await answered
        status, headers, body = answered
        return FakeReply(status, headers, [body] if isinstance(body, bytes) else body)

    def close(self) -> None:
        self.closed = True
