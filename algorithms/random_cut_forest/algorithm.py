"""Random Cut Forest with SageMaker's hyperparameters, channels, test metrics, artifact and answers.

Training streams the `train` channel (ShardedByS3Key only, as SageMaker requires) into one
reservoir per tree (sampler.py); with several hosts algo-1 gathers every host's reservoirs and
merges them exactly, then grows the forest (forest.py). Channels without a ContentType are
recordio-protobuf, as the SDK's `record_set` expects. A labelled `test` channel (CSV label_size=1
or recordio labels, 1 = anomaly) is scored and judged with SageMaker's three-sigma rule: a point
is an anomaly when its score exceeds the mean test score by three standard deviations; the
`eval_metrics` then go to the log as `#test_score (algo-1) : ('f1', …)` lines (`test:f1` is the
tuning metric). Inference answers `{"scores":[{"score": …}]}` and the other response formats.
"""

from __future__ import annotations

import zlib

import numpy as np

from algorithms.common import logs
from algorithms.common.errors import ClientError
from algorithms.common.hyperparameters import HP, REQUIRED, integer, json_list
from algorithms.common.prefetch import prefetch
from algorithms.common.training import ChannelRule, TrainingContext
from algorithms.io import CSV, JSON, JSONLINES, RECORDIO_PROTOBUF, Batch
from algorithms.io.sparse import issparse
from algorithms.random_cut_forest import forest as rcf
from algorithms.random_cut_forest import sampler

MODEL_FILE = "model_algo-1"
METRICS = ("accuracy", "precision_recall_fscore")
SEED = 0x52CF


def _between(name: str, low: int, high: int, default=REQUIRED) -> HP:
    return HP(name, integer, default, lambda v: low <= v <= high, f"an integer in [{low}, {high}]")


def dense_rows(batch: Batch, feature_dim: int) -> np.ndarray:
    features = batch.features.toarray() if issparse(batch.features) else batch.features
    if features.shape[1] != feature_dim:
        raise ClientError(f"The data has {features.shape[1]} features, but feature_dim is {feature_dim}")
    return np.asarray(features, dtype=np.float32)


def rows_per_read(feature_dim: int) -> int:
    """Large reads amortise the per-batch sampling step; wide data reads fewer rows at a time."""
    return int(np.clip((1 << 22) // feature_dim, 256, 16384))


class RandomCutForestSpec:
    name = "random_cut_forest"
    hyperparameters = [
        _between("feature_dim", 1, 10000),
        _between("num_samples_per_tree", 1, 2048, 256),
        _between("num_trees", 50, 1000, 100),
        HP("eval_metrics", json_list, list(METRICS), lambda v: set(v) <= set(METRICS),
           'a list of "accuracy" and "precision_recall_fscore"'),
        HP("mini_batch_size", integer, 1000, lambda v: v >= 1, "an integer of at least 1"),
    ]
    channels = {"train": ChannelRule(required=True, distributions=("ShardedByS3Key",)),
                "test": ChannelRule(distributions=("FullyReplicated",))}

    # -- training -----------------------------------------------------------------------------

    def train(self, ctx: TrainingContext) -> None:
        hp = ctx.hyperparameters
        reservoir = self._sample(ctx, hp)
        shares = ctx.gather(reservoir.as_arrays())
        if shares is None:
            logs.info(f"sent the reservoirs of {reservoir.seen} records to the leader")
            return
        samples, seen = sampler.merge(shares)
        if seen == 0:
            raise ClientError("The train channel holds no records")
        logs.info(f"sampled {samples.shape[1]} of {seen} records for each of {samples.shape[0]} trees "
                  f"from {len(shares)} host(s)")
        forest = rcf.build(samples, np.random.default_rng(SEED))
        logs.info(f"built {forest.trees} trees, {len(forest.start)} nodes, depth up to {int(forest.depth.max())}")
        logs.progress(100.0)
        self._test(ctx, forest)
        with open(ctx.model_dir / MODEL_FILE, "wb") as target:
            forest.save(target)
        logs.info(f"wrote {MODEL_FILE}")

    @staticmethod
    def _sample(ctx: TrainingContext, hp: dict) -> sampler.Reservoir:
        seed = zlib.crc32(ctx.current_host.encode()) ^ SEED  # hosts draw independent keys
        reservoir = sampler.Reservoir(hp["num_trees"], hp["num_samples_per_tree"], hp["feature_dim"], seed)
        rows = rows_per_read(hp["feature_dim"])
        for batch in prefetch(ctx.channels["train"].batches(rows, label_size=0, default=RECORDIO_PROTOBUF)):
            reservoir.add(dense_rows(batch, hp["feature_dim"]))
        return reservoir

    def _test(self, ctx: TrainingContext, forest: rcf.Forest) -> None:
        channel = ctx.channels.get("test")
        if channel is None:
            logs.info("Test data is not provided.")
            return
        scores, labels = [], []
        rows = rows_per_read(forest.feature_dim)
        for batch in prefetch(channel.batches(rows, label_size=1, default=RECORDIO_PROTOBUF)):
            if batch.labels is None:
                raise ClientError("The test channel needs labels (1 = anomaly, 0 = normal): "
                                  "CSV with label_size=1, or recordio-protobuf records with a label")
            scores.append(forest.score(dense_rows(batch, forest.feature_dim)))
            labels.append(np.asarray(batch.labels, dtype=np.float64).reshape(len(batch), -1)[:, 0])
        if not scores:
            raise ClientError("The test channel holds no records")
        for name, value in three_sigma_metrics(np.concatenate(scores), np.concatenate(labels),
                                        ctx.hyperparameters["eval_metrics"]):
            logs.quality("test", name, value, kind="score")
            logs.test_score(name, value)

    # -- serving ------------------------------------------------------------------------------

    request_types = (CSV, JSON, JSONLINES, RECORDIO_PROTOBUF)
    response_types = (JSON, JSONLINES, CSV, RECORDIO_PROTOBUF)
    default_content_type = CSV
    default_accept = JSON
    json_key = "scores"

    def load(self, model_dir) -> rcf.Forest:
        with open(model_dir / MODEL_FILE, "rb") as source:
            return rcf.Forest.load(source)

    def predict(self, forest: rcf.Forest, batch: Batch, accept) -> dict[str, np.ndarray]:
        if batch.features.shape[1] != forest.feature_dim:
            raise ValueError(f"each record needs {forest.feature_dim} features, not {batch.features.shape[1]}")
        features = batch.features.toarray() if issparse(batch.features) else batch.features
        return {"score": forest.score(features).astype(np.float32)}


def three_sigma_metrics(scores: np.ndarray, labels: np.ndarray, wanted: list[str]) -> list[tuple[str, float]]:
    """SageMaker's three-sigma rule, then accuracy and/or precision, recall and F1 of anomalies."""
    predicted = scores > scores.mean() + 3 * scores.std()
    actual = labels > 0.5
    metrics = []
    if "accuracy" in wanted:
        metrics.append(("accuracy", float((predicted == actual).mean())))
    if "precision_recall_fscore" in wanted:
        hits = float((predicted & actual).sum())
        precision = hits / predicted.sum() if predicted.any() else 0.0
        recall = hits / actual.sum() if actual.any() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        metrics += [("precision", float(precision)), ("recall", float(recall)), ("f1", float(f1))]
    return metrics
