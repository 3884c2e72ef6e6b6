"""TEMPORARY: what emulator/asgi.py still imports from the callback-style path, until the request
pipeline replaces asgi.py (then this module goes too). The router and the upstream client are
coroutines and use none of it."""

from __future__ import annotations

import asyncio


def settler(future: asyncio.Future):
    """A `done(result, exc)` that settles `future`, unless whoever awaited it went away (cancelled)."""

    def done(result, exc: BaseException | None) -> None:
        if not future.done():
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)

    return done
