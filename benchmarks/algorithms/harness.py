"""What the algorithm benchmarks share: an /opt/ml tree for one `train` channel, and running our
program on it exactly as the process runtime does (`python -m algorithms.<name> train` with
$SMLOCAL_OPT_ML), timed from the outside and, through its own log line, from the inside.

Before the first run, algorithms/ is byte-compiled once (compileall, into the usual __pycache__
folders, which git ignores). Python reads .pyc files even under PYTHONDONTWRITEBYTECODE=1 (set
on the development machines) but never writes them, so without this every timed run compiled
all our modules from source again (~0.1-0.25 s of "start-up"), while the references' libraries
(numpy, scikit-learn, faiss) load precompiled bytecode from site-packages, as ours does from an
installed package or a built image."""

from __future__ import annotations

import compileall
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def write_config(root: Path, hyperparameters: dict, content_type: str,
                 distribution: str = "FullyReplicated") -> Path:
    """The config files of a one-host job with a `train` channel; returns the channel folder."""
    config, channel = root / "input" / "config", root / "input" / "data" / "train"
    config.mkdir(parents=True, exist_ok=True)
    channel.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
    (config / "inputdataconfig.json").write_text(json.dumps({"train": {
        "ContentType": content_type, "TrainingInputMode": "File", "S3DistributionType": distribution,
        "RecordWrapperType": "None"}}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    return channel


@dataclass(frozen=True)
class TrainRun:
    wall: float  # seconds, the whole program (interpreter start and imports included)
    inside: float | None  # seconds the program logs as "Training finished in" (no start-up)
    log: str


_compiled = False


def _compile_once() -> None:
    global _compiled
    if not _compiled:
        compileall.compile_dir(REPO / "algorithms", quiet=1)
        _compiled = True


def run_train(package: str, root: Path) -> TrainRun:
    _compile_once()
    env = {**os.environ, "SMLOCAL_OPT_ML": str(root), "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", f"algorithms.{package}", "train"], cwd=root, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"our training failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    inside = re.search(r"Training finished in ([0-9.]+) s", done.stdout)
    return TrainRun(wall, float(inside.group(1)) if inside else None, done.stdout)
