"""A thread pool for long work (jobs, fleets), so API calls return at once with AWS's status."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("smlocal.background")


class BackgroundTasks:
    def __init__(self, max_workers: int = 8):
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="smlocal-background")

    def submit(self, fn, *args, **kwargs) -> Future:
        def run():
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__name__", fn))
                raise

        return self._pool.submit(run)

    def close(self) -> None:
        """Drop queued work and let running work finish, so nothing touches a closed store."""
        self._pool.shutdown(wait=True, cancel_futures=True)
