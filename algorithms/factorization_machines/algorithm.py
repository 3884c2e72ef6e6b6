"""Factorization Machines, as SageMaker's `factorization-machines` image: a numpy 2-way FM
trained on recordio-protobuf Float32 (dense or sparse) only, SageMaker's metric lines (train per
epoch, test rmse or accuracy / cross entropy / F1 at 0.5), and the `model_algo-1` zip that AWS
examples open with MXNet.

Every host reads its `train` share; in a multi-host job the others send theirs to algo-1, which
trains on all of it and alone writes the model. The `test` channel is scored at the end.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from algorithms.common import labelled_data, logs
from algorithms.common.errors import ClientError
from algorithms.common.labelled_data import Labelled
from algorithms.common.training import ChannelRule, TrainingContext
from algorithms.factorization_machines import artifact
from algorithms.factorization_machines.hyperparameters import SPECS
from algorithms.factorization_machines.model import (
    Adam,
    FMParams,
    dense_step,
    initial,
    sigmoid,
    sparse_step,
)
from algorithms.io import JSON, JSONLINES, RECORDIO_PROTOBUF, Batch, parse_content_type

ALGORITHM = "Factorization Machines"


def _read(channel, hp: dict) -> Labelled:
    # plain_sparse: the sparse step only walks CSR arrays, so a sparse job never imports scipy
    return labelled_data.read_channel(channel, hp["feature_dim"], algorithm=ALGORITHM, supported=(RECORDIO_PROTOBUF,),
                                      plain_sparse=True)


def scores(raw: np.ndarray, labels: np.ndarray, binary: bool) -> dict[str, tuple[float, str]]:
    """SageMaker's FM metrics: name → (value, `loss` or `score`)."""
    if not binary:
        return {"rmse": (float(np.sqrt(np.mean((raw - labels) ** 2))) if len(raw) else 0.0, "loss")}
    p = sigmoid(raw.astype(np.float64))
    y = labels > 0.5
    predicted = p >= 0.5
    tp = float(np.sum(predicted & y))
    precision = tp / max(float(predicted.sum()), 1.0)
    recall = tp / max(float(y.sum()), 1.0)
    entropy = -np.mean(np.where(y, np.log(np.maximum(p, 1e-12)), np.log(np.maximum(1 - p, 1e-12))))
    return {"binary_classification_accuracy": (float(np.mean(predicted == y)), "score"),
            "binary_classification_cross_entropy": (float(entropy), "loss"),
            "binary_f_beta": (2 * precision * recall / (precision + recall) if precision + recall else 0.0, "score")}


class FactorizationMachinesSpec:
    name = "factorization_machines"
    hyperparameters = SPECS
    channels = {"train": ChannelRule(required=True), "test": ChannelRule(distributions=("FullyReplicated",))}

    # -- training -----------------------------------------------------------------------------

    def train(self, ctx: TrainingContext) -> None:
        hp = ctx.hyperparameters
        self._check_content_types(ctx)
        shares = labelled_data.gather(ctx, _read(ctx.channels["train"], hp))
        if shares is None:
            logs.info("sent this host's share of the training data to the leader")
            return
        data = labelled_data.concat(shares, hp["feature_dim"])
        if not len(data):
            raise ClientError("The train channel holds no records")
        self._check_labels(data, hp, "train")
        logs.info(f"training a factorization machine with {hp['num_factors']} factors on {len(data)} records "
                  f"of {hp['feature_dim']} features ({'sparse' if data.is_sparse else 'dense'})")
        with threadpool_limits(limits=1, user_api="blas"):  # small mini-batch products: threads only cost
            params = self._fit(ctx, hp, data, shares[1:])
        meta = {"training_parameters": {k: v for k, v in hp.items() if v is not None},
                "predictor_type": hp["predictor_type"], "feature_dim": hp["feature_dim"],
                "num_factors": hp["num_factors"], "records_seen": len(data)}
        artifact.save(ctx.model_dir, params, meta)
        logs.info(f"wrote {artifact.MODEL_FILE}: w0_weight (1,), w1_weight ({hp['feature_dim']}, 1), "
                  f"v {params.v.shape}")
        self._test(ctx, hp, params)

    def _check_content_types(self, ctx: TrainingContext) -> None:
        for channel in ctx.channels.values():
            mime = parse_content_type(channel.content_type, RECORDIO_PROTOBUF).mime
            if mime != RECORDIO_PROTOBUF:
                raise ClientError(f"Channel '{channel.name}' has content type {mime!r}; {ALGORITHM} trains on "
                                  f"{RECORDIO_PROTOBUF} (Float32 tensors) only")

    def _check_labels(self, data: Labelled, hp: dict, channel: str) -> None:
        if not np.all(np.isfinite(data.labels)):
            raise ClientError(f"Channel '{channel}' has labels that are not finite numbers")
        if hp["predictor_type"] == "binary_classifier" and not np.all((data.labels == 0) | (data.labels == 1)):
            raise ClientError(f"Binary classifier labels must be 0 or 1; channel '{channel}' has others")

    def _fit(self, ctx: TrainingContext, hp: dict, data: Labelled, remote: list[Labelled]) -> FMParams:
        rng = np.random.default_rng(0)
        d, k = hp["feature_dim"], hp["num_factors"]
        # Dense data trains on the stacked table (FMParams.stacked); the sparse step gathers and
        # writes rows of w and V, which are 15 % slower as strided views of it. (A channel's
        # data is dense or sparse the same way in every epoch.)
        make = FMParams.stacked if not data.is_sparse else FMParams
        params = make(initial((1,), hp["bias_init_method"], hp, "bias", rng),
                      initial((d,), hp["linear_init_method"], hp, "linear", rng),
                      initial((d, k), hp["factors_init_method"], hp, "factors", rng))
        adam, binary = Adam(params, hp), hp["predictor_type"] == "binary_classifier"
        for epoch in range(hp["epochs"]):
            if epoch and ctx.channels["train"].mode == "Pipe":  # Pipe mode: the channel's next FIFO
                data = labelled_data.concat([_read(ctx.channels["train"], hp)] + remote, d)
                self._check_labels(data, hp, "train")
            started = time.perf_counter()
            raw = self._epoch(params, adam, data, hp, binary, rng)
            elapsed = time.perf_counter() - started
            for name, (value, kind) in scores(raw, data.labels, binary).items():
                logs.quality("train", name, value, kind=kind, epoch=epoch)
            logs.progress(round(100.0 * (epoch + 1) / hp["epochs"]))
            logs.throughput(len(data) / max(elapsed, 1e-9))
        return params.compact()

    def _epoch(self, params, adam, data: Labelled, hp: dict, binary: bool, rng) -> np.ndarray:
        """One shuffled pass; every record's prediction just before its step (for train metrics).

        Sparse data is permuted once per epoch (one CSR gather, nnz-sized) so that each
        mini-batch is a plain slice of its arrays; dense rows are gathered per mini-batch with
        np.take, which needs no second copy of the data."""
        order = rng.permutation(len(data))
        size, labels = hp["mini_batch_size"], data.labels[order]
        raw = np.empty(len(data), np.float32)
        if data.is_sparse:
            shuffled = data.features[order]
            data_, indices, indptr = shuffled.data, shuffled.indices, shuffled.indptr
            for start in range(0, len(order), size):
                bounds = indptr[start:start + size + 1]
                first, last = bounds[0], bounds[-1]
                raw[order[start:start + size]] = sparse_step(
                    params, adam, data_[first:last], indices[first:last], bounds - first,
                    labels[start:start + size], binary)
            return raw
        for start in range(0, len(order), size):
            rows = order[start:start + size]
            raw[rows] = dense_step(params, adam, np.take(data.features, rows, axis=0), labels[start:start + size], binary)
        return raw

    def _test(self, ctx: TrainingContext, hp: dict, params: FMParams) -> None:
        if "test" not in ctx.channels:
            logs.info("Test data is not provided.")
            return
        test = _read(ctx.channels["test"], hp)
        self._check_labels(test, hp, "test")
        results = scores(params.predict_raw(test.features), test.labels, hp["predictor_type"] == "binary_classifier")
        for name, (value, _) in results.items():
            logs.test_score(name, value)
        for name, (value, kind) in results.items():
            logs.quality("test", name, value, kind=kind)

    # -- serving ------------------------------------------------------------------------------

    request_types = (JSON, RECORDIO_PROTOBUF)
    response_types = (JSON, JSONLINES, RECORDIO_PROTOBUF)
    default_content_type = JSON
    default_accept = JSON
    json_key = "predictions"

    def load(self, model_dir) -> tuple[FMParams, dict]:
        return artifact.load(model_dir)

    def predict(self, model: tuple[FMParams, dict], batch: Batch, accept) -> dict[str, np.ndarray]:
        params, meta = model
        if batch.features.shape[1] != params.v.shape[0]:
            raise ValueError(f"each record needs {params.v.shape[0]} features, not {batch.features.shape[1]}")
        raw = params.predict_raw(batch.features.astype(np.float32))
        if meta["predictor_type"] != "binary_classifier":
            return {"score": raw.astype(np.float32)}
        score = sigmoid(raw).astype(np.float32)
        return {"score": score, "predicted_label": (score >= 0.5).astype(np.int64)}
