"""CompleteMultipartUpload without the whole object in memory (persistent mode only).

Why: moto 5.2's FakeMultipart.complete() concatenates every part into a bytearray, copies it to
bytes, for its default full-object checksum (CRC64NVME) copies it into a second bytearray, and the
new FakeKey then writes it through a SpooledTemporaryFile that copies it again: measured 860 MiB
peak RSS to complete a 200 MiB upload, so a multi-GiB model artifact could not be uploaded at all.
Here every part is already a blob file, so a `PersistedUpload` streams the parts into the new
object's blob (computing the checksum on the way) and hands moto an `Assembled` value, which
FakeKey's value setter adopts instead of copying (hook 3 in s3_hooks.py).

What the client sees is moto's: InvalidPart, EntityTooSmall and MalformedXML in moto's order, the
ETag `md5(part md5s)-N`, and the same checksum type, value and part count as
moto.s3.models.MultipartChecksumBuilder (including its fallbacks when awscrt or crc32c is absent).
An upload with a part that is not a blob of this store (not yet persisted) falls back to moto.
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass

import moto.s3.models as moto_s3
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeMultipart
from moto.s3.utils import compute_checksum

from emulator.aws.s3_blobs import BlobStore, file_chunks


@dataclass(frozen=True)
class Assembled:
    """The value complete() hands to put_object(): a finished blob, not bytes."""

    blob: str
    path: str
    size: int


class PersistedUpload(FakeMultipart):
    store: BlobStore

    def complete(self, body):
        listed = list(body)
        parts = self._chosen(listed)
        if not all(self.store.holds(getattr(p, "blob_path", "")) for p in parts):
            return FakeMultipart.complete(self, iter(listed))
        algorithm = self.metadata.get("x-amz-checksum-algorithm") or "CRC64NVME"
        kind = self.metadata.get("x-amz-checksum-type") or (
            "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE")
        joined = _Joined([p.blob_path for p in parts], algorithm, per_part=kind == "COMPOSITE")
        blob, size = self.store.write(joined)
        md5s = b"".join(bytes.fromhex(p.etag.strip('"')) for p in parts)
        etag = f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(parts)}"
        if kind == "COMPOSITE":
            checksum = (kind, compute_checksum(b"".join(joined.part_sums), algorithm).decode(), len(parts))
        else:
            checksum = (kind, binascii.b2a_base64(joined.whole.digest(), newline=False).decode(), 1)
        return Assembled(blob, self.store.path(blob), size), etag, checksum

    def _chosen(self, listed):
        """The parts named by the request, validated exactly as moto's complete() does."""
        chosen, last = [], None
        for number, etag in listed:
            part = self.parts.get(number)
            if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
                raise InvalidPart()
            if last is not None and last.contentsize < moto_s3.S3_UPLOAD_PART_MIN_SIZE:
                raise EntityTooSmall()
            chosen.append(part)
            last = part
        if not chosen:
            raise MalformedXML
        return chosen


def as_persisted_upload(upload: FakeMultipart, store: BlobStore) -> PersistedUpload:
    upload.__class__ = PersistedUpload
    upload.store = store
    return upload


class _Joined:
    """The parts' bytes in order, checksummed (whole or per part) as they are handed out."""

    def __init__(self, paths: list[str], algorithm: str, per_part: bool):
        self.paths, self.algorithm, self.per_part = paths, algorithm, per_part
        self.whole = Running(algorithm)
        self.part_sums: list[bytes] = []

    def __iter__(self):
        for path in self.paths:
            running = Running(self.algorithm) if self.per_part else self.whole
            for chunk in file_chunks(path):
                running.update(chunk)
                yield chunk
            if self.per_part:
                self.part_sums.append(running.digest())


class Running:
    """Incremental form of moto.s3.utils.compute_checksum(..., encode_base64=False), same fallbacks."""

    def __init__(self, algorithm: str):
        self.hash, self.crc, self.value, self.width = None, None, 0, 4
        if algorithm == "SHA1":
            self.hash = hashlib.sha1(usedforsecurity=False)
        elif algorithm == "CRC32C":
            self.crc = _crc32c()
        elif algorithm == "CRC32":
            self.crc = binascii.crc32
        elif algorithm == "CRC64NVME":
            self.crc, self.width = _crc64nvme()
        else:
            self.hash = hashlib.sha256(usedforsecurity=False)

    def update(self, data: bytes) -> None:
        if self.hash is not None:
            self.hash.update(data)
        else:
            self.value = self.crc(data, self.value)

    def digest(self) -> bytes:
        return self.hash.digest() if self.hash is not None else self.value.to_bytes(self.width, "big")


def _has_crt() -> bool:
    from moto.s3 import utils

    return bool(getattr(utils, "HAS_CRT", False))


def _crc32c():
    try:
        import crc32c

        return lambda data, value: crc32c.crc32c(data, value)
    except ImportError:  # moto falls back to CRC32 too
        return binascii.crc32


def _crc64nvme():
    if _has_crt():
        from awscrt import checksums

        return checksums.crc64nvme, 8
    return binascii.crc32, 4  # moto's fallback without awscrt (a CRC32 labelled CRC64NVME)
