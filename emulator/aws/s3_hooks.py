"""The few places smlocal hooks into moto's S3 (pinned to moto 5.2.x), and nothing else.

1. Touch recording. Every S3 mutation looks its bucket up (`get_bucket`, or `create_bucket`) and
   every object mutation names its key (`get_object`, `put_object`, `delete_object`; CopyObject,
   DeleteObjects and CompleteMultipartUpload go through these). Wrapping those five backend methods
   tells the persistence layer exactly which buckets and keys a request may have changed, without
   re-parsing S3's URL styles or knowing every operation. The wrappers do nothing unless the
   current thread is inside `recording()`, so moto used elsewhere in the process is unaffected.
2. `PersistedKey`: a FakeKey whose body is a blob file (its `_value_buffer` is a `BlobBuffer`).
   Inside `streaming()` its `value` is a `BlobBody` instead of bytes, which is how a plain
   GetObject answers from the file without reading it into memory (within a GET request moto 5.2
   reads `key.value` only to build the GetObject response). Deep copies (ListObjectVersions copies
   every version) share the blob instead of reading every body.
3. FakeKey's `value` setter adopts an `Assembled` blob (what s3_assemble.PersistedUpload.complete
   returns) instead of writing bytes, so CompleteMultipartUpload never holds the object in memory.
   Any other value goes to moto's own setter.
4. FakeKey's `etag` getter takes the key's lock when it has to read the body. moto computes an
   ETag lazily by seek+read on the shared buffer without the lock its `value` getter takes, so a
   part being answered (its ETag computed) while another request's flush copies it, or while a
   GET reads it, would interleave positions and corrupt both; with the lock, every reader of a
   buffer is serialised and a flush may swap it for a blob safely.
"""

from __future__ import annotations

import contextlib
import functools
import threading

from moto.s3.models import FakeKey, S3Backend

from emulator.aws.s3_assemble import Assembled
from emulator.aws.s3_blobs import BlobBody, BlobBuffer

_local = threading.local()
_install_lock = threading.Lock()
_installed = False


@contextlib.contextmanager
def recording():
    """Collect `(bucket name, key name | None)` for everything this thread's S3 calls touch."""
    touched: set[tuple[str, str | None]] = set()
    outer, _local.touched = getattr(_local, "touched", None), touched
    try:
        yield touched
    finally:
        _local.touched = outer


@contextlib.contextmanager
def streaming():
    """PersistedKey.value answers a BlobBody (not bytes) in this thread for the duration."""
    outer, _local.streaming = getattr(_local, "streaming", False), True
    try:
        yield
    finally:
        _local.streaming = outer


def _note(bucket_name, key_name=None) -> None:
    touched = getattr(_local, "touched", None)
    if touched is not None and isinstance(bucket_name, str):
        touched.add((bucket_name, None))
        if isinstance(key_name, str):
            touched.add((bucket_name, key_name))


def _recorded(method, with_key: bool):
    @functools.wraps(method)
    def wrapper(self, bucket_name, *args, **kwargs):
        key_name = kwargs.get("key_name", args[0] if args else None) if with_key else None
        _note(bucket_name, key_name)
        return method(self, bucket_name, *args, **kwargs)

    wrapper.__smlocal_wrapped__ = method
    return wrapper


# backend method → does its second positional argument name a key?
_RECORDED = {"get_bucket": False, "create_bucket": False,
             "get_object": True, "put_object": True, "delete_object": True}


def install() -> None:
    """Wrap the recorded backend methods once per process (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        for name, with_key in _RECORDED.items():
            setattr(S3Backend, name, _recorded(getattr(S3Backend, name), with_key))
        FakeKey.value = property(FakeKey.value.fget, _set_value(FakeKey.value.fset))
        FakeKey.etag = property(_locked_etag(FakeKey.etag.fget))
        _installed = True


def _locked_etag(moto_getter):
    def etag(key):
        if key._etag is not None:  # cached: no read of the body, no lock needed
            return moto_getter(key)
        with key.lock:
            return moto_getter(key)

    return etag


def _set_value(moto_setter):
    def set_value(key, new_value):
        if isinstance(new_value, Assembled):
            as_persisted(key, new_value.blob, new_value.path, new_value.size)
        else:
            moto_setter(key, new_value)

    return set_value


class PersistedKey(FakeKey):
    """A FakeKey whose body lives in `blob` under a BlobStore; see the module docstring."""

    blob: str
    blob_path: str

    def adopt(self, blob: str, path: str, size: int) -> None:
        """Point this key at its blob (the old buffer, memory or /tmp file, is released)."""
        old, self._value_buffer = getattr(self, "_value_buffer", None), BlobBuffer(path, size)
        self.blob, self.blob_path, self.contentsize = blob, path, size
        if old is not None:
            old.close()

    def _get_value(self):
        if getattr(_local, "streaming", False) and not self.disposed:
            return BlobBody(self.blob_path, self.contentsize)
        return FakeKey.value.fget(self)

    value = property(_get_value, FakeKey.value.fset)

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_value_buffer", "lock")}
        state["value"] = b""  # FakeKey.__setstate__ expects one; the body stays in the blob
        return state

    def __setstate__(self, state: dict) -> None:
        FakeKey.__setstate__(self, state)
        self.adopt(self.blob, self.blob_path, state["contentsize"])


class _Untracked(list):
    """moto's models append every instance to `instances_tracked` for good, so that reset() can
    close their buffers; a PersistedKey holds no buffer to close, so restored keys skip the list."""

    def append(self, item) -> None:
        return None


PersistedKey.instances_tracked = _Untracked()


def as_persisted(key: FakeKey, blob: str, path: str, size: int) -> PersistedKey:
    """Turn a live FakeKey into a PersistedKey in place (moto keeps its references to it)."""
    key.__class__ = PersistedKey
    key.adopt(blob, path, size)
    return key
