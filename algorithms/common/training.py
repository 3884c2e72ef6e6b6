"""The `train` program every built-in algorithm shares: read the contract, check hyperparameters
and channels (before any data is read), hand the algorithm a context with streaming channels,
and turn failures into SageMaker's FailureReason (`ClientError: …` / `AlgorithmError: …`)."""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from algorithms.common import contract, distributed, logs
from algorithms.common.errors import AlgorithmError, ClientError
from algorithms.common.hyperparameters import parse_hyperparameters
from algorithms.io import CSV, RECORDIO_PROTOBUF, Batch, DataFormatError, parse_content_type, read_batches
from algorithms.io.dense_file import map_dense_file


@dataclass
class Channel:
    name: str
    content_type: str | None
    mode: str  # File, FastFile or Pipe
    distribution: str
    epochs_read: int = 0

    @property
    def path(self) -> Path:
        return contract.DATA / self.name

    def files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.rglob("*") if p.is_file() and not p.name.startswith("."))

    def batches(self, batch_size: int = 1000, *, supported=None, **options) -> Iterator[Batch]:
        """One pass over the channel (one epoch). In Pipe mode each pass reads the next FIFO.

        In File mode, a recordio-protobuf file in the SDK's uniform dense layout is mapped whole
        (algorithms.io.dense_file) and its batches are copied out of the map, instead of going
        through the streaming reader's per-record loop; the batches are the same arrays."""
        try:
            if self.mode == "Pipe":
                fifo = contract.DATA / f"{self.name}_{self.epochs_read}"
                self.epochs_read += 1
                _await(fifo)
                with open(fifo, "rb") as stream:
                    yield from read_batches(stream, self.content_type, batch_size, supported=supported, **options)
                return
            dense = self._dense_files(supported, options)
            for path in self.files():
                whole = map_dense_file(path) if dense else None
                if whole is not None:
                    yield from _row_batches(whole, batch_size, options.get("dtype"))
                    continue
                with open(path, "rb") as stream:
                    yield from read_batches(stream, self.content_type, batch_size, supported=supported, **options)
        except DataFormatError as exc:
            raise ClientError(f"Unable to read data channel '{self.name}': {exc}") from None

    def _dense_files(self, supported, options: dict) -> bool:
        """Whether the files may take the dense-file path: recordio-protobuf, which the caller
        supports (otherwise the streaming reader raises the caller's error)."""
        if parse_content_type(self.content_type, options.get("default", CSV)).mime != RECORDIO_PROTOBUF:
            return False
        return supported is None or RECORDIO_PROTOBUF in supported


def _row_batches(whole: Batch, batch_size: int, dtype) -> Iterator[Batch]:
    """``whole`` (views of a mapped file) in batches of ``batch_size`` rows, each copied into
    contiguous, writable arrays as the streaming reader yields them (``dtype`` casts the features)."""
    features, labels = whole.features, whole.labels
    for start in range(0, len(features), batch_size):
        stop = start + batch_size
        yield Batch(np.array(features[start:stop], dtype=dtype or features.dtype, order="C"),
                    None if labels is None else np.array(labels[start:stop], order="C"))


def _await(path: Path, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise AlgorithmError(f"the Pipe-mode FIFO {path} did not appear")
        time.sleep(0.05)


@dataclass
class TrainingContext:
    hyperparameters: dict[str, Any]
    channels: dict[str, Channel]
    hosts: list[str]
    current_host: str
    model_dir: Path = field(default_factory=lambda: contract.MODEL)
    output_dir: Path = field(default_factory=lambda: contract.OUTPUT / "data")

    @property
    def is_leader(self) -> bool:
        return self.current_host == self.hosts[0]

    def gather(self, arrays: dict) -> list[dict] | None:
        """Every host's arrays on the leader (its own first); None on the other hosts."""
        return distributed.gather(arrays, self.hosts, self.current_host)


@dataclass(frozen=True)
class ChannelRule:
    required: bool = False
    distributions: tuple[str, ...] = ("FullyReplicated", "ShardedByS3Key")


def build_context(spec) -> TrainingContext:
    resources = contract.read_config("resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]})
    logs.set_host(resources["current_host"])
    hyperparameters = parse_hyperparameters(contract.read_config("hyperparameters.json", {}), spec.hyperparameters)
    inputs = contract.read_config("inputdataconfig.json", {})
    channels = {}
    for name, entry in inputs.items():
        rule = spec.channels.get(name)
        if rule is None:
            raise ClientError(f"Unable to initialize the algorithm. Channel '{name}' is not supported; "
                              f"expected one of {sorted(spec.channels)}")
        distribution = entry.get("S3DistributionType", "FullyReplicated")
        if distribution not in rule.distributions:
            raise ClientError(f"Channel '{name}' must be {' or '.join(rule.distributions)}, not {distribution}")
        # The SDK's record_set() channels carry no ContentType: first-party algorithms then read
        # recordio-protobuf (XGBoost's spec says libsvm).
        content_type = entry.get("ContentType") or getattr(spec, "default_train_content_type", RECORDIO_PROTOBUF)
        channels[name] = Channel(name, content_type, entry.get("TrainingInputMode", "File"), distribution)
    missing = [n for n, r in spec.channels.items() if r.required and n not in channels]
    if missing:
        raise ClientError(f"Unable to initialize the algorithm. Missing required channel(s): {', '.join(missing)}")
    return TrainingContext(hyperparameters, channels, sorted(resources["hosts"]), resources["current_host"])


def run_training(spec) -> int:
    """Run `spec.train(context)`; returns the process exit code."""
    started = time.time()
    try:
        context = build_context(spec)
        logs.info(f"Running {spec.name} on {context.current_host} of {len(context.hosts)} host(s) with "
                  f"hyperparameters {context.hyperparameters}")
        context.model_dir.mkdir(parents=True, exist_ok=True)
        spec.train(context)
    except ClientError as exc:
        return _fail(f"ClientError: {exc}", 2)
    except AlgorithmError as exc:
        return _fail(f"AlgorithmError: {exc}", 1)
    except Exception as exc:  # a bug of ours: say so, with the trace in the log
        traceback.print_exc()
        return _fail(f"AlgorithmError: {type(exc).__name__}: {exc}", 1)
    logs.info(f"Training finished in {time.time() - started:.3f} s")
    return 0


def _fail(reason: str, code: int) -> int:
    logs.error(reason)
    try:
        contract.FAILURE.parent.mkdir(parents=True, exist_ok=True)
        contract.FAILURE.write_text(reason[:1024])
    except OSError:
        pass
    return code


def main(spec, argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    mode = argv[0] if argv else "train"
    if mode == "train":
        sys.exit(run_training(spec))
    if mode == "serve":
        from algorithms.common.serving import serve

        sys.exit(serve(spec))
    print(f"usage: python -m algorithms.{spec.name} train|serve", file=sys.stderr)
    sys.exit(2)
