"""Request bodies, read on the event loop before any thread is taken.

A client that declares a body and sends it slowly (or never) then holds a coroutine, not one of the
pool's threads: the control plane and S3 keep answering everyone else. A body that stops arriving
for the read timeout ends the request with a RequestTimeout and a closed connection; a body larger
than the service takes is refused before it is read (or as soon as a chunked one grows past it).

The timeout is kept by one `Watchdog` for all reads rather than a timer per read: arming and
cancelling a timer costs more than the rest of reading a small body, and almost every body is whole
before it is asked for.
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import IO, AsyncIterator, Callable

from emulator import errors

SPOOL_IN_MEMORY = 1024 * 1024  # a larger body handed on to moto waits in a temporary file
REPLAY_CHUNK = 256 * 1024


class ClientGone(Exception):
    """The client closed the connection before its request was whole: there is no one to answer."""


class BodyTimeout(Exception):
    """No byte of the body arrived for the read timeout."""

    def __init__(self, timeout: float):
        super().__init__(timeout)
        self.timeout = timeout

    def error(self) -> errors.ServiceError:
        return errors.ServiceError(
            "RequestTimeout", "Your socket connection to the server was not read from or written to within the "
            f"timeout period: no byte of the request body arrived for {self.timeout:g} s. The connection is closed.")


def declared_length(headers: dict[str, str]) -> int | None:
    """The Content-Length the client declared (None for a chunked body)."""
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.serialization("Content-Length is not a number.") from None


class Watchdog:
    """Reads waiting on the network, looked at a few times a second: the request whose read has made
    no progress for `timeout` seconds has its task cancelled, which `_pieces` turns into BodyTimeout."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.waiting: dict[asyncio.Task, float] = {}  # task → when its current read began
        self.expired: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None

    def watch(self, task: asyncio.Task) -> None:
        loop = task.get_loop()
        if self._sweeper is None or self._sweeper.done() or self._sweeper.get_loop() is not loop:
            self._sweeper = loop.create_task(self._sweep())
        self.waiting[task] = loop.time()

    def unwatch(self, task: asyncio.Task) -> None:
        self.waiting.pop(task, None)

    def timed_out(self, task: asyncio.Task) -> bool:
        """Whether `task` was cancelled by this watchdog (and so is not cancelled any more)."""
        if task not in self.expired:
            return False
        self.expired.discard(task)
        if hasattr(task, "uncancel"):  # Python 3.11
            task.uncancel()
        return True

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.timeout / 4))
            now = loop.time()
            for task, since in list(self.waiting.items()):
                if now - since >= self.timeout:
                    del self.waiting[task]
                    self.expired.add(task)
                    task.cancel()


async def read_whole(receive: Callable, watchdog: Watchdog, limit: int,
                     too_large: Callable[[int], errors.ServiceError], declared: int | None) -> bytes:
    """The whole body as bytes, refused with `too_large(size)` past `limit` bytes."""
    if declared is not None and declared > limit:
        raise too_large(declared)
    if declared == 0:
        return b""
    pieces, size = [], 0
    async for piece in _pieces(receive, watchdog):
        size += len(piece)
        if size > limit:
            raise too_large(size)
        pieces.append(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


async def spool(receive: Callable, watchdog: Watchdog) -> IO[bytes]:
    """The whole body in a temporary file (in memory while small), positioned at its start."""
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    try:
        async for piece in _pieces(receive, watchdog):
            file.write(piece)
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return file


def replay(file: IO[bytes]) -> Callable:
    """An ASGI `receive` that hands a spooled body over again, piece by piece."""

    async def receive() -> dict:
        piece = file.read(REPLAY_CHUNK)
        return {"type": "http.request", "body": piece, "more_body": len(piece) == REPLAY_CHUNK}

    return receive


async def _pieces(receive: Callable, watchdog: Watchdog) -> AsyncIterator[bytes]:
    task = asyncio.current_task()
    while True:
        watchdog.watch(task)
        try:
            message = await receive()
        except asyncio.CancelledError:
            if watchdog.timed_out(task):
                raise BodyTimeout(watchdog.timeout) from None
            raise
        finally:
            watchdog.unwatch(task)
        if message["type"] == "http.disconnect":
            raise ClientGone
        piece = message.get("body", b"")
        if piece:
            yield piece
        if not message.get("more_body"):
            return
