"""Input channels: which S3 objects each host gets, and how they reach it (File, FastFile, Pipe).

SageMaker's rules, kept here: S3Prefix takes every object under the prefix, ManifestFile lists
them, AugmentedManifestFile (Pipe only) yields JSON Lines records; ShardedByS3Key gives each host
about 1/n of the *objects*; ShuffleConfig shuffles the list (again every Pipe epoch); Pipe mode
feeds a FIFO `<channel>_<epoch>` per epoch, the next one made when the previous was read.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import random
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from emulator.aws.s3_objects import CHUNK, fetch, split_s3_uri
from emulator.runtime import confined
from emulator.runtime.contract import OptMl

RECORDIO_MAGIC = 0xCED7230A


class ChannelError(Exception):
    """A channel that cannot be read; its message is the job's FailureReason."""


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    relative: str  # path under /opt/ml/input/data/<channel>/


@dataclass(frozen=True)
class ManifestRecord:
    """One line of an augmented manifest: the attributes to send, in order."""

    attributes: tuple


def illegal_key(bucket: str, key: str, error: confined.UnsafeName) -> ChannelError:
    """A key that would land outside its folder, refused in SageMaker's words."""
    return ChannelError(f"ClientError: Data download failed:Failed to download data. S3 key: s3://{bucket}/{key} "
                        f"has an illegal char sub-sequence '{error.step}' in it")


def checked_object(bucket: str, key: str, relative: str) -> S3Object:
    """The object, once its key and its path under the channel folder are known to stay inside."""
    try:
        confined.relative_path(key)
        return S3Object(bucket, key, confined.relative_path(relative))
    except confined.UnsafeName as exc:
        raise illegal_key(bucket, key, exc) from None


def channel_mode(channel: dict, default_mode: str) -> str:
    return channel.get("InputMode") or default_mode


class ChannelSource:
    """Resolves one channel's objects (or manifest records) through an S3 client."""

    def __init__(self, s3, channel: dict, region: str, role: str):
        self.s3 = s3
        self.channel = channel
        self.source = channel["DataSource"].get("S3DataSource")
        self.region = region
        self.role = role

    @property
    def name(self) -> str:
        return self.channel["ChannelName"]

    def items(self) -> list:
        if self.source is None:
            raise ChannelError(f"ClientError: channel {self.name}: smlocal reads only S3 data sources.")
        kind = self.source["S3DataType"]
        items = {"S3Prefix": self._prefix, "ManifestFile": self._manifest,
                 "AugmentedManifestFile": self._augmented}[kind]()
        if not items:
            bucket, _ = split_s3_uri(self.source["S3Uri"])
            raise ChannelError(
                f'ClientError: No S3 objects found under S3 URL "{self.source["S3Uri"]}" given in input data '
                f"source. Please ensure that the bucket exists in the selected region ({self.region}), that "
                f'objects exist under that S3 prefix, and that the role "{self.role}" has "s3:ListBucket" '
                f'permissions on bucket "{bucket}".'
            )
        return items

    def _prefix(self) -> list[S3Object]:
        bucket, prefix = split_s3_uri(self.source["S3Uri"])
        objects = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    key = entry["Key"]
                    if key.endswith("/"):
                        continue  # "folder" placeholder objects
                    relative = key[len(prefix):].lstrip("/") or key.rsplit("/", 1)[-1]
                    objects.append(checked_object(bucket, key, relative))
        except self.s3.exceptions.NoSuchBucket:
            return []
        return objects

    def _read_object(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise ChannelError(f"ClientError: could not read {uri}: {exc}") from None

    def _manifest(self) -> list[S3Object]:
        try:
            entries = json.loads(self._read_object(self.source["S3Uri"]))
            prefix = entries[0]["prefix"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ChannelError(
                f"ClientError: the manifest {self.source['S3Uri']} is not a JSON list starting with "
                '{"prefix": "s3://..."}.') from None
        bucket, key_prefix = split_s3_uri(prefix)
        return [checked_object(bucket, key_prefix + str(rel), str(rel)) for rel in entries[1:]]

    def _augmented(self) -> list[ManifestRecord]:
        names = self.source.get("AttributeNames") or []
        if not names:
            raise ChannelError(f"ClientError: channel {self.name}: AugmentedManifestFile needs AttributeNames.")
        records = []
        for number, line in enumerate(self._read_object(self.source["S3Uri"]).decode().splitlines(), 1):
            if not line.strip():
                continue
            try:
                document = json.loads(line)
                records.append(ManifestRecord(tuple(document[n] for n in names)))
            except (ValueError, KeyError):
                raise ChannelError(
                    f"ClientError: line {number} of augmented manifest {self.source['S3Uri']} is not JSON "
                    f"with the attributes {names}.") from None
        return records


def assign(items: list, hosts: int, distribution: str, seed: int | None) -> list[list]:
    """Each host's share: everything (FullyReplicated) or every n-th object (ShardedByS3Key)."""
    ordered = list(items)
    if seed is not None:
        random.Random(seed).shuffle(ordered)
    if distribution != "ShardedByS3Key" or hosts == 1:
        return [ordered for _ in range(hosts)]
    return [ordered[i::hosts] for i in range(hosts)]


def download(s3, objects: Iterable[S3Object], folder: Path, cancelled: threading.Event) -> None:
    """File and FastFile mode: objects land under the channel folder at their relative paths.

    One streamed GetObject per object: S3 is smlocal itself, so s3transfer's HEAD, thread pool and
    ranged parts only add ~30 ms per object (most channels are a few small files)."""
    for obj in objects:
        if cancelled.is_set():
            return
        target = confined.beneath(folder, obj.relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        fetch(s3, obj.bucket, obj.key, target)


def replicate(source: Path, target: Path) -> None:
    """Copy a downloaded channel to another host, by hard link where the filesystem allows."""
    for path in source.rglob("*"):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, destination)
            except OSError:
                shutil.copy2(path, destination)


class PipeFeeder(threading.Thread):
    """Feeds one channel of one host through FIFOs, one per epoch, until the job ends."""

    def __init__(self, s3, opt_ml: OptMl, channel: dict, items: list, seed: int | None,
                 finished: threading.Event):
        super().__init__(name=f"pipe-{channel['ChannelName']}", daemon=True)
        self.s3, self.opt_ml, self.channel, self.items = s3, opt_ml, channel, items
        self.seed, self.finished = seed, finished
        self.error: str | None = None
        # The FIFOs are made, opened and removed through this descriptor, taken before the host
        # starts: whatever the container later does to its folders, smlocal stays in this one.
        self.folder = confined.open_directory(opt_ml.root, str(opt_ml.data.relative_to(opt_ml.root)))

    def run(self) -> None:
        try:
            self._feed_epochs()
        finally:
            os.close(self.folder)

    def _feed_epochs(self) -> None:
        epoch = 0
        while not self.finished.is_set():
            name = self.opt_ml.pipe(self.channel["ChannelName"], epoch).name
            try:
                os.mkfifo(name, dir_fd=self.folder)
                fd = self._open_for_writing(name)
                if fd is None:
                    return
                with os.fdopen(fd, "wb", buffering=CHUNK) as pipe:
                    self._feed(pipe, epoch)
            except BrokenPipeError:
                pass  # the reader closed the epoch early; that is allowed
            except Exception as exc:  # a broken object must not kill the job's thread silently
                self.error = f"ClientError: Pipe mode channel {self.channel['ChannelName']}: {exc}"
                return
            finally:
                _unlink(self.folder, name)
            epoch += 1

    def _open_for_writing(self, name: str) -> int | None:
        """Wait for a reader without blocking forever, so the job can end while nobody reads."""
        while not self.finished.is_set():
            try:
                fd = confined.open_fifo_for_writing(self.folder, name)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.02)
                continue
            os.set_blocking(fd, True)
            return fd
        return None

    def _feed(self, pipe, epoch: int) -> None:
        items = list(self.items)
        if self.seed is not None:
            random.Random(self.seed + epoch).shuffle(items)
        wrap = self.channel.get("RecordWrapperType") == "RecordIO"
        gzipped = self.channel.get("CompressionType") == "Gzip"
        for item in items:
            if self.finished.is_set():
                return
            for piece in self._pieces(item, gzipped, whole=wrap):
                if wrap:
                    write_recordio(pipe, piece)
                else:
                    pipe.write(piece)

    def _pieces(self, item, gzipped: bool, whole: bool) -> Iterator[bytes]:
        """An object's bytes in chunks (or whole, to wrap it as one record); a manifest line's
        attributes one by one, `s3://` references fetched."""
        if isinstance(item, ManifestRecord):
            for value in item.attributes:
                if isinstance(value, str) and value.startswith("s3://"):
                    bucket, key = split_s3_uri(value)
                    yield self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                else:
                    yield value.encode() if isinstance(value, str) else json.dumps(value).encode()
            return
        body = self.s3.get_object(Bucket=item.bucket, Key=item.key)["Body"]
        stream = gzip.GzipFile(fileobj=body) if gzipped else body
        if whole:
            yield stream.read()
        else:
            yield from iter(lambda: stream.read(CHUNK), b"")


def write_recordio(pipe, payload: bytes) -> None:
    """One RecordIO record: magic, length (cflag 0), payload, zero padding to 4 bytes."""
    length = len(payload)
    pipe.write(RECORDIO_MAGIC.to_bytes(4, "little") + length.to_bytes(4, "little"))
    pipe.write(payload)
    pipe.write(b"\0" * ((4 - length % 4) % 4))


def _unlink(folder: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except FileNotFoundError:
        pass
