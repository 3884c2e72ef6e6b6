"""Calls that report their outcome to a callback, awaited by code that would rather await.

InvokeEndpoint's hot path runs on callbacks (`done(result, None)` or `done(None, error)`, once)
from the container's connection to smlocal's: a future and a task per call, and the turn of the loop
each of them takes, cost as much CPU under load as the rest of the forward. Callers off that path
(the ASGI route, tests, worker threads) still await; `awaited` adapts one to the other.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

Done = Callable[[Any, "BaseException | None"], None]


def settler(future: asyncio.Future) -> Done:
    """A `done` that settles `future`, unless whoever awaited it went away (cancelled)."""

    def done(result, exc: BaseException | None) -> None:
        if not future.done():
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)

    return done


async def awaited(start: Callable[..., None], *args):
    """`start(*args, done)`, awaited: its result, or its error raised."""
    future = asyncio.get_running_loop().create_future()
    start(*args, settler(future))
    return await future
