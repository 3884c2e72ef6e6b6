"""The S3 catalog: which buckets, object versions and uploads exist, in SQLite next to the blobs.

Why SQLite rather than a snapshot file: a mutation rewrites only the rows of the keys it touched
(10,000 keys cost nothing extra per PutObject), a transaction is atomic across a DeleteObjects of
many keys, and WAL mode with synchronous=NORMAL survives `kill -9` of the process (a power cut may
lose the last transactions; the same trade as emulator/store). A row names its blob; a blob is
written before the row that names it and unlinked after the row is gone, so a crash can leave an
unreferenced blob (swept at start) but never a row without its body.
"""

from __future__ import annotations

import json
from pathlib import Path

from emulator.store.sqlite import Database
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY, account TEXT NOT NULL, partition TEXT NOT NULL,
    record TEXT NOT NULL, settings BLOB
);
CREATE TABLE IF NOT EXISTS objects (        -- one row per version (or delete marker), oldest first
    bucket TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, blob TEXT, record TEXT NOT NULL,
    PRIMARY KEY (bucket, key, seq)
);
CREATE TABLE IF NOT EXISTS uploads (
    bucket TEXT NOT NULL, upload_id TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (bucket, upload_id)
);
CREATE TABLE IF NOT EXISTS parts (
    bucket TEXT NOT NULL, upload_id TEXT NOT NULL, part INTEGER NOT NULL, blob TEXT NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (bucket, upload_id, part)
);
"""


class Catalog(Database):
    def __init__(self, path: Path):
        super().__init__(path, SCHEMA)

    def _blobs(self, sql: str, *args) -> set[str]:
        return {row[0] for row in self._db.execute(sql, args) if row[0]}

    # -- buckets ---------------------------------------------------------------------------------

    def buckets(self) -> list[tuple[str, str, str, dict, bytes | None]]:
        rows = self._db.execute("SELECT name, account, partition, record, settings FROM buckets")
        return [(n, a, p, json.loads(r), s) for n, a, p, r, s in rows.fetchall()]

    def put_bucket(self, name: str, account: str, partition: str, record: dict, settings) -> None:
        self._db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?, ?)",
                         (name, account, partition, json.dumps(record), settings))

    def drop_bucket(self, name: str) -> set[str]:
        """Remove a bucket and everything in it; the blobs it referenced."""
        blobs = self._blobs("SELECT blob FROM objects WHERE bucket = ?", name)
        blobs |= self._blobs("SELECT blob FROM parts WHERE bucket = ?", name)
        for table in ("buckets", "objects", "uploads", "parts"):
            column = "name" if table == "buckets" else "bucket"
            self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))
        return blobs

    def wipe(self) -> None:
        for table in ("buckets", "objects", "uploads", "parts"):
            self._db.execute(f"DELETE FROM {table}")

    # -- objects ---------------------------------------------------------------------------------

    def objects(self, bucket: str) -> Iterator[tuple[str, int, str | None, str]]:
        """(key, seq, blob, record JSON) ordered by key, oldest version first."""
        yield from self._db.execute(
            "SELECT key, seq, blob, record FROM objects WHERE bucket = ? ORDER BY key, seq", (bucket,))

    def replace_versions(self, bucket: str, key: str, rows: list[tuple[str | None, dict]]) -> set[str]:
        """Make `rows` (blob, record) the versions of one key; the blobs no longer referenced."""
        old = self._blobs("SELECT blob FROM objects WHERE bucket = ? AND key = ?", bucket, key)
        self._db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
        self._db.executemany("INSERT INTO objects VALUES (?, ?, ?, ?, ?)",
                             [(bucket, key, seq, blob, json.dumps(record))
                              for seq, (blob, record) in enumerate(rows)])
        return old - {blob for blob, _ in rows}

    def drop_version(self, bucket: str, key: str, seq: int) -> None:
        self._db.execute("DELETE FROM objects WHERE bucket = ? AND key = ? AND seq = ?", (bucket, key, seq))

    def all_blobs(self) -> set[str]:
        return self._blobs("SELECT blob FROM objects") | self._blobs("SELECT blob FROM parts")

    # -- multipart uploads -----------------------------------------------------------------------

    def uploads(self, bucket: str) -> list[tuple[str, dict]]:
        rows = self._db.execute("SELECT upload_id, record FROM uploads WHERE bucket = ?", (bucket,))
        return [(upload_id, json.loads(record)) for upload_id, record in rows.fetchall()]

    def parts(self, bucket: str, upload_id: str) -> list[tuple[int, str, dict]]:
        rows = self._db.execute("SELECT part, blob, record FROM parts WHERE bucket = ? AND upload_id = ?"
                                " ORDER BY part", (bucket, upload_id))
        return [(part, blob, json.loads(record)) for part, blob, record in rows.fetchall()]

    def put_upload(self, bucket: str, upload_id: str, record: dict) -> None:
        self._db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?, ?)", (bucket, upload_id, json.dumps(record)))

    def drop_upload(self, bucket: str, upload_id: str) -> set[str]:
        blobs = self._blobs("SELECT blob FROM parts WHERE bucket = ? AND upload_id = ?", bucket, upload_id)
        self._db.execute("DELETE FROM uploads WHERE bucket = ? AND upload_id = ?", (bucket, upload_id))
        self._db.execute("DELETE FROM parts WHERE bucket = ? AND upload_id = ?", (bucket, upload_id))
        return blobs

    def put_part(self, bucket: str, upload_id: str, part: int, blob: str, record: dict) -> set[str]:
        old = self._blobs("SELECT blob FROM parts WHERE bucket = ? AND upload_id = ? AND part = ?",
                          bucket, upload_id, part)
        self._db.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?)",
                         (bucket, upload_id, part, blob, json.dumps(record)))
        return old - {blob}
