"""S3 objects as training and hosting read them: `s3://bucket/key` URIs split, and one object
streamed into a local file.

Shared by every capability that moves S3 data to a host's folder (training channels and
checkpoints, model data for endpoints), so none of them imports another's package for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CHUNK = 1024 * 1024


class NotAnS3Uri(ValueError):
    """A URI smlocal cannot read as `s3://bucket/key`."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise NotAnS3Uri(f"{uri} is not an s3:// URI.")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def fetch(s3, bucket: str, key: str, target: Path) -> None:
    """Stream one object into a file, CHUNK bytes at a time (never whole in memory)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        with open(target, "wb") as f:
            shutil.copyfileobj(body, f, CHUNK)
    finally:
        body.close()
