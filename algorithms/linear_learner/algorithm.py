"""Linear Learner, as SageMaker's `linear-learner` image: numpy mini-batch training of several
models side by side, model and threshold selection on the validation channel, SageMaker's metric
lines, and the `model_algo-1` zip (an MXNet checkpoint of `fc0_weight`/`fc0_bias`).

The train program reads `train` (csv or recordio-protobuf, File or Pipe) on every host; in a
multi-host job the other hosts send their shares to algo-1, which trains on all of it and alone
writes the model. `validation` picks each model's best epoch, stops training early, chooses the
model (binary: by `binary_classifier_model_selection_criteria`, with its decision threshold) and
is scored at the end; `test` is scored with the chosen model.
"""

from __future__ import annotations

import json

import numpy as np

from algorithms.common import labelled_data, logs
from algorithms.common.errors import ClientError
from algorithms.common.labelled_data import Labelled
from algorithms.common.training import ChannelRule, TrainingContext
from algorithms.io import CSV, JSON, JSONLINES, RECORDIO_PROTOBUF, Batch
from algorithms.linear_learner import artifact, losses, metrics
from algorithms.linear_learner.hyperparameters import SPECS, Settings, resolve
from algorithms.linear_learner.scaler import Scaler
from algorithms.linear_learner.trainer import Trainer, fit

TRAINING_TYPES = (CSV, RECORDIO_PROTOBUF)
ALGORITHM = "Linear Learner"


def _read(channel, settings: Settings) -> Labelled:
    return labelled_data.read_channel(channel, settings.feature_dim, algorithm=ALGORITHM, supported=TRAINING_TYPES)


def check_labels(data: Labelled, settings: Settings, channel: str) -> None:
    y = data.labels
    if not np.all(np.isfinite(y)):
        raise ClientError(f"Channel '{channel}' has labels that are not finite numbers")
    if settings.predictor_type == "binary_classifier" and not np.all((y == 0) | (y == 1)):
        raise ClientError(f"Binary classifier labels must be 0 or 1; channel '{channel}' has {sorted(set(y.tolist()))[:5]}")
    if settings.predictor_type == "multiclass_classifier":
        k = settings.outputs
        if not np.all((y == np.round(y)) & (y >= 0) & (y < k)):
            raise ClientError(f"Multiclass labels must be integers from 0 to num_classes - 1 = {k - 1}; "
                              f"channel '{channel}' has others")


def _scores(settings: Settings, z: np.ndarray) -> np.ndarray:
    """The `score` a model answers with, from raw outputs (rows, ...)."""
    if settings.loss == "logistic":
        return losses.sigmoid(z)
    if settings.loss == "softmax_loss":
        return losses.softmax(z)
    return z


def _default_threshold(settings: Settings) -> float:
    return 0.5 if settings.loss == "logistic" else 0.0


class LinearLearnerSpec:
    name = "linear_learner"
    hyperparameters = SPECS
    channels = {"train": ChannelRule(required=True), "validation": ChannelRule(distributions=("FullyReplicated",)),
                "test": ChannelRule(distributions=("FullyReplicated",))}

    # -- training -----------------------------------------------------------------------------

    def train(self, ctx: TrainingContext) -> None:
        settings = resolve(ctx.hyperparameters)
        shares = labelled_data.gather(ctx, _read(ctx.channels["train"], settings))
        if shares is None:
            logs.info("sent this host's share of the training data to the leader")
            return
        data = labelled_data.concat(shares, settings.feature_dim)
        if not len(data):
            raise ClientError("The train channel holds no records")
        check_labels(data, settings, "train")
        validation = self._validation(ctx, settings)
        model, calibration = self._train_models(ctx, settings, data, shares[1:], validation)
        self._report("validation" if validation is not None else "train", model, calibration, settings.raw,
                     ctx.current_host)
        logs.info("Best model found for hyperparameters: " + json.dumps(model.params["hyperparameters"]))
        artifact.save(ctx.model_dir, model.weights, model.bias, model.params)
        logs.info(f"wrote {artifact.MODEL_FILE}: fc0_weight {model.weights.shape}, fc0_bias {model.bias.shape}")
        self._test(ctx, settings, model)

    def _train_models(self, ctx, settings: Settings, data: Labelled, remote: list[Labelled],
                      validation: Labelled | None) -> tuple[artifact.LinearModel, Labelled]:
        """Train every model; the chosen one as a raw-space model, and the data it was chosen on."""
        logs.info(f"training {len(settings.models)} models on {len(data)} records of {settings.feature_dim} features")
        rng = np.random.default_rng(0)  # the scaler's sample: random rows, not one host's shard
        sample = np.sort(rng.permutation(len(data))[:ctx.hyperparameters["num_point_for_scaler"]])
        scaler = Scaler.fit(data.take(sample), settings)
        trainer = Trainer(settings, scaler)
        best = fit(trainer, self._epochs(ctx, settings, data, remote), validation,
                   self._positive_weights(settings, data), self._class_weights(settings, data), ctx.current_host)
        calibration = (validation if validation is not None else data).take(slice(0, settings.calibration_samples))
        chosen, threshold = self._select(trainer, best, calibration, settings)
        columns = slice(chosen * settings.outputs, (chosen + 1) * settings.outputs)
        weights, bias = scaler.to_raw(best.weights[:, columns], best.bias[columns])
        return artifact.LinearModel(weights, bias, self._params(settings, scaler, threshold, chosen, best)), calibration

    def _validation(self, ctx: TrainingContext, settings: Settings) -> Labelled | None:
        if "validation" not in ctx.channels:
            return None
        validation = _read(ctx.channels["validation"], settings)
        check_labels(validation, settings, "validation")
        return validation if len(validation) else None

    def _epochs(self, ctx, settings, data: Labelled, remote: list[Labelled]):
        """Pass n's data: in memory (File mode), or the channel's next FIFO plus the other
        hosts' shares (Pipe mode reads the channel again every epoch, as SageMaker does)."""
        channel = ctx.channels["train"]
        if channel.mode != "Pipe":
            return lambda n: data
        def epoch(n: int) -> Labelled:
            if n == 0:
                return data
            fresh = labelled_data.concat([_read(channel, settings)] + remote, settings.feature_dim)
            check_labels(fresh, settings, "train")
            return fresh
        return epoch

    def _positive_weights(self, settings: Settings, data: Labelled) -> np.ndarray:
        positives = float(np.sum(data.labels > 0.5))
        balanced = (len(data) - positives) / positives if positives else 1.0
        return np.array([balanced if m.positive_weight == "balanced" else m.positive_weight
                         for m in settings.models], np.float32)

    def _class_weights(self, settings: Settings, data: Labelled) -> np.ndarray | None:
        if settings.predictor_type != "multiclass_classifier" or not settings.raw["balance_multiclass_weights"]:
            return None
        counts = np.bincount(data.labels.astype(np.intp), minlength=settings.outputs).astype(np.float64)
        return (len(data) / (settings.outputs * np.maximum(counts, 1.0))).astype(np.float32)

    def _select(self, trainer: Trainer, best, calibration: Labelled, settings: Settings) -> tuple[int, float]:
        """The model to keep and (binary) its decision threshold."""
        z = trainer.raw_outputs(calibration.features, best.weights, best.bias)  # once, for the losses and the scores
        losses_ = trainer.objective(calibration, outputs=z)
        criterion = settings.raw["binary_classifier_model_selection_criteria"]
        if settings.predictor_type != "binary_classifier" or criterion in ("loss_function", "cross_entropy_loss"):
            return int(np.nanargmin(losses_)), _default_threshold(settings)
        scores = _scores(settings, z)
        orders = metrics.descending_order(scores)  # one sort for all models, not one per model
        choices = [metrics.choose_threshold(scores[:, m], calibration.labels, criterion, settings.raw,
                                            _default_threshold(settings), orders[:, m])
                   for m in range(trainer.models)]
        values = np.array([value for _, value in choices])
        # models within one standard error of the best criterion value: the lowest loss wins
        margin = metrics.standard_error(values.max(), len(calibration)) if criterion in ("accuracy", "f_beta", "f1") else 0
        candidates = np.flatnonzero(values >= values.max() - margin - 1e-12)
        chosen = int(candidates[np.argmin(losses_[candidates])])
        return chosen, choices[chosen][0]

    def _params(self, settings: Settings, scaler: Scaler, threshold: float, chosen: int, best) -> dict:
        return {"predictor_type": settings.predictor_type, "loss": settings.loss,
                "feature_dim": settings.feature_dim, "num_classes": settings.outputs if settings.outputs > 1 else None,
                "threshold": threshold, "selected_model": chosen, "epochs_trained": best.epochs,
                "hyperparameters": settings.models[chosen].describe(settings),
                "scaling": scaler.describe(), "weights_include_scaling": True}

    # -- scores -------------------------------------------------------------------------------

    def evaluate(self, model: artifact.LinearModel, data: Labelled, hp: dict) -> dict[str, float]:
        """The objective and the scores SageMaker reports for ``data`` under ``model``."""
        loss_name, z = model.params["loss"], model.raw(data.features)
        multiclass = model.predictor_type == "multiclass_classifier"
        loss, _ = losses.evaluate(loss_name, z[:, None, :] if multiclass else z, data.labels, hp)
        result = {losses.objective_name(loss_name): float(loss.mean())}
        if model.predictor_type == "binary_classifier":
            scores = losses.sigmoid(z[:, 0]) if loss_name == "logistic" else z[:, 0]
            result.update(metrics.binary_scores(scores, data.labels, model.params["threshold"], hp))
        elif multiclass:
            result.update(metrics.multiclass_scores(losses.softmax(z), data.labels, hp))
        else:
            result.update(metrics.regression_scores(z[:, 0], data.labels))
        return result

    def _report(self, channel: str, model: artifact.LinearModel, data: Labelled, hp: dict, host: str) -> None:
        scores = self.evaluate(model, data, hp)
        for name, value in scores.items():
            if channel == "validation":
                logs.info(f"#validation_score ({host}) : ('{name}', {value})")
            elif channel == "test":
                logs.test_score(name, value)
        for name, value in scores.items():
            kind = "loss" if name.endswith("_objective") or name in ("mse", "rmse", "absolute_loss") else "score"
            logs.quality(channel, name, value, kind=kind)

    def _test(self, ctx: TrainingContext, settings: Settings, model: artifact.LinearModel) -> None:
        if "test" not in ctx.channels:
            logs.info("Test data is not provided.")
            return
        test = _read(ctx.channels["test"], settings)
        check_labels(test, settings, "test")
        self._report("test", model, test, settings.raw, ctx.current_host)

    # -- serving ------------------------------------------------------------------------------

    request_types = (CSV, JSON, JSONLINES, RECORDIO_PROTOBUF)
    response_types = (JSON, JSONLINES, CSV, RECORDIO_PROTOBUF)
    default_content_type = CSV
    default_accept = JSON
    json_key = "predictions"

    def load(self, model_dir) -> artifact.LinearModel:
        return artifact.load(model_dir)

    def predict(self, model: artifact.LinearModel, batch: Batch, accept) -> dict[str, np.ndarray]:
        z = model.raw(batch.features)
        loss = model.params["loss"]
        if model.predictor_type == "multiclass_classifier":
            probabilities = losses.softmax(z)
            return {"score": probabilities.astype(np.float32), "predicted_label": probabilities.argmax(axis=1)}
        score = (losses.sigmoid(z[:, 0]) if loss == "logistic" else z[:, 0]).astype(np.float32)
        if model.predictor_type == "binary_classifier":
            return {"score": score, "predicted_label": (score >= model.params["threshold"]).astype(np.int64)}
        return {"score": score}
