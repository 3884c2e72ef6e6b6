"""Keeps what moto's S3 acknowledged on disk and restores it at start (placeholder: in memory)."""

from __future__ import annotations

from pathlib import Path


class S3Persistence:
    def __init__(self, root: Path | None):
        self.root = root

    def wrap(self, moto_app):
        return moto_app

    def restore(self) -> None:
        return None
