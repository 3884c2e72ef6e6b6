"""k-NN on faiss with SageMaker's hyperparameters, channels, logs, artifact and answers.

Training samples `sample_size` records from each host's share of the `train` channel (uniformly,
in one streaming pass: every record gets a random key and the smallest keys are kept), gathers
the samples on algo-1, which reduces their dimension if asked, builds the faiss index and writes
`model_algo-1` (layout in index.py). A `test` channel is scored on algo-1:
`#test_score (algo-1) : ('accuracy', 0.98)` for a classifier, `('mse', 0.2)` for a regressor.

Serving answers `{"predictions": [{"predicted_label": 0.0}]}`; `Accept: application/json;
verbose=true` (or jsonlines/recordio with `verbose=true`) adds each row's `distances`
(ascending) and the neighbours' `labels`.
"""

from __future__ import annotations

import numpy as np

from algorithms.common import logs
from algorithms.common.errors import ClientError
from algorithms.common.hyperparameters import HP, auto_or, choice, integer
from algorithms.common.training import ChannelRule, TrainingContext
from algorithms.io import CSV, JSON, JSONLINES, RECORDIO_PROTOBUF, Batch, parse_accept
from algorithms.io.sparse import issparse
from algorithms.knn import index as knn_index

MODEL_FILE = "model_algo-1"
_POSITIVE = {"check": lambda v: v > 0, "expect": "an integer greater than 0"}


def _features(batch: Batch, feature_dim: int) -> np.ndarray:
    features = batch.features.toarray() if issparse(batch.features) else batch.features
    if features.shape[1] != feature_dim:
        raise ClientError(f"The data has {features.shape[1]} features, but feature_dim is {feature_dim}")
    return np.asarray(features, np.float32)


def _labels(batch: Batch, channel: str) -> np.ndarray:
    if batch.labels is None:
        raise ClientError(f"The {channel} channel's records have no label; k-NN needs one label per record "
                          "(the first CSV column, or the recordio label 'values')")
    labels = np.asarray(batch.labels, np.float32)
    if labels.ndim != 1:
        raise ClientError(f"The {channel} channel's records have {labels.shape[1]} labels each; k-NN takes one")
    return labels


def _joined(shares: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """All hosts' samples as one array each. A single-host job's sample is used as it is:
    concatenating one array would copy the whole sample (25 MB for 50,000 × 128) for nothing."""
    if len(shares) == 1:
        return shares[0]["points"], shares[0]["labels"]
    return np.concatenate([s["points"] for s in shares]), np.concatenate([s["labels"] for s in shares])


class Reservoir:
    """A uniform sample of at most `size` rows of a stream: the rows with the smallest random keys
    (kept in stream order). Batches are buffered and cut back to `size` rows when they pass 2×size."""

    def __init__(self, size: int, seed: int):
        self.size, self.rng = size, np.random.default_rng(seed)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.buffered = self.seen = 0

    def add(self, points: np.ndarray, labels: np.ndarray) -> None:
        self.parts.append((self.rng.random(len(points)), points, labels))
        self.seen += len(points)
        self.buffered += len(points)
        if self.buffered > 2 * self.size:
            self.parts = [self._cut()]
            self.buffered = self.size

    def _cut(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(self.parts) == 1:  # one batch (a whole dense file): used as it is, no copy
            keys, points, labels = self.parts[0]
        else:
            keys, points, labels = (np.concatenate(column) for column in zip(*self.parts))
        if len(keys) > self.size:
            keep = np.sort(np.argpartition(keys, self.size - 1)[:self.size])
            keys, points, labels = keys[keep], points[keep], labels[keep]
        return keys, points, labels

    def sample(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.parts:
            return np.zeros((0, dim), np.float32), np.zeros(0, np.float32)
        _, points, labels = self._cut()
        return points, labels


class KNNSpec:
    name = "knn"
    hyperparameters = [
        HP("feature_dim", integer, **_POSITIVE),
        HP("k", integer, **_POSITIVE),
        HP("predictor_type", choice("classifier", "regressor")),
        HP("sample_size", integer, **_POSITIVE),
        HP("dimension_reduction_type", choice("sign", "fjlt"), None),
        HP("dimension_reduction_target", integer, None, **_POSITIVE),
        HP("index_type", choice("faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ"), "faiss.Flat"),
        HP("index_metric", choice("L2", "INNER_PRODUCT", "COSINE"), "L2"),
        HP("faiss_index_ivf_nlists", auto_or(integer), "auto", **_POSITIVE),
        HP("faiss_index_pq_m", integer, None, lambda v: v in knn_index.PQ_M_VALUES,
           "one of " + ", ".join(map(str, knn_index.PQ_M_VALUES))),
        HP("mini_batch_size", integer, 5000, **_POSITIVE),
    ]
    channels = {"train": ChannelRule(required=True), "test": ChannelRule(distributions=("FullyReplicated",))}

    # -- training -----------------------------------------------------------------------------

    def train(self, ctx: TrainingContext) -> None:
        hp = ctx.hyperparameters
        _check(hp)
        points, labels = self._sample(ctx)
        shares = ctx.gather({"points": points, "labels": labels})
        if shares is None:
            logs.info(f"sent this host's sample of {len(labels)} records to algo-1")
            return
        points, labels = _joined(shares)
        if len(points) < hp["k"]:
            raise ClientError(f"k={hp['k']} neighbours need at least {hp['k']} training records; "
                              f"the sample has {len(points)}")
        logs.info(f"indexing {len(points)} sampled records ({hp['index_type']}, {hp['index_metric']})")
        model = knn_index.build(points, labels, hp)
        self._test(ctx, model)
        knn_index.save(model, ctx.model_dir / MODEL_FILE)
        logs.info(f"wrote {MODEL_FILE}: {model.index.ntotal} points of dimension {model.index.d}")

    def _sample(self, ctx: TrainingContext) -> tuple[np.ndarray, np.ndarray]:
        hp = ctx.hyperparameters
        reservoir = Reservoir(hp["sample_size"], seed=ctx.hosts.index(ctx.current_host))
        # Batches of sample_size rows (the reservoir then holds up to three times that): the same
        # sample as smaller batches (the keys are one stream), and a channel that fits in the
        # sample arrives as one array that needs no concatenation.
        for batch in ctx.channels["train"].batches(max(hp["mini_batch_size"], hp["sample_size"])):
            reservoir.add(_features(batch, hp["feature_dim"]), _labels(batch, "train"))
        points, labels = reservoir.sample(hp["feature_dim"])
        logs.info(f"sampled {len(labels)} of {reservoir.seen} records on {ctx.current_host}")
        return points, labels

    def _test(self, ctx: TrainingContext, model: knn_index.KnnModel) -> None:
        channel = ctx.channels.get("test")
        if channel is None:
            logs.info("Test data is not provided.")
            return
        hp = ctx.hyperparameters
        truth, predicted = [], []
        for batch in channel.batches(hp["mini_batch_size"]):
            predicted.append(model.predict(_features(batch, hp["feature_dim"]))["predicted_label"])
            truth.append(_labels(batch, "test"))
        if not truth:
            raise ClientError("The test channel holds no records")
        truth, predicted = np.concatenate(truth), np.concatenate(predicted)
        if hp["predictor_type"] == "classifier":
            name, value, kind = "accuracy", float(np.mean(truth == predicted)), "score"
        else:
            name, value, kind = "mse", float(np.mean((truth.astype(np.float64) - predicted) ** 2)), "loss"
        logs.test_score(name, value)
        logs.quality("test", name, value, kind)

    # -- serving ------------------------------------------------------------------------------

    request_types = (CSV, JSON, JSONLINES, RECORDIO_PROTOBUF)
    response_types = (JSON, JSONLINES, RECORDIO_PROTOBUF)
    default_content_type = CSV
    default_accept = JSON
    json_key = "predictions"

    def load(self, model_dir) -> knn_index.KnnModel:
        return knn_index.load(model_dir / MODEL_FILE)

    def predict(self, model: knn_index.KnnModel, batch: Batch, accept) -> dict[str, np.ndarray]:
        dim = model.config["feature_dim"]
        if batch.features.shape[1] != dim:
            raise ValueError(f"each record needs {dim} features, not {batch.features.shape[1]}")
        features = batch.features.toarray() if issparse(batch.features) else batch.features
        columns = model.predict(features)
        if not any(choice.flag("verbose") for choice in parse_accept(accept)):
            columns = {"predicted_label": columns["predicted_label"]}
        return columns


def _check(hp: dict) -> None:
    """Rules that relate hyperparameters, checked before any data is read."""
    kind, target = hp["dimension_reduction_type"], hp["dimension_reduction_target"]
    if kind is not None and target is None:
        raise ClientError("dimension_reduction_target is required when dimension_reduction_type is set")
    if kind is not None and target >= hp["feature_dim"]:
        raise ClientError(f"dimension_reduction_target must be less than feature_dim ({hp['feature_dim']}), "
                          f"not {target}")
    if hp["index_type"] == "faiss.IVFPQ" and hp["index_metric"] != "L2":
        raise ClientError(f"index_metric {hp['index_metric']} is not supported with index_type faiss.IVFPQ; "
                          "use L2")
