"""Job outputs: /opt/ml/model and /opt/ml/output/data of every host, merged and tarred to S3, and
checkpoints seeded from and synced to CheckpointConfig.S3Uri.

Tarballs are written to a file next to the job's tree and uploaded from there (multipart for large
ones), so nothing is held whole in memory.
"""

from __future__ import annotations

import tarfile
import threading
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from emulator.services.training.channels import fetch, split_s3_uri


def merged_files(folders: list[Path]) -> dict[str, Path]:
    """Relative path → file; on a name clash the later host wins, as SageMaker does."""
    files: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files[str(path.relative_to(folder))] = path
    return files


def write_tarball(files: dict[str, Path], target: Path, compress: bool = True) -> Path:
    with tarfile.open(target, "w:gz" if compress else "w") as tar:
        for name in sorted(files):
            tar.add(files[name], arcname=name, recursive=False)
    return target


MULTIPART_THRESHOLD = TransferConfig().multipart_threshold  # s3transfer's default, 8 MB


def put_file(s3, path: Path, bucket: str, key: str) -> None:
    """Upload a file: one PutObject below the multipart threshold (s3transfer's thread pool costs
    ~30 ms per file against smlocal's own S3), multipart through s3transfer above it."""
    if path.stat().st_size < MULTIPART_THRESHOLD:
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=key, Body=f)
    else:
        s3.upload_file(str(path), bucket, key)


def upload_outputs(s3, hosts: list[Path], output_path: str, job_name: str, scratch: Path,
                   compress: bool = True) -> str:
    """Upload model.tar.gz (always) and output.tar.gz (when any host wrote output data).
    Returns the model artifact's S3 URI."""
    bucket, prefix = split_s3_uri(output_path.rstrip("/") + "/")
    key_prefix = f"{prefix}{job_name}/output/"
    scratch.mkdir(parents=True, exist_ok=True)
    model = write_tarball(merged_files([h / "model" for h in hosts]), scratch / "model.tar.gz", compress)
    put_file(s3, model, bucket, key_prefix + "model.tar.gz")
    outputs = merged_files([h / "output" / "data" for h in hosts])
    if outputs:
        data = write_tarball(outputs, scratch / "output.tar.gz", compress)
        put_file(s3, data, bucket, key_prefix + "output.tar.gz")
    return f"s3://{bucket}/{key_prefix}model.tar.gz"


class CheckpointSync:
    """Seeds each host's checkpoint folder from S3 at start and uploads new or changed files."""

    def __init__(self, s3, uri: str, folders: list[Path]):
        self.s3 = s3
        self.bucket, prefix = split_s3_uri(uri.rstrip("/") + "/")
        self.prefix = prefix
        self.folders = folders
        self._seen: dict[Path, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def seed(self) -> None:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for entry in page.get("Contents", []):
                relative = entry["Key"][len(self.prefix):]
                if not relative or relative.endswith("/"):
                    continue
                for folder in self.folders:
                    target = folder / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    fetch(self.s3, self.bucket, entry["Key"], target)
                    stat = target.stat()
                    self._seen[target] = (stat.st_size, stat.st_mtime_ns)

    def sync(self) -> int:
        """Upload what changed since the last sync; returns how many files went up."""
        sent = 0
        with self._lock:
            for folder in self.folders:
                for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
                    if not path.is_file():
                        continue
                    stat = path.stat()
                    signature = (stat.st_size, stat.st_mtime_ns)
                    if self._seen.get(path) == signature:
                        continue
                    key = self.prefix + str(path.relative_to(folder))
                    put_file(self.s3, path, self.bucket, key)
                    self._seen[path] = signature
                    sent += 1
        return sent
