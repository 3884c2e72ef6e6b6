"""The /opt/ml paths the algorithms read, re-rooted by $SMLOCAL_OPT_ML outside a container.

A copy of the few names algorithms need (the emulator's runtime/contract.py holds the full list),
so the algorithms image does not carry the emulator.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(os.environ.get("SMLOCAL_OPT_ML", "/opt/ml"))
CONFIG = ROOT / "input" / "config"
DATA = ROOT / "input" / "data"
MODEL = ROOT / "model"
OUTPUT = ROOT / "output"
FAILURE = OUTPUT / "failure"


def read_config(name: str, default=None):
    path = CONFIG / name
    if not path.exists():
        return default
    return json.loads(path.read_text())


def serving_port() -> int:
    return int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
