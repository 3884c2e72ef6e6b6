"""The resource store: every SageMaker resource, its request, status history and tags, in SQLite
(emulator/store/sqlite.py: one connection, WAL on disk, or in memory for `--ephemeral`)."""

from __future__ import annotations

import functools
import json
import sqlite3
from pathlib import Path

from emulator.store.records import Page, Query, Resource
from emulator.store.sqlite import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL, account TEXT NOT NULL, region TEXT NOT NULL,
    key TEXT NOT NULL,            -- lower-cased name: SageMaker names are case-insensitive
    name TEXT NOT NULL, arn TEXT NOT NULL, status TEXT,
    created REAL NOT NULL, modified REAL NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (kind, account, region, key)
);
DROP INDEX IF EXISTS resources_by_created;
CREATE INDEX IF NOT EXISTS resources_by_created_key ON resources (kind, account, region, created, key);
CREATE INDEX IF NOT EXISTS resources_by_status ON resources (kind, account, region, status, created, key);
CREATE INDEX IF NOT EXISTS resources_by_arn ON resources (arn);
CREATE TABLE IF NOT EXISTS tags (
    arn TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (arn, key)
);
CREATE TABLE IF NOT EXISTS history (
    arn TEXT NOT NULL, at REAL NOT NULL, status TEXT, message TEXT
);
CREATE INDEX IF NOT EXISTS history_by_arn ON history (arn);
"""

_COLUMNS = "kind, account, region, name, arn, status, created, modified, data"
# A listing's order: (SQL expression, its value for a resource, the value's type) per column, the
# unique key last, so that the values of a page's last item say exactly where the next page starts.
# (Only kinds whose resources all have a status are sorted by it: a NULL compares as nothing.)
_KEY = ("key", lambda res: res.name.lower(), str)
_CREATED = ("created", lambda res: res.created, float)
SORT_COLUMNS = {
    "name": (_KEY,),
    "created": (_CREATED, _KEY),
    "status": (("status", lambda res: res.status, str), _CREATED, _KEY),
    "modified": (("modified", lambda res: res.modified, float), _KEY),
}


def is_position(sort_by: str, values) -> bool:
    """Whether `values` can be a Query.after for this order (one value of the right type per column)."""
    columns = SORT_COLUMNS.get(sort_by)
    if columns is None or not isinstance(values, (list, tuple)) or len(values) != len(columns):
        return False
    return all(isinstance(value, (int, float) if kind is float else kind) and not isinstance(value, bool)
               for value, (_, _, kind) in zip(values, columns))


def _partial_row(fields, row) -> Resource:
    *head, values = row  # json_extract with 2+ paths answers a JSON array of the values
    return Resource(*head, {k: v for k, v in zip(fields, json.loads(values)) if v is not None})


def _row(row) -> Resource:
    kind, account, region, name, arn, status, created, modified, data = row
    return Resource(kind, account, region, name, arn, status, created, modified, json.loads(data))


def _filters(q: Query) -> tuple[list[str], list]:
    """The WHERE terms (and their arguments) of a listing's filters."""
    where, args = ["kind=?", "account=?", "region=?"], [q.kind, q.account, q.region]
    if q.name_contains:
        where.append("instr(key, ?) > 0")
        args.append(q.name_contains.lower())
    for column, op, value in (
        ("status", "=", q.status),
        ("created", ">", q.created_after), ("created", "<", q.created_before),
        ("modified", ">", q.modified_after), ("modified", "<", q.modified_before),
    ):
        if value is not None:
            where.append(f"{column} {op} ?")
            args.append(value)
    for key, value in q.data_equals:
        where.append("json_extract(data, ?) = ?")
        args.extend([f'$."{key}"', value])
    return where, args


class Store(Database):
    def __init__(self, path: Path | None):
        """`path=None` keeps everything in memory (the `--ephemeral` mode)."""
        super().__init__(path, SCHEMA)

    # -- resources ----------------------------------------------------------------------------

    def get(self, kind: str, account: str, region: str, name: str) -> Resource | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM resources WHERE kind=? AND account=? AND region=? AND key=?",
                (kind, account, region, name.lower()),
            ).fetchone()
        return _row(row) if row else None

    def get_by_arn(self, arn: str) -> Resource | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM resources WHERE arn=?", (arn,)).fetchone()
        return _row(row) if row else None

    def insert(self, res: Resource) -> bool:
        """Insert a new resource; False if one of that kind and name already exists."""
        with self.transaction():
            try:
                self._db.execute(
                    "INSERT INTO resources (kind, account, region, key, name, arn, status, created,"
                    " modified, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (res.kind, res.account, res.region, res.name.lower(), res.name, res.arn,
                     res.status, res.created, res.modified, json.dumps(res.data)),
                )
            except sqlite3.IntegrityError:
                return False
            if res.status is not None:
                self._history(res.arn, res.created, res.status, None)
        return True

    def update(self, res: Resource, message: str | None = None) -> None:
        """Write back a resource; a changed status is appended to its history."""
        with self.transaction():
            old = self._db.execute("SELECT status FROM resources WHERE arn=?", (res.arn,)).fetchone()
            self._db.execute(
                "UPDATE resources SET status=?, modified=?, data=? WHERE arn=?",
                (res.status, res.modified, json.dumps(res.data), res.arn),
            )
            if old is not None and old[0] != res.status and res.status is not None:
                self._history(res.arn, res.modified, res.status, message)

    def delete(self, arn: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM resources WHERE arn=?", (arn,))
            self._db.execute("DELETE FROM tags WHERE arn=?", (arn,))
            self._db.execute("DELETE FROM history WHERE arn=?", (arn,))

    def all(self, kind: str, status: str | None = None) -> list[Resource]:
        """Every resource of a kind (all accounts and regions), for start-up recovery."""
        sql, args = f"SELECT {_COLUMNS} FROM resources WHERE kind=?", [kind]
        if status is not None:
            sql, args = sql + " AND status=?", args + [status]
        with self._lock:
            return [_row(r) for r in self._db.execute(sql, args).fetchall()]

    def query(self, q: Query) -> Page:
        """One page in the order asked for, starting after `q.after` (keyset pagination: what is
        created or deleted meanwhile never shifts the pages that follow)."""
        where, args = _filters(q)
        sort = SORT_COLUMNS[q.sort_by]
        expressions = ", ".join(expression for expression, *_ in sort)
        if q.after is not None:
            where.append(f"({expressions}) {'<' if q.descending else '>'} ({', '.join('?' * len(sort))})")
            args.extend(q.after)
        order = " DESC" if q.descending else " ASC"
        columns, row = _COLUMNS, _row
        if q.fields is not None:  # only the data members the caller names: no whole-document decoding
            paths = [f"'$.\"{name}\"'" for name in q.fields] * (2 if len(q.fields) == 1 else 1)
            extract = f"json_extract(data, {', '.join(paths)})" if paths else "'[]'"
            columns, row = _COLUMNS.replace("data", extract), functools.partial(_partial_row, q.fields)
        sql = (f"SELECT {columns} FROM resources WHERE {' AND '.join(where)}"
               f" ORDER BY {(order + ', ').join(e for e, *_ in sort)}{order} LIMIT ?")
        with self._lock:
            rows = self._db.execute(sql, args + [q.limit + 1]).fetchall()
        items = [row(r) for r in rows[: q.limit]]
        more = len(rows) > q.limit
        return Page(items, tuple(value(items[-1]) for _, value, _ in sort) if more else None)

    # -- tags and history ---------------------------------------------------------------------

    def tags(self, arn: str) -> list[tuple[str, str]]:
        with self._lock:
            return self._db.execute(
                "SELECT key, value FROM tags WHERE arn=? ORDER BY seq", (arn,)
            ).fetchall()

    def tags_after(self, arn: str, seq: int, limit: int) -> list[tuple[int, str, str]]:
        """(seq, key, value) of up to `limit` tags added after the one numbered `seq`, oldest first."""
        with self._lock:
            return self._db.execute(
                "SELECT seq, key, value FROM tags WHERE arn=? AND seq>? ORDER BY seq LIMIT ?", (arn, seq, limit)
            ).fetchall()

    def put_tags(self, arn: str, tags: list[tuple[str, str]]) -> None:
        with self.transaction():
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM tags WHERE arn=?", (arn,)).fetchone()[0]
            for key, value in tags:
                seq += 1
                self._db.execute(
                    "INSERT INTO tags (arn, key, value, seq) VALUES (?,?,?,?)"
                    " ON CONFLICT(arn, key) DO UPDATE SET value=excluded.value",
                    (arn, key, value, seq),
                )

    def delete_tags(self, arn: str, keys: list[str]) -> None:
        with self.transaction():
            self._db.executemany("DELETE FROM tags WHERE arn=? AND key=?", [(arn, k) for k in keys])

    def history(self, arn: str) -> list[tuple[float, str, str | None]]:
        with self._lock:
            return self._db.execute(
                "SELECT at, status, message FROM history WHERE arn=? ORDER BY rowid", (arn,)
            ).fetchall()

    def _history(self, arn: str, at: float, status: str, message: str | None) -> None:
        self._db.execute("INSERT INTO history (arn, at, status, message) VALUES (?,?,?,?)",
                         (arn, at, status, message))
