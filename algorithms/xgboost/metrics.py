"""The evaluation metrics SageMaker's XGBoost container computes itself (XGBoost has no
`accuracy`, `f1`, `r2`, …): they are named in `eval_metric` like XGBoost's own and printed in the
same evaluation lines, `[3]#011train-logloss:0.2#011train-f1:0.91`, so tuning jobs can use them.

As in the container, they are scikit-learn's definitions (written here with numpy): class labels
come from the prediction (probability > 0.5 for binary objectives, the arg-max for multi:softprob,
the prediction itself for multi:softmax); `f1` is the macro average; `precision`/`recall` are the
binary ones. They are passed to `xgboost.train` as `custom_metric`, which never changes the model.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _class_labels(preds: np.ndarray, objective: str) -> np.ndarray:
    if preds.ndim == 2:
        return preds.argmax(axis=1).astype(np.float64)
    if objective in ("multi:softmax", "binary:hinge"):
        return preds.astype(np.float64)
    threshold = 0.0 if objective == "binary:logitraw" else 0.5
    return (preds > threshold).astype(np.float64)


def _per_class(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(classes, true positives, predicted counts, actual counts) over the classes seen."""
    classes = np.union1d(y, p)
    tp = np.array([np.sum((y == c) & (p == c)) for c in classes], np.float64)
    predicted = np.array([np.sum(p == c) for c in classes], np.float64)
    actual = np.array([np.sum(y == c) for c in classes], np.float64)
    return classes, tp, predicted, actual


def _ratio(num, den):
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _f1(precision, recall):
    return _ratio(2 * precision * recall, precision + recall)


def _binary(y, p, kind: str) -> float:
    tp, fp, fn = np.sum((y == 1) & (p == 1)), np.sum((y != 1) & (p == 1)), np.sum((y == 1) & (p != 1))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return float({"precision": precision, "recall": recall, "f1": _f1(precision, recall)}[kind])


def _macro(y, p, kind: str) -> float:
    _, tp, predicted, actual = _per_class(y, p)
    precision, recall = _ratio(tp, predicted), _ratio(tp, actual)
    return float({"precision": precision, "recall": recall, "f1": _f1(precision, recall)}[kind].mean())


def _balanced_accuracy(y, p) -> float:
    classes = np.unique(y)
    return float(np.mean([np.mean(p[y == c] == c) for c in classes]))


def _r2(y, preds) -> float:
    total = np.sum((y - y.mean()) ** 2)
    residual = np.sum((y - preds) ** 2)
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return float(1 - residual / total)


_LABELS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": lambda y, p: float(np.mean(y == p)),
    "balanced_accuracy": _balanced_accuracy,
    "f1": lambda y, p: _macro(y, p, "f1"),
    "f1_binary": lambda y, p: _binary(y, p, "f1"),
    "f1_macro": lambda y, p: _macro(y, p, "f1"),
    "precision": lambda y, p: _binary(y, p, "precision"),
    "precision_macro": lambda y, p: _macro(y, p, "precision"),
    "precision_micro": lambda y, p: float(np.mean(y == p)),
    "recall": lambda y, p: _binary(y, p, "recall"),
    "recall_macro": lambda y, p: _macro(y, p, "recall"),
    "recall_micro": lambda y, p: float(np.mean(y == p)),
}
_SCORES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mse": lambda y, s: float(np.mean((y - s) ** 2)),
    "r2": _r2,
}
CUSTOM_METRICS = sorted(set(_LABELS) | set(_SCORES))


def split_metrics(metrics: list[str]) -> tuple[list[str], list[str]]:
    """(metrics XGBoost computes, metrics computed here), each in the given order."""
    return [m for m in metrics if m not in CUSTOM_METRICS], [m for m in metrics if m in CUSTOM_METRICS]


def custom_metric(names: list[str], objective: str):
    """A `custom_metric` for xgboost.train giving every named metric, or None if there are none."""
    if not names:
        return None

    def evaluate(preds: np.ndarray, dmatrix) -> list[tuple[str, float]]:
        y = dmatrix.get_label().astype(np.float64)
        preds = np.asarray(preds, np.float64)
        if preds.size == 0:
            return [(name, 0.0) for name in names]
        labels = _class_labels(preds, objective)
        return [(name, _LABELS[name](y, labels) if name in _LABELS else _SCORES[name](y, preds))
                for name in names]

    return evaluate
