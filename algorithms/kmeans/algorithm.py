"""K-Means with SageMaker's hyperparameters, channels, metrics and artifacts.

SageMaker trains mini-batch k-means with extra centres and reduces them with a local Lloyd run.
Here the leader gathers every host's shard and does the same in numpy (algorithms/kmeans/lloyd.py),
then polishes the k centres with Lloyd's iterations over all the records, so the model matches
scikit-learn's KMeans in quality at a fraction of its time. `model_algo-1` holds one NDArray, the
(k, feature_dim) centroids, as `mxnet.nd.load` returns them.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse

from algorithms.common import logs
from algorithms.common.errors import ClientError
from algorithms.common.hyperparameters import (
    HP,
    auto_or,
    boolean,
    choice,
    floating,
    integer,
    json_list,
)
from algorithms.common.training import ChannelRule, TrainingContext
from algorithms.io import (
    CSV,
    JSON,
    JSONLINES,
    RECORDIO_PROTOBUF,
    Batch,
    DataFormatError,
    ndarray,
    parse_content_type,
    read_batches,
)
from algorithms.io.dense_file import read_dense_file
from algorithms.kmeans import lloyd

MODEL_FILE = "model_algo-1"
LOCAL_TRIALS = 10  # local_lloyd_num_trials=auto: the local step runs on a few dozen centres, so trials are cheap


def _features(batch: Batch, feature_dim: int) -> np.ndarray:
    features = batch.features.toarray() if scipy.sparse.issparse(batch.features) else batch.features
    if features.shape[1] != feature_dim:
        raise ClientError(f"The data has {features.shape[1]} features, but feature_dim is {feature_dim}")
    return np.asarray(features, dtype=np.float32)


def read_all(channel, feature_dim: int, batch_size: int) -> np.ndarray:
    started = time.perf_counter()
    parts = [_features(b, feature_dim) for b in _batches(channel, batch_size)]
    data = np.concatenate(parts) if parts else np.zeros((0, feature_dim), np.float32)
    # The same line as the other first-party algorithms: benchmarks split reading from training on it.
    logs.info(f"read {len(data)} records from channel '{channel.name}' in {time.perf_counter() - started:.3f} s")
    return data


def _batches(channel, batch_size: int):
    """The channel's records: a File-mode recordio file in the SDK's uniform dense layout as one
    array (algorithms.io.dense_file: no per-record loop), anything else through the streaming reader."""
    recordio = parse_content_type(channel.content_type, RECORDIO_PROTOBUF).mime == RECORDIO_PROTOBUF
    if channel.mode == "Pipe" or not recordio:
        yield from channel.batches(batch_size, label_size=0)
        return
    for path in channel.files():
        whole = read_dense_file(path)
        if whole is not None:
            yield whole
            continue
        with open(path, "rb") as stream:
            try:
                yield from read_batches(stream, channel.content_type, batch_size, label_size=0)
            except DataFormatError as exc:
                raise ClientError(f"Unable to read data channel '{channel.name}': {exc}") from None


def msd(points: np.ndarray, centroids: np.ndarray) -> tuple[float, float]:
    """(mean, sum) of squared distances to the closest centroid."""
    if len(points) == 0:
        return 0.0, 0.0
    squared = lloyd.closest(points, centroids)[1].astype(np.float64)
    return float(squared.mean()), float(squared.sum())


def extra_centres(hp: dict, records: int) -> int:
    """extra_center_factor=auto: AWS does not publish its rule; ours grows with log10 of the data
    (5 for MNIST's 70,000), enough spare centres for the local Lloyd step to choose from."""
    factor = hp["extra_center_factor"]
    return max(2, math.ceil(math.log10(max(records, 10)))) if factor == "auto" else factor


def cluster(data: np.ndarray, hp: dict) -> tuple[np.ndarray, float]:
    """Mini-batch passes through k × extra_center_factor centres, the local Lloyd reduction to k,
    then Lloyd's iterations over all the data (see algorithms/kmeans/lloyd.py for why).
    Returns the centroids and the sum of squared distances of the records to them."""
    k, batch, rng = hp["k"], hp["mini_batch_size"], np.random.default_rng(0)
    started = time.perf_counter()
    centres = lloyd.initial(data[:max(batch, k * extra_centres(hp, len(data)))],
                            min(k * extra_centres(hp, len(data)), len(data)), hp["init_method"], rng)
    weights = np.zeros(len(centres), np.float32)
    for epoch in range(hp["epochs"]):
        lloyd.mini_batch_pass((data[i:i + batch] for i in range(0, len(data), batch)), centres, weights,
                              hp["half_life_time_size"])
        logs.progress(100.0 * (epoch + 1) / hp["epochs"])
    trials = LOCAL_TRIALS if hp["local_lloyd_num_trials"] == "auto" else hp["local_lloyd_num_trials"]
    centroids = lloyd.reduce_centres(centres, weights, k, hp["local_lloyd_init_method"], hp["local_lloyd_max_iter"],
                                     hp["local_lloyd_tol"], trials, rng)
    logs.info(f"mini-batch pass and local Lloyd over {len(centres)} centres in {time.perf_counter() - started:.3f} s")
    started = time.perf_counter()
    centroids, inertia, iterations = lloyd.lloyd(data, centroids, hp["local_lloyd_max_iter"], hp["local_lloyd_tol"])
    logs.info(f"Lloyd over all records: {iterations} iteration(s), inertia {inertia:.6g}, "
              f"in {time.perf_counter() - started:.3f} s")
    return centroids, inertia


class KMeansSpec:
    name = "kmeans"
    hyperparameters = [
        HP("feature_dim", integer, check=lambda v: v > 0, expect="an integer greater than 0"),
        HP("k", integer, check=lambda v: v > 0, expect="an integer greater than 0"),
        HP("epochs", integer, 1, lambda v: v >= 1, "an integer of at least 1"),
        HP("eval_metrics", json_list, ["msd"], lambda v: set(v) <= {"msd", "ssd"}, 'a list of "msd" and "ssd"'),
        HP("extra_center_factor", auto_or(integer), "auto"),
        HP("half_life_time_size", integer, 0),
        HP("init_method", choice("random", "kmeans++"), "random"),
        HP("local_lloyd_init_method", choice("random", "kmeans++"), "kmeans++"),
        HP("local_lloyd_max_iter", integer, 300, lambda v: v >= 1, "an integer of at least 1"),
        HP("local_lloyd_num_trials", auto_or(integer), "auto"),
        HP("local_lloyd_tol", floating, 0.0001, lambda v: 0 <= v <= 1, "between 0 and 1"),
        HP("mini_batch_size", integer, 5000, lambda v: v >= 1, "an integer of at least 1"),
        HP("force_dense", boolean, True),
    ]
    channels = {"train": ChannelRule(required=True), "test": ChannelRule(distributions=("FullyReplicated",))}

    # -- training -----------------------------------------------------------------------------

    def train(self, ctx: TrainingContext) -> None:
        hp = ctx.hyperparameters
        data = read_all(ctx.channels["train"], hp["feature_dim"], hp["mini_batch_size"])
        shares = ctx.gather({"data": data})
        if shares is None:
            logs.info("sent this host's share to the leader")
            return
        data = shares[0]["data"] if len(shares) == 1 else np.concatenate([s["data"] for s in shares])
        if len(data) < hp["k"]:
            raise ClientError(f"k={hp['k']} clusters need at least {hp['k']} records; the train channel has {len(data)}")
        logs.info(f"clustering {len(data)} records of {hp['feature_dim']} features into {hp['k']} clusters")
        centroids, total = cluster(data, hp)
        mean = total / len(data)
        logs.quality("train", "msd", mean)
        logs.quality("train", "ssd", total)
        self._test(ctx, centroids)
        ndarray.save(ctx.model_dir / MODEL_FILE, [centroids])
        logs.info(f"wrote {MODEL_FILE}: centroids of shape {centroids.shape}")

    def _test(self, ctx: TrainingContext, centroids: np.ndarray) -> None:
        channel = ctx.channels.get("test")
        if channel is None:
            logs.info("Test data is not provided.")
            return
        hp = ctx.hyperparameters
        mean, total = msd(read_all(channel, hp["feature_dim"], hp["mini_batch_size"]), centroids)
        scores = {"msd": mean, "ssd": total}
        for name in hp["eval_metrics"]:
            logs.quality("test", name, scores[name])
            logs.test_score(name, scores[name])

    # -- serving ------------------------------------------------------------------------------

    request_types = (CSV, JSON, JSONLINES, RECORDIO_PROTOBUF)
    response_types = (JSON, JSONLINES, CSV, RECORDIO_PROTOBUF)
    default_content_type = CSV
    default_accept = JSON
    json_key = "predictions"

    def load(self, model_dir) -> np.ndarray:
        arrays = ndarray.load(model_dir / MODEL_FILE)
        return np.asarray(arrays[0], dtype=np.float32)

    def predict(self, centroids: np.ndarray, batch: Batch, accept) -> dict[str, np.ndarray]:
        if batch.features.shape[1] != centroids.shape[1]:
            raise ValueError(f"each record needs {centroids.shape[1]} features, not {batch.features.shape[1]}")
        features = batch.features.toarray() if scipy.sparse.issparse(batch.features) else batch.features
        points = np.asarray(features, dtype=np.float32)
        closest, _ = lloyd.closest(points, centroids)
        # The distance from the difference itself: the BLAS expansion's float32 cancellation would
        # make a record's answer depend on which other records came in the same request.
        distance = np.sqrt(np.square(points - centroids[closest]).sum(axis=1))
        return {"closest_cluster": closest.astype(np.float32), "distance_to_cluster": distance}
