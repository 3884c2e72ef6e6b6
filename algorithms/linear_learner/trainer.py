"""Mini-batch training of all Linear Learner models at once, with SageMaker's per-epoch logging,
best-epoch snapshots and early stopping.

The models' parameters sit side by side as the columns of one (feature_dim, models × outputs)
matrix, so a mini-batch costs two matrix products whatever `num_models` is. Parameters live in
the normalised space (see scaler.py) and are applied to raw rows. After every pass, each model
is scored on the validation channel (or, without one, on a fixed sample of the training data); a
model's best epoch is kept, and training stops once no model has improved on its best score by
`early_stopping_tolerance` (relative) for `early_stopping_patience` passes (a slow learning rate
still improving keeps the job going). As in SageMaker's logs, the per-epoch objective lines are
model 0's; the per-epoch validation accuracy (binary) is the best model's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from algorithms.common import logs
from algorithms.common.labelled_data import Labelled
from algorithms.io.sparse import issparse as sparse_matrix
from algorithms.linear_learner import losses
from algorithms.linear_learner.optimizer import Optimizer
from algorithms.linear_learner.scaler import Scaler

EVAL_CHUNK = 50_000
TRAIN_SAMPLE = 10_000  # training records each model is scored on after every pass


@dataclass
class Snapshot:
    """Each model's best parameters (normalised space) and the score that made them best."""

    weights: np.ndarray
    bias: np.ndarray
    score: np.ndarray  # (models,), lower is better
    epochs: int = 0


class Trainer:
    def __init__(self, settings, scaler: Scaler, seed: int = 0):
        self.s, self.scaler, self.hp = settings, scaler, settings.raw
        self.models, self.k = len(settings.models), settings.outputs
        self.rng = np.random.default_rng(seed)
        d, columns = settings.feature_dim, self.models * self.k
        # The weights and the bias are one (d + 1, columns) matrix (the bias its last row), so that
        # an optimizer step updates both at once; `weights` and `bias` are views of it.
        self.params = np.empty((d + 1, columns), np.float32)
        if self.hp["init_method"] == "normal":
            self.params[:d] = self.rng.normal(0, self.hp["init_sigma"], (d, columns)).astype(np.float32)
        else:
            self.params[:d] = self.rng.uniform(-self.hp["init_scale"], self.hp["init_scale"], (d, columns)).astype(np.float32)
        self.params[d] = self.hp["init_bias"] if self.hp["use_bias"] else 0.0
        self.weights, self.bias = self.params[:d], self.params[d]
        # per-row multipliers of the step: 1 for the weights, the bias's own for its row
        self.wd_rows = np.ones((d + 1, 1), np.float32)
        self.lr_rows = np.ones((d + 1, 1), np.float32)
        self.wd_rows[d], self.lr_rows[d] = settings.bias_wd_mult, settings.bias_lr_mult
        self.ones = np.ones(self.hp["mini_batch_size"], np.float32)
        self.inv_scale = (1.0 / scaler.scale).astype(np.float32)
        self.mean_inv = (scaler.mean / scaler.scale).astype(np.float32)
        self.centred = bool(np.any(self.mean_inv))

    def per_column(self, values) -> np.ndarray:
        return np.repeat(np.asarray(values, np.float32), self.k)

    # -- the model ---------------------------------------------------------------------------

    def outputs(self, features, weights=None, bias=None) -> np.ndarray:
        """Raw outputs z (rows, models × outputs) in the normalised label space."""
        w = (self.weights if weights is None else weights) * self.inv_scale[:, None]
        b = (self.bias if bias is None else bias) - (self.mean_inv @ (self.weights if weights is None else weights)
                                                     if self.centred else 0.0)
        z = np.asarray(features @ w, dtype=np.float32)
        z += b
        return z

    def shaped(self, z: np.ndarray) -> np.ndarray:
        return z.reshape(len(z), self.models, self.k) if self.k > 1 else z

    def sample_weights(self, labels: np.ndarray, positive: np.ndarray, classes: np.ndarray | None):
        if self.s.predictor_type == "binary_classifier" and np.any(positive != 1):
            return np.where(labels[:, None] > 0.5, positive[None, :], 1.0).astype(np.float32)
        if classes is not None:
            return classes[labels.astype(np.intp)][:, None]
        return None

    # -- one pass ----------------------------------------------------------------------------

    def step(self, optimizer: Optimizer, features, labels, weights) -> None:
        z = self.shaped(self.outputs(features))
        grad = losses.gradient(self.s.loss, z, labels, self.hp)
        if weights is not None:
            grad = grad * (weights[..., None] if grad.ndim == 3 else weights)
        grad = grad.reshape(len(labels), -1)
        grad *= np.float32(1.0 / len(labels))
        d = len(self.weights)
        g = np.empty_like(self.params)
        g[d] = self.ones[:len(labels)] @ grad  # column sums in BLAS: numpy's axis-0 sum of a narrow matrix is 8x slower
        if sparse_matrix(features):
            g[:d] = features.T @ grad
        else:
            g[:d] = (grad.T @ features).T  # the same products as features.T @ grad, a faster BLAS layout
        g[:d] *= self.inv_scale[:, None]
        if self.centred:
            g[:d] -= self.mean_inv[:, None] * g[d][None, :]
        rates = optimizer.tick()
        if self.hp["use_bias"]:
            optimizer.update("params", self.params, g, rates, wd_mult=self.wd_rows, lr_mult=self.lr_rows, l1_rows=d)
        else:
            optimizer.update("weights", self.weights, g[:d], rates)

    def run_epoch(self, optimizer, data: Labelled, positive, classes) -> None:
        """One pass over ``data`` in shuffled mini-batches."""
        labels = self.scaler.labels(data.labels).astype(np.float32) if self.s.predictor_type == "regressor" else data.labels
        order = self.rng.permutation(len(data))
        batch = self.hp["mini_batch_size"]
        features, sparse = data.features, data.is_sparse
        weighted = self.sample_weights(labels[:1], positive, classes) is not None
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            y = labels[rows]
            # np.take gathers dense rows several times faster than fancy indexing
            x = features[rows] if sparse else np.take(features, rows, axis=0)
            self.step(optimizer, x, y, self.sample_weights(y, positive, classes) if weighted else None)

    # -- scoring -----------------------------------------------------------------------------

    def raw_outputs(self, features, weights=None, bias=None) -> np.ndarray:
        """Outputs in raw label units, (rows, models) or (rows, models, classes)."""
        parts = [self.outputs(features[i:i + EVAL_CHUNK], weights, bias) for i in range(0, features.shape[0], EVAL_CHUNK)]
        z = np.concatenate(parts) if parts else np.zeros((0, self.models * self.k), np.float32)
        return self.shaped(z * self.scaler.label_scale + self.scaler.label_mean)

    def objective(self, data: Labelled, weights=None, bias=None, outputs=None) -> np.ndarray:
        """Each model's mean objective loss on ``data`` (raw label units); ``outputs``: its
        :meth:`raw_outputs`, when the caller has them already."""
        if not len(data):
            return np.zeros(self.models)
        z = self.raw_outputs(data.features, weights, bias) if outputs is None else outputs
        return losses.evaluate(self.s.loss, z, data.labels, self.hp)[0].mean(axis=0)

    def epoch_scores(self, data: Labelled, weights=None, bias=None) -> tuple[np.ndarray, np.ndarray | None]:
        """Each model's mean objective on ``data`` and, for a binary classifier, its accuracy at
        the default threshold (logistic 0.5, hinge 0)."""
        if not len(data):
            return np.zeros(self.models), None
        z = self.raw_outputs(data.features, weights, bias)
        loss, _ = losses.evaluate(self.s.loss, z, data.labels, self.hp)
        accuracy = None
        if self.s.predictor_type == "binary_classifier":
            accuracy = np.mean((z >= 0) == (data.labels[:, None] > 0.5), axis=0)
        return loss.mean(axis=0), accuracy


def fit(trainer: Trainer, epochs_of, validation: Labelled | None, positive, classes, host: str) -> Snapshot:
    """Train for up to `epochs` passes (``epochs_of(n)`` gives pass n's data); the best snapshot.
    Mini-batch products are small (1000 × 100 by 100 × models): BLAS threads cost more in
    wake-ups than they save (ten times slower on a busy 2-core host), so one thread does them."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(trainer, epochs_of, validation, positive, classes, host)


def _fit(trainer: Trainer, epochs_of, validation: Labelled | None, positive, classes, host: str) -> Snapshot:
    hp = trainer.hp
    first = epochs_of(0)
    steps = max(1, -(-len(first) // hp["mini_batch_size"]))
    optimizer = Optimizer(trainer.s, trainer.per_column([m.learning_rate for m in trainer.s.models]),
                          trainer.per_column([m.wd for m in trainer.s.models]),
                          trainer.per_column([m.l1 for m in trainer.s.models]), steps)
    best = Snapshot(trainer.weights.copy(), trainer.bias.copy(), np.full(trainer.models, np.inf))
    name, stalled = losses.objective_name(trainer.s.loss), 0
    sample = first.take(np.sort(trainer.rng.permutation(len(first))[:TRAIN_SAMPLE]))
    for epoch in range(hp["epochs"]):
        data, started = first if epoch == 0 else epochs_of(epoch), time.perf_counter()
        trainer.run_epoch(optimizer, data, positive, classes)
        elapsed = time.perf_counter() - started
        score = _score_epoch(trainer, sample, validation, name, epoch)
        improved = _keep_best(trainer, best, score, hp["early_stopping_tolerance"])
        best.epochs = epoch + 1
        logs.info(f"#early_stopping_criteria_metric: host={host}, epoch={epoch}, criteria={name}, "
                  f"value={float(np.min(score))}")
        stalled = 0 if improved else stalled + 1
        logs.info(f"Epoch {epoch}: Loss improved. Updating best model" if improved else
                  f"Epoch {epoch}: Loss has not improved for {stalled} epochs.")
        logs.progress(round(100.0 * (epoch + 1) / hp["epochs"]))
        logs.throughput(len(data) / max(elapsed, 1e-9))
        if stalled >= hp["early_stopping_patience"]:
            logs.info(f"Early stop condition met. Stopping training after {epoch + 1} epochs.")
            break
    return best


def _score_epoch(trainer: Trainer, sample: Labelled, validation: Labelled | None, name: str, epoch: int) -> np.ndarray:
    """Log the pass's objective lines; each model's score for snapshots and early stopping."""
    score = trainer.objective(sample)
    logs.quality("train", name, float(score[0]), epoch=epoch)
    if validation is not None:
        score, accuracy = trainer.epoch_scores(validation)
        logs.quality("validation", name, float(score[0]), epoch=epoch)
        if accuracy is not None:  # the best model's, as SageMaker's early-stopping line reports it
            logs.quality("validation", "binary_classification_accuracy", float(accuracy.max()), "score", epoch)
    return score


def _keep_best(trainer: Trainer, best: Snapshot, score: np.ndarray, tolerance: float) -> bool:
    """Keep every model's parameters where its score is its best so far; whether any model
    improved on its best by more than `tolerance` (relative), which keeps training going."""
    score = np.nan_to_num(score, nan=np.inf)
    better = score < best.score
    significant = bool(np.any(score < best.score - tolerance * np.abs(np.where(np.isfinite(best.score), best.score, 0))))
    if better.any():
        columns = np.repeat(better, trainer.k)
        best.weights[:, columns] = trainer.weights[:, columns]
        best.bias[columns] = trainer.bias[columns]
        best.score = np.where(better, score, best.score)
    return significant
