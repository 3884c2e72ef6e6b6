"""An HttpResponse as ASGI messages. Its body is bytes (sent with a Content-Length), an async
iterator of chunks (read on the event loop: a stream from a container) or a sync iterator (each
chunk read in the thread pool, since reading it may block). A HEAD answer carries no body."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from emulator.pipeline.exchange import Exchange

_END = object()


async def send_response(exchange: Exchange, pool: ThreadPoolExecutor) -> None:
    response = exchange.response
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    if exchange.close:
        headers.append((b"connection", b"close"))
    body = response.body
    head_only = exchange.method == "HEAD"
    if isinstance(body, (bytes, bytearray, memoryview)):
        headers.append((b"content-length", str(len(body)).encode()))
        await exchange.send({"type": "http.response.start", "status": response.status, "headers": headers})
        await exchange.send({"type": "http.response.body", "body": b"" if head_only else bytes(body)})
        return
    await exchange.send({"type": "http.response.start", "status": response.status, "headers": headers})
    try:
        if not head_only:
            chunks = _async_chunks(body) if hasattr(body, "__aiter__") else _pooled_chunks(iter(body), pool)
            async for chunk in chunks:
                await exchange.send({"type": "http.response.body", "body": chunk, "more_body": True})
        await exchange.send({"type": "http.response.body", "body": b""})
    finally:
        await _close(body, pool)


async def _async_chunks(body):
    async for chunk in body:
        if chunk:
            yield bytes(chunk)


async def _pooled_chunks(iterator, pool: ThreadPoolExecutor):
    loop = asyncio.get_running_loop()
    while (chunk := await loop.run_in_executor(pool, next, iterator, _END)) is not _END:
        if chunk:
            yield bytes(chunk)


async def _close(body, pool: ThreadPoolExecutor) -> None:
    """Let go of a stream that was not read to its end (a HEAD, a client gone)."""
    if hasattr(body, "aclose"):
        await body.aclose()
    elif hasattr(body, "close") and not isinstance(body, (bytes, bytearray, memoryview)):
        await asyncio.get_running_loop().run_in_executor(pool, body.close)
