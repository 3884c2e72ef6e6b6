"""K-Means on scikit-learn with SageMaker's hyperparameters, channels, metrics and artifacts.

SageMaker trains mini-batch k-means with extra centres and reduces them with a local Lloyd run;
here the leader gathers every host's shard and runs Lloyd's algorithm (k-means++ or random init)
on all of it, which is what the local Lloyd step converges to. `model_algo-1` holds one NDArray,
the (k, feature_dim) centroids, as `mxnet.nd.load` returns them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sklearn.cluster import KMeans

from algorithms.common import logs
from algorithms.common.errors import ClientError
from algorithms.common.hyperparameters import HP, auto_or, boolean, choice, floating, integer, json_list
from algorithms.common.training import ChannelRule, TrainingContext
from algorithms.io import CSV, JSON, JSONLINES, RECORDIO_PROTOBUF, Batch, ndarray

MODEL_FILE = "model_algo-1"


def _features(batch: Batch, feature_dim: int) -> np.ndarray:
    features = batch.features.toarray() if scipy.sparse.issparse(batch.features) else batch.features
    if features.shape[1] != feature_dim:
        raise ClientError(f"The data has {features.shape[1]} features, but feature_dim is {feature_dim}")
    return np.asarray(features, dtype=np.float32)


def read_all(channel, feature_dim: int, batch_size: int) -> np.ndarray:
    parts = [_features(b, feature_dim) for b in channel.batches(batch_size, label_size=0)]
    return np.concatenate(parts) if parts else np.zeros((0, feature_dim), np.float32)


def msd(points: np.ndarray, centroids: np.ndarray) -> tuple[float, float]:
    """(mean, sum) of squared distances to the closest centroid."""
    if len(points) == 0:
        return 0.0, 0.0
    squared = _closest(points, centroids)[1] ** 2
    return float(squared.mean()), float(squared.sum())


def _closest(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distances = (np.einsum("ij,ij->i", points, points)[:, None] - 2 * points @ centroids.T
                 + np.einsum("ij,ij->i", centroids, centroids)[None, :])
    closest = distances.argmin(axis=1)
    return closest, np.sqrt(np.maximum(distances[np.arange(len(points)), closest], 0.0))


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
        data = np.concatenate([s["data"] for s in shares])
        if len(data) < hp["k"]:
            raise ClientError(f"k={hp['k']} clusters need at least {hp['k']} records; the train channel has {len(data)}")
        logs.info(f"clustering {len(data)} records of {hp['feature_dim']} features into {hp['k']} clusters")
        trials = 1 if hp["local_lloyd_num_trials"] == "auto" else hp["local_lloyd_num_trials"]
        model = KMeans(n_clusters=hp["k"], init="k-means++" if hp["init_method"] == "kmeans++" else "random",
                       n_init=trials, max_iter=hp["local_lloyd_max_iter"], tol=hp["local_lloyd_tol"],
                       random_state=0).fit(data)
        centroids = model.cluster_centers_.astype(np.float32)
        for epoch in range(hp["epochs"]):
            logs.progress(100.0 * (epoch + 1) / hp["epochs"])
        mean, total = msd(data, centroids)
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
        closest, distance = _closest(np.asarray(features, dtype=np.float32), centroids)
        return {"closest_cluster": closest.astype(np.float32), "distance_to_cluster": distance.astype(np.float32)}
