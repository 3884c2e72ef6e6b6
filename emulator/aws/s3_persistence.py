"""Keeps what moto's S3 acknowledged on disk, and rebuilds moto's S3 from it at start.

Why moto plus a disk layer rather than a separate S3 engine: moto already answers the whole S3
wire protocol the SDKs speak (signatures, both addressing styles, XML shapes, errors, versioning,
multipart, tagging, ACLs, presigned URLs) and stays the one S3 of the process, so IAM/STS/Logs and
SageMaker see the same buckets. What moto lacks is durability and bodies off the heap; both are
added around it at a few pinned seams (emulator/aws/s3_hooks.py) instead of re-implementing S3.

How: `wrap()` puts a WSGI layer in front of moto. A mutating request (PUT/POST/DELETE) runs with
touch recording on; after moto has answered but before the answer is released to the server, the
touched buckets and keys are re-read from moto and written to disk: new bodies become blob files
(s3_blobs.py) and the catalog rows of those keys are replaced in one SQLite transaction
(s3_catalog.py). A GET runs with streaming on, so a persisted key's body is sent from its file;
CompleteMultipartUpload joins the part files on disk (s3_assemble.py). `restore()` rebuilds every
account's buckets (and their settings), object versions and delete markers, tags, ACLs and
in-progress multipart uploads from the catalog, and sweeps blobs a crash left unreferenced.

Limits: moto still reads each request body whole (one PutObject or UploadPart: bounded by the
client's part size for large uploads) and CopyObject/UploadPartCopy/SelectObjectContent read their
source whole. One server per data directory. Durable against a killed process, not a power cut.
`root=None` (`--ephemeral`) is plain moto: nothing is written, nothing is hooked.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import json
import logging
import threading
import time
from bisect import insort
from pathlib import Path

from moto.s3.models import FakeBucket, FakeDeleteMarker, S3Backend, s3_backends

from emulator.aws import s3_hooks, s3_records
from emulator.aws.s3_assemble import PersistedUpload, as_persisted_upload
from emulator.aws.s3_blobs import BlobStore, read_chunks
from emulator.aws.s3_catalog import Catalog
from emulator.aws.s3_hooks import PersistedKey, as_persisted

log = logging.getLogger("smlocal.s3")

MUTATING = frozenset({"PUT", "POST", "DELETE", "PATCH"})
FLUSH_FAILED = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>"
                b"<Message>smlocal could not write the change to its data directory; it was not"
                b" saved and will not survive a restart.</Message></Error>")


class S3Persistence:
    def __init__(self, root: Path | None):
        self.root = root
        self._lock = threading.Lock()  # one writer of the catalog at a time
        self._settings: dict[str, tuple | None] = {}  # persisted bucket → what its row holds
        self._uploads: dict[str, dict[str, dict[int, str]]] = {}  # bucket → upload → part → blob
        if root is not None:
            self.blobs = BlobStore(root)
            self.catalog = Catalog(root / "catalog.db")
            s3_hooks.install()

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def wrap(self, moto_app):
        return _PersistingApp(moto_app, self) if self.enabled else moto_app

    def close(self) -> None:
        if self.enabled:
            self.blobs.reap(everything=True)
            self.catalog.close()

    # -- writing -----------------------------------------------------------------------------------

    def flush(self, touched: set[tuple[str, str | None]]) -> None:
        """Write the current state of the touched buckets and keys; returns once it is on disk."""
        if not touched:
            return
        self._write_bodies(touched)  # the slow part, outside the lock: bodies are independent files
        order = sorted(touched, key=lambda t: (t[0], t[1] is not None, t[1] or ""))
        garbage: set[str] = set()
        with self._lock:
            try:
                with self.catalog.transaction():
                    for bucket, key in order:
                        garbage |= self._sync_bucket(bucket) if key is None else self._sync_key(bucket, key)
            except BaseException:
                self._reload_mirrors()  # the rows rolled back; forget what we thought they held
                raise
        self.blobs.discard(garbage)

    def wipe(self) -> None:
        """moto was reset: what was persisted must not come back at the next start."""
        with self._lock, self.catalog.transaction():
            garbage = self.catalog.all_blobs()
            self.catalog.wipe()
            self._settings.clear()
            self._uploads.clear()
        self.blobs.discard(garbage)

    def _write_bodies(self, touched) -> None:
        for bucket_name, key_name in touched:
            bucket = _locate(bucket_name)
            if bucket is None:
                continue
            if key_name is None:
                items = [p for u in list(bucket.multiparts.values()) for p in list(u.parts.values())]
            else:
                items = list(bucket.keys.getlist(key_name, None) or [])
            for item in items:
                if not isinstance(item, FakeDeleteMarker) and not item.disposed:
                    self._body(item)

    def _body(self, key) -> str | None:
        """The blob holding this key's body, written now if it is not yet.

        None: moto disposed the key (a concurrent request replaced or deleted it, and that
        request's own flush writes what replaced it)."""
        if self._owns(key):  # (once persisted, always: checked without the lock first)
            return key.blob
        with key.lock:  # every reader of the buffer takes it (s3_hooks, hook 4): the copy is whole
            if self._owns(key):
                return key.blob
            md5 = hashlib.md5(usedforsecurity=False) if key._etag is None else None
            try:
                blob, size = self.blobs.write(_hashed(read_chunks(key._value_buffer), md5))
            except ValueError:  # "I/O operation on closed file": disposed under us
                if key.disposed:
                    return None
                raise
            if md5 is not None and key._etag is None:
                key._etag = md5.hexdigest()  # what moto would compute, without re-reading the body
            as_persisted(key, blob, self.blobs.path(blob), size)
            return blob

    def _owns(self, key) -> bool:
        return isinstance(key, PersistedKey) and self.blobs.holds(key.blob_path)

    def _sync_key(self, bucket_name: str, key_name: str) -> set[str]:
        bucket = _locate(bucket_name)
        versions = list(bucket.keys.getlist(key_name, None) or []) if bucket else []
        rows = []
        for version in versions:
            marker = isinstance(version, FakeDeleteMarker)
            blob = None if marker else self._body(version)
            if (blob is None and not marker) or getattr(version, "disposed", False):
                return set()  # being replaced right now; the replacing request writes this key
            rows.append((blob, s3_records.key_record(version, _backend_of(bucket))))
        return self.catalog.replace_versions(bucket_name, key_name, rows)

    def _sync_bucket(self, name: str) -> set[str]:
        bucket = _locate(name)
        if bucket is None:
            if name not in self._settings:
                return set()
            self._settings.pop(name, None)
            self._uploads.pop(name, None)
            return self.catalog.drop_bucket(name)
        record, settings = s3_records.bucket_record(bucket, _backend_of(bucket))
        stamp = (json.dumps(record, sort_keys=True, default=str), settings)
        if self._settings.get(name) != stamp:
            self.catalog.put_bucket(name, bucket.account_id, bucket.partition, record, settings)
            self._settings[name] = stamp
        return self._sync_uploads(name, bucket)

    def _sync_uploads(self, name: str, bucket: FakeBucket) -> set[str]:
        live = dict(bucket.multiparts)
        known = self._uploads.setdefault(name, {})
        garbage: set[str] = set()
        for upload_id in known.keys() - live.keys():  # completed or aborted
            garbage |= self.catalog.drop_upload(name, upload_id)
            del known[upload_id]
        for upload_id, upload in live.items():
            if upload_id not in known:
                self.catalog.put_upload(name, upload_id, s3_records.upload_record(upload))
                known[upload_id] = {}
            if not isinstance(upload, PersistedUpload):
                as_persisted_upload(upload, self.blobs)  # so that completing it streams from disk
            for number, part in dict(upload.parts).items():
                blob = self._body(part)
                if blob is not None and known[upload_id].get(number) != blob:
                    garbage |= self.catalog.put_part(name, upload_id, number, blob, s3_records.part_record(part))
                    known[upload_id][number] = blob
        return garbage

    def _reload_mirrors(self) -> None:
        self._settings = {name: None for name, *_ in self.catalog.buckets()}
        self._uploads = {
            name: {upload_id: {part: blob for part, blob, _ in self.catalog.parts(name, upload_id)}
                   for upload_id, _ in self.catalog.uploads(name)}
            for name in self._settings
        }

    # -- restoring ---------------------------------------------------------------------------------

    def restore(self) -> None:
        """Rebuild moto's S3 from disk. Damage (a missing or truncated blob, an unreadable row)
        costs the affected object, never the start."""
        if not self.enabled:
            return
        started = time.monotonic()
        collecting = gc.isenabled()
        gc.disable()  # restoring allocates several objects per key and frees none: a cyclic
        try:          # collection pass every few hundred keys would rescan the whole growing heap
            with self._lock:
                counts = [self._restore_bucket(*row) for row in self.catalog.buckets()]
                swept = self.blobs.sweep(self.catalog.all_blobs())
                self._reload_mirrors()
        finally:
            if collecting:
                gc.enable()
        log.info("s3: restored %d buckets, %d objects in %.2fs (%d orphan files removed)",
                 sum(1 for c in counts if c is not None), sum(c or 0 for c in counts),
                 time.monotonic() - started, swept)

    def _restore_bucket(self, name: str, account: str, partition: str, record: dict, settings) -> int | None:
        owner = s3_backends.bucket_accounts.get(name)
        if owner is not None and owner != (partition, account):
            log.warning("s3: bucket %s belongs to account %s in memory; not restored", name, owner[1])
            return None
        backend = s3_backends[account][partition]
        try:
            backend.buckets.pop(name, None)  # a restart in the same process: the disk is the truth
            bucket = s3_records.bucket_from(name, account, record, settings, backend)
            backend.buckets[name] = bucket
            count = self._restore_objects(backend, bucket)
            self._restore_uploads(backend, bucket)
            return count
        except Exception:
            log.exception("s3: bucket %s could not be restored", name)
            return None

    def _restore_objects(self, backend: S3Backend, bucket: FakeBucket) -> int:
        damaged, count = [], 0
        rows = list(self.catalog.objects(bucket.name))
        for key_name, group in itertools.groupby(rows, key=lambda row: row[0]):
            versions: list = []
            for _, seq, blob, text in group:
                version = self._version_from(backend, bucket, key_name, blob, text, versions)
                if version is None:
                    damaged.append((key_name, seq))
                else:
                    versions.append(version)
            if versions:
                bucket.keys.setlist(key_name, versions)
                count += 1
        for key_name, seq in damaged:
            self.catalog.drop_version(bucket.name, key_name, seq)
        return count

    def _version_from(self, backend, bucket, key_name, blob, text, versions):
        try:
            record = json.loads(text)
            if record.get("marker"):
                return s3_records.delete_marker_from(record, key_name, versions)
            if self.blobs.size(blob) != record["size"]:
                log.warning("s3: %s/%s: body file missing or damaged; object dropped", bucket.name, key_name)
                return None
            key = PersistedKey(name=key_name, value=b"", account_id=backend.account_id,
                               region_name=backend.region_name, bucket_name=bucket.name)
            s3_records.apply_key_record(key, record, backend)
            key.adopt(blob, self.blobs.path(blob), record["size"])
            return key
        except Exception:
            log.exception("s3: %s/%s: unreadable record; object dropped", bucket.name, key_name)
            return None

    def _restore_uploads(self, backend: S3Backend, bucket: FakeBucket) -> None:
        for upload_id, record in self.catalog.uploads(bucket.name):
            upload = as_persisted_upload(s3_records.upload_from(upload_id, record, backend), self.blobs)
            for number, blob, part in self.catalog.parts(bucket.name, upload_id):
                if self.blobs.size(blob) != part["size"]:
                    continue  # the client re-uploads a part it cannot list
                key = PersistedKey(number, b"", account_id=backend.account_id, region_name=backend.region_name,
                                   encryption=upload.sse_encryption, kms_key_id=upload.kms_key_id)
                key._etag = part["etag"]
                key.last_modified = s3_records.parse_time(part["last_modified"])
                key.adopt(blob, self.blobs.path(blob), part["size"])
                upload.parts[number] = key
                insort(upload.partlist, number)
            bucket.multiparts[upload_id] = upload


def _hashed(chunks, md5):
    for chunk in chunks:
        if md5 is not None:
            md5.update(chunk)
        yield chunk


def _locate(name: str) -> FakeBucket | None:
    """The live bucket of that name in whichever account owns it (bucket names are global)."""
    owner = s3_backends.bucket_accounts.get(name)
    if owner is None:
        return None
    partition, account = owner
    return s3_backends[account][partition].buckets.get(name)


def _backend_of(bucket: FakeBucket) -> S3Backend:
    return s3_backends[bucket.account_id][bucket.partition]


class _PersistingApp:
    """WSGI layer in front of moto: holds a mutation's response until its change is on disk."""

    def __init__(self, app, persistence: S3Persistence):
        self.app = app
        self.persistence = persistence

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET":
            with s3_hooks.streaming():
                return self.app(environ, start_response)
        if method not in MUTATING:
            return self.app(environ, start_response)
        held: list = []

        def hold(status, headers, exc_info=None):
            held[:] = [status, headers, exc_info]
            return _no_write

        with s3_hooks.recording() as touched:
            try:
                body = self.app(environ, hold)
            except BaseException:  # moto failed half-way: still make the disk match its memory
                with contextlib.suppress(Exception):
                    self.persistence.flush(touched)
                raise
        try:
            self._after(environ, held[0] if held else "", touched)
        except Exception:
            log.exception("s3: persisting %s %s failed", method, environ.get("PATH_INFO"))
            getattr(body, "close", lambda: None)()
            start_response("500 Internal Server Error", [("Content-Type", "application/xml"),
                                                         ("Content-Length", str(len(FLUSH_FAILED)))])
            return [FLUSH_FAILED]
        start_response(*held)
        return body

    def _after(self, environ, status: str, touched) -> None:
        if environ.get("PATH_INFO") == "/moto-api/reset" and status.startswith("200"):
            self.persistence.wipe()
        else:
            self.persistence.flush(touched)


def _no_write(data: bytes) -> None:
    raise RuntimeError("smlocal's S3 layer holds responses until persisted; write() is not supported")
