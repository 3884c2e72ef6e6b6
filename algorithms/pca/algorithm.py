"""PCA with SageMaker's hyperparameters, channels, artifact and answers.

Training streams the `train` channel once (File or Pipe, dense or sparse recordio-protobuf, CSV)
into mergeable moments (see moments.py); with several hosts on ShardedByS3Key every host sends
its count, mean and scatter to algo-1, which merges them exactly, so the components reflect every
shard. `algorithm_mode=regular` solves the scatter matrix exactly; `randomized` runs a randomized
eigensolver on it, or, beyond DENSE_LIMIT features, a single-pass sketch (solve.py). A channel
without a ContentType is recordio-protobuf (the SDK's `record_set` sends none). `model_algo-1` is
the MXNet NDArray dict SageMaker writes: `mean` (1 × feature_dim; zeros when subtract_mean is
false), `s` (num_components singular values) and `v` (feature_dim × num_components), components
in ascending order of `s`. Inference projects `(x - mean) · v`.
"""

from __future__ import annotations

import numpy as np

from algorithms.common import logs
from algorithms.common.errors import ClientError
from algorithms.common.hyperparameters import HP, boolean, choice, integer
from algorithms.common.prefetch import prefetch
from algorithms.common.training import ChannelRule, TrainingContext
from algorithms.io import (
    CSV, JSON, JSONLINES, RECORDIO_PROTOBUF, Batch, DataFormatError, ndarray, parse_content_type, read_batches,
)
from algorithms.io.dense_file import map_dense_file
from algorithms.io.sparse import issparse
from algorithms.pca import moments as mom
from algorithms.pca import solve

MODEL_FILE = "model_algo-1"
READ_CELLS = 1 << 24  # values per read (64 MB of float32): BLAS is fastest on tall batches
DENSE_LIMIT = 4096  # widest data whose d × d scatter (128 MB) randomized mode still forms
RANDOM_SEED = 0x9CA


def rows_per_read(feature_dim: int) -> int:
    """Rows per read; SageMaker's mini_batch_size only matters to its SGD-style reader."""
    return int(np.clip(READ_CELLS // feature_dim, 1024, 65536))


def _train_batches(channel, rows: int):
    """The train channel in blocks of ``rows``. A File-mode recordio file in the SDK's uniform
    dense layout is memory-mapped (algorithms.io.dense_file) and cut into blocks of strided
    views, which the accumulator centres straight into its own buffer: the file is never copied
    as a whole (the streaming reader's per-record framing was most of the 220 MB MNIST-sized
    read; then a whole-file read and a contiguous copy of the values cost another 0.15 s). The
    blocks keep the float32 products per block the same size as before, so the float64 sums
    (and the components) do not change. Anything else streams."""
    recordio = parse_content_type(channel.content_type, RECORDIO_PROTOBUF).mime == RECORDIO_PROTOBUF
    if channel.mode == "Pipe" or not recordio:
        yield from prefetch(channel.batches(rows, label_size=0, default=RECORDIO_PROTOBUF))
        return
    for path in channel.files():
        whole = map_dense_file(path)
        if whole is None:
            with open(path, "rb") as stream:
                try:
                    yield from prefetch(read_batches(stream, channel.content_type, rows, label_size=0,
                                                      default=RECORDIO_PROTOBUF))
                except DataFormatError as exc:
                    raise ClientError(f"Unable to read data channel '{channel.name}': {exc}") from None
            continue
        for start in range(0, len(whole), rows):
            yield Batch(whole.features[start:start + rows])


def _positive(name: str) -> HP:
    return HP(name, integer, check=lambda v: v > 0, expect="an integer greater than 0")


def _width(features, feature_dim: int) -> None:
    if features.shape[1] != feature_dim:
        raise ClientError(f"The data has {features.shape[1]} features, but feature_dim is {feature_dim}")


def plan(hp: dict) -> tuple[str, int]:
    """How to solve: ("exact", 0), ("randomized", width) on the d × d scatter while it is at most
    DENSE_LIMIT wide, else ("sketch", width); width = num_components + extra_components."""
    if hp["algorithm_mode"] != "randomized":
        return "exact", 0
    extra = max(10, hp["num_components"]) if hp["extra_components"] == -1 else hp["extra_components"]
    width = hp["num_components"] + extra
    if width >= hp["feature_dim"]:
        return "exact", 0
    return ("randomized" if hp["feature_dim"] <= DENSE_LIMIT else "sketch"), width


class PCASpec:
    name = "pca"
    hyperparameters = [
        _positive("feature_dim"),
        _positive("mini_batch_size"),
        _positive("num_components"),
        HP("algorithm_mode", choice("regular", "randomized"), "regular"),
        HP("subtract_mean", boolean, True),
        HP("extra_components", integer, -1, lambda v: v == -1 or v >= 0,
           "an integer greater than or equal to 0, or -1"),
    ]
    channels = {"train": ChannelRule(required=True), "test": ChannelRule()}

    # -- training -----------------------------------------------------------------------------

    def train(self, ctx: TrainingContext) -> None:
        hp = ctx.hyperparameters
        if hp["num_components"] > hp["feature_dim"]:
            raise ClientError(f"num_components ({hp['num_components']}) must not be greater than "
                              f"feature_dim ({hp['feature_dim']})")
        method, width = plan(hp)
        omega = mom.test_matrix(hp["feature_dim"], width) if method == "sketch" else None
        local = self._accumulate(ctx.channels["train"], hp["feature_dim"], omega)
        shares = ctx.gather(local.as_arrays())
        if shares is None:
            logs.info(f"sent the moments of {local.n} records to the leader")
            return
        merged = self._merge(shares, omega)
        mean, s, v = self._components(merged, omega, hp, method, width)
        logs.progress(100.0)
        self._log_training(merged, s, omega, hp)
        self._test(ctx, mean, v)
        ndarray.save(ctx.model_dir / MODEL_FILE, {"mean": mean.reshape(1, -1), "s": s, "v": v})
        logs.info(f"wrote {MODEL_FILE}: mean {(1, mean.size)}, s {s.shape}, v {v.shape}")

    @staticmethod
    def _accumulate(channel, feature_dim: int, omega) -> mom.Moments:
        accumulator = mom.Accumulator(feature_dim, omega)
        for batch in _train_batches(channel, rows_per_read(feature_dim)):
            _width(batch.features, feature_dim)
            accumulator.add(batch.features)
        return accumulator.moments()

    @staticmethod
    def _merge(shares: list[dict], omega) -> mom.Moments:
        parts = [mom.Moments.from_arrays(s) for s in shares]
        if sum(p.n for p in parts) == 0:
            raise ClientError("The train channel holds no records")
        logs.info(f"combining {len(parts)} host(s): {[p.n for p in parts]} records")
        return mom.merge(parts, omega)

    @staticmethod
    def _components(merged: mom.Moments, omega, hp: dict, method: str, width: int):
        """(mean, s, v) as float32, in the artifact's order."""
        k = hp["num_components"]
        matrix = merged.m2 if hp["subtract_mean"] else mom.about_origin(merged, omega)
        if method == "exact":
            s, v = solve.regular(matrix, k)
        elif method == "randomized":
            s, v = solve.randomized_dense(matrix, k, width, RANDOM_SEED)
        else:
            s, v = solve.randomized(matrix, omega, k)
        logs.info(f"solved with the {method} method" + (f" ({width} columns)" if width else ""))
        mean = merged.mean if hp["subtract_mean"] else np.zeros_like(merged.mean)
        return mean.astype(np.float32), s.astype(np.float32), v.astype(np.float32)

    @staticmethod
    def _log_training(merged: mom.Moments, s: np.ndarray, omega, hp: dict) -> None:
        if omega is None and hp["subtract_mean"]:
            total = float(np.trace(merged.m2))
            ratio = float((s.astype(np.float64) ** 2).sum() / total) if total > 0 else 1.0
            logs.quality("train", "explained_variance_ratio", ratio, kind="score")
        logs.info(f"top singular values (ascending): {s[-min(len(s), 5):].tolist()}")

    def _test(self, ctx: TrainingContext, mean: np.ndarray, v: np.ndarray) -> None:
        channel = ctx.channels.get("test")
        if channel is None:
            logs.info("Test data is not provided.")
            return
        squared, rows = 0.0, 0
        batches = channel.batches(rows_per_read(v.shape[0]), label_size=0, default=RECORDIO_PROTOBUF)
        for batch in prefetch(batches):
            _width(batch.features, v.shape[0])
            x = _dense(batch.features) - mean
            residual = x - (x @ v) @ v.T
            squared += float(np.einsum("ij,ij->", residual, residual, dtype=np.float64))
            rows += x.shape[0]
        error = squared / rows if rows else 0.0
        logs.quality("test", "reconstruction_error", error)
        logs.test_score("reconstruction_error", error)

    # -- serving ------------------------------------------------------------------------------

    request_types = (CSV, JSON, JSONLINES, RECORDIO_PROTOBUF)
    response_types = (JSON, JSONLINES, CSV, RECORDIO_PROTOBUF)
    default_content_type = CSV
    default_accept = JSON
    json_key = "projections"

    def load(self, model_dir) -> dict[str, np.ndarray]:
        arrays = ndarray.load(model_dir / MODEL_FILE)
        if not isinstance(arrays, dict) or not {"mean", "v"} <= set(arrays):
            raise ValueError(f"{MODEL_FILE} is not a PCA model (expected the NDArrays mean, s, v)")
        v = np.asarray(arrays["v"], dtype=np.float32)
        mean = np.asarray(arrays["mean"], dtype=np.float32).reshape(1, -1)
        return {"mean": mean, "v": v, "offset": mean @ v}

    def predict(self, model: dict[str, np.ndarray], batch: Batch, accept) -> dict[str, np.ndarray]:
        v = model["v"]
        if batch.features.shape[1] != v.shape[0]:
            raise ValueError(f"each record needs {v.shape[0]} features, not {batch.features.shape[1]}")
        features = batch.features.astype(np.float32)
        projection = np.asarray(features @ v) - model["offset"]
        return {"projection": projection.astype(np.float32)}


def _dense(features) -> np.ndarray:
    array = features.toarray() if issparse(features) else features
    return np.asarray(array, dtype=np.float32)
