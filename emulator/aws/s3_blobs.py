"""Object bodies as immutable files: the blob directory, and the file-like views moto reads through.

Why immutable, uniquely named files: a body is written once (to a temporary name, then renamed), so
a crash leaves either no file or a whole one, never a half-written body under a live name; readers
never see a body change under them; and garbage collection is a set difference between the files on
disk and the blobs the metadata references.

`BlobBuffer` replaces moto's per-key SpooledTemporaryFile (which holds up to ~5 MiB per key in RAM,
then a /tmp file) with a reader that opens the blob on demand, so a persisted key costs no memory and
no open file descriptor. `BlobBody` is what a plain GetObject returns instead of the whole body: it
has the length and slicing moto's Range handling uses, and streams from an already-open file.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import time
import uuid
from pathlib import Path
from typing import Iterator

CHUNK = 1024 * 1024
# Replaced or deleted bodies are unlinked only after this many seconds, so a download that already
# resolved the old version (e.g. one of several ranged GETs) can still finish reading it.
UNLINK_GRACE_SECONDS = 30.0


class BlobStore:
    """`<root>/blobs/<2 hex>/<32 hex>`, written via `<root>/blobs/tmp/`."""

    def __init__(self, root: Path):
        self.dir = root / "blobs"
        self.tmp = self.dir / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._prefix = str(self.dir) + os.sep  # blob paths are plain strings: pathlib costs 50 µs each
        self._doomed: collections.deque[tuple[float, str]] = collections.deque()
        self._made: set[str] = set()  # fan-out directories known to exist (saves a mkdir per write)

    def __deepcopy__(self, memo) -> "BlobStore":
        return self  # a service, not state: moto deep-copies keys (and their uploads) that name it

    def path(self, blob: str) -> str:
        return f"{self._prefix}{blob[:2]}{os.sep}{blob}"

    def holds(self, path: str) -> bool:
        return path.startswith(self._prefix)

    def write(self, chunks) -> tuple[str, int]:
        """Write an iterable of byte chunks into a new blob: (blob id, size)."""
        blob = uuid.uuid4().hex
        tmp = self.tmp / f"{blob}.tmp"
        size = 0
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        final = self.path(blob)
        if blob[:2] not in self._made:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            self._made.add(blob[:2])
        os.replace(tmp, final)  # atomic: the blob exists whole or not at all
        return blob, size

    def size(self, blob: str) -> int | None:
        try:
            return os.stat(self.path(blob)).st_size
        except OSError:
            return None

    def discard(self, blobs) -> None:
        """Unlink these blobs once the grace period has passed (they are no longer referenced)."""
        deadline = time.monotonic() + UNLINK_GRACE_SECONDS
        self._doomed.extend((deadline, blob) for blob in blobs)
        self.reap()

    def reap(self, everything: bool = False) -> None:
        now = time.monotonic()
        while self._doomed and (everything or self._doomed[0][0] <= now):
            _, blob = self._doomed.popleft()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(blob))

    def sweep(self, referenced: set[str]) -> int:
        """Delete unreferenced blobs and leftover temporaries (what a crash can leave): count removed."""
        removed = 0
        for sub in self.dir.iterdir():
            for entry in sub.iterdir() if sub.is_dir() else ():
                if sub == self.tmp or entry.name not in referenced:
                    entry.unlink(missing_ok=True)
                    removed += 1
        return removed


def read_chunks(buffer) -> Iterator[bytes]:
    """A key's buffer from its start, in chunks (the caller holds the key's lock)."""
    buffer.seek(0)
    while chunk := buffer.read(CHUNK):
        yield chunk


def file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


class BlobBuffer(io.RawIOBase):
    """Read-only stand-in for FakeKey._value_buffer: seek/tell/read open the blob per call."""

    def __init__(self, path: str, size: int):
        super().__init__()
        self.path = path
        self.length = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on a disposed S3 key")
        with open(self.path, "rb") as f:
            f.seek(self._pos)
            data = f.read(size if size is not None and size >= 0 else -1)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)


class BlobBody:
    """A response body that streams [start, stop) of a blob; moto slices it for Range requests.

    The file is opened at once, so the bytes stay readable even if the key is replaced and its
    blob unlinked before the response is sent.
    """

    def __init__(self, path: str | None, size: int, start: int = 0, stop: int | None = None, file=None):
        self._file = file if file is not None else open(path, "rb")
        self.start = start
        self.stop = size if stop is None else stop
        self.size = size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, item: slice) -> "BlobBody":
        if not isinstance(item, slice) or item.step not in (None, 1):
            raise TypeError("BlobBody supports contiguous slices only")
        begin, end, _ = item.indices(len(self))
        return BlobBody(None, self.size, self.start + begin, self.start + max(begin, end), self._file)

    def __copy__(self) -> "BlobBody":
        return self

    def __iter__(self):
        fd, pos = self._file.fileno(), self.start
        try:
            while pos < self.stop:
                chunk = os.pread(fd, min(CHUNK, self.stop - pos), pos)
                if not chunk:  # the blob is shorter than recorded: end rather than loop
                    break
                pos += len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._file.close()
