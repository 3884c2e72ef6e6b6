"""One SQLite connection behind one lock, WAL on disk (or private in memory), with nested-safe
transactions: the shape both of smlocal's databases share (the resource store and the S3 catalog).

Why one connection: statements take microseconds, the GIL serialises Python anyway, and a single
connection makes every read see every acknowledged write. WAL with synchronous=NORMAL survives
`kill -9` of the process (the WAL is in the OS page cache); a power cut may lose the last
transactions, the trade every local tool makes.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class Database:
    def __init__(self, path: Path | None, schema: str):
        """`path=None` keeps everything in memory."""
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False,
                                   isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(schema)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator["Database"]:
        """Group writes atomically; nested use joins the outer transaction."""
        with self._lock:
            if self._db.in_transaction:
                yield self
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
