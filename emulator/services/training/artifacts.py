"""Job outputs: /opt/ml/model and /opt/ml/output/data of every host, merged and tarred to S3, and
checkpoints seeded from and synced to CheckpointConfig.S3Uri.

Tarballs are written to a file next to the job's tree and uploaded from there (multipart for large
ones), so nothing is held whole in memory. Only regular files go up, each opened without following
links from its host's root (runtime/confined.py): a container's links, FIFOs and devices are
skipped, and each skip is told to `warn(host_root, message)`, which the job writes to its log.
"""

from __future__ import annotations

import os
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from boto3.s3.transfer import TransferConfig

from emulator.aws.s3_objects import fetch, split_s3_uri
from emulator.runtime import confined
from emulator.services.training.channels import illegal_key

Warn = Callable[[Path, str], None]


def _ignore(root: Path, message: str) -> None:
    return None


@dataclass(frozen=True)
class HostFile:
    """A file of one host's tree: its root and its path below it (e.g. `model/weights.bin`)."""

    root: Path
    relative: str

    def open(self) -> BinaryIO:
        return confined.open_regular(self.root, self.relative)


def skipped_message(relative: str, why: str = "it is a link, a FIFO, a socket or a device") -> str:
    return (f"smlocal: /opt/ml/{os.path.normpath(relative)} was not uploaded: {why}. "
            "Only regular files are uploaded, and links are never followed.")


def merged_files(roots: list[Path], folder: str, warn: Warn = _ignore) -> dict[str, HostFile]:
    """Relative path under `folder` → file, over every host; on a clash the later host wins, as
    SageMaker does."""
    files: dict[str, HostFile] = {}
    for root in roots:
        found, skipped = confined.regular_files(root, folder)
        for name in skipped:
            warn(root, skipped_message(f"{folder}/{name}"))
        for name in found:
            files[name] = HostFile(root, f"{folder}/{name}")
    return files


def write_tarball(files: dict[str, HostFile], target: Path, compress: bool = True, warn: Warn = _ignore) -> Path:
    with tarfile.open(target, "w:gz" if compress else "w") as tar:
        for name in sorted(files):
            try:
                with files[name].open() as f:
                    tar.addfile(tar.gettarinfo(arcname=name, fileobj=f), f)
            except (confined.NotRegular, FileNotFoundError) as exc:  # changed since it was listed
                warn(files[name].root, skipped_message(files[name].relative, str(exc)))
    return target


MULTIPART_THRESHOLD = TransferConfig().multipart_threshold  # s3transfer's default, 8 MB


def put_file(s3, f: BinaryIO, size: int, bucket: str, key: str) -> None:
    """Upload an open file: one PutObject below the multipart threshold (s3transfer's thread pool
    costs ~30 ms per file against smlocal's own S3), multipart through s3transfer above it."""
    if size < MULTIPART_THRESHOLD:
        s3.put_object(Bucket=bucket, Key=key, Body=f)
    else:
        s3.upload_fileobj(f, bucket, key)


def upload_outputs(s3, hosts: list[Path], output_path: str, job_name: str, scratch: Path,
                   compress: bool = True, warn: Warn = _ignore) -> str:
    """Upload model.tar.gz (always) and output.tar.gz (when any host wrote output data).
    Returns the model artifact's S3 URI."""
    bucket, prefix = split_s3_uri(output_path.rstrip("/") + "/")
    key_prefix = f"{prefix}{job_name}/output/"
    scratch.mkdir(parents=True, exist_ok=True)
    for name, folder, always in (("model.tar.gz", "model", True), ("output.tar.gz", "output/data", False)):
        files = merged_files(hosts, folder, warn)
        if files or always:
            tarball = write_tarball(files, scratch / name, compress, warn)
            with open(tarball, "rb") as f:
                put_file(s3, f, tarball.stat().st_size, bucket, key_prefix + name)
    return f"s3://{bucket}/{key_prefix}model.tar.gz"


class CheckpointSync:
    """Seeds each host's checkpoint folder from S3 at start and uploads new or changed files."""

    def __init__(self, s3, uri: str, roots: list[Path], folder: str = "checkpoints", warn: Warn = _ignore):
        self.s3 = s3
        self.bucket, prefix = split_s3_uri(uri.rstrip("/") + "/")
        self.prefix = prefix
        self.roots, self.folder, self.warn = roots, folder, warn
        self._seen: dict[HostFile, tuple[int, int]] = {}
        self._skipped: set[tuple[Path, str]] = set()  # told once, not at every sync
        self._lock = threading.Lock()

    def seed(self) -> None:
        """Before the hosts start: every object under the prefix into every host's folder (a key
        that would land outside it fails the job)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for entry in page.get("Contents", []):
                relative = entry["Key"][len(self.prefix):]
                if not relative or relative.endswith("/"):
                    continue
                try:
                    relative = confined.relative_path(relative)
                except confined.UnsafeName as exc:
                    raise illegal_key(self.bucket, entry["Key"], exc) from None
                for root in self.roots:
                    target = root / self.folder / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    fetch(self.s3, self.bucket, entry["Key"], target)
                    stat = target.stat()
                    self._seen[HostFile(root, f"{self.folder}/{relative}")] = (stat.st_size, stat.st_mtime_ns)

    def sync(self) -> int:
        """Upload what changed since the last sync; returns how many files went up."""
        sent = 0
        with self._lock:
            for root in self.roots:
                found, skipped = confined.regular_files(root, self.folder)
                self._tell(root, skipped)
                for name in found:
                    sent += self._upload(HostFile(root, f"{self.folder}/{name}"), name)
        return sent

    def _upload(self, file: HostFile, name: str) -> int:
        try:
            f = file.open()
        except (confined.NotRegular, FileNotFoundError):
            return 0  # swapped or gone since it was listed; the next sync looks again
        with f:
            stat = os.fstat(f.fileno())
            signature = (stat.st_size, stat.st_mtime_ns)
            if self._seen.get(file) == signature:
                return 0
            put_file(self.s3, f, stat.st_size, self.bucket, self.prefix + name)
        self._seen[file] = signature
        return 1

    def _tell(self, root: Path, skipped: list[str]) -> None:
        for name in skipped:
            if (root, name) not in self._skipped:
                self._skipped.add((root, name))
                self.warn(root, skipped_message(f"{self.folder}/{name}"))
