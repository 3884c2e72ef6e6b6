"""The scores Linear Learner reports and selects models by, in numpy.

Binary classifiers pick their decision threshold on the calibration data by the
`binary_classifier_model_selection_criteria` (accuracy, f_beta, precision at a target recall,
recall at a target precision, or the loss with the default threshold); every cut-off between
sorted scores is evaluated at once from cumulative counts, and for accuracy and F-beta the
threshold nearest the default within one standard error of the best is kept (the best cut-off
of a sample is partly chance; this keeps a calibrated model's 0.5 unless another is clearly better). The metric names are SageMaker's, so
its tuning regexes (`validation binary_f_\\S+ <score>`, `test multiclass_top_k_accuracy_\\S+`) match.
"""

from __future__ import annotations

import numpy as np


def descending_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting ``scores`` from highest to lowest, per column for a (rows, models) array.
    One 2-D sort serves every model; it need not be stable, since `_cuts` only reads counts at
    the end of each tie group, which do not depend on the order inside the group."""
    return np.argsort(-scores, axis=0)


def _cuts(scores: np.ndarray, labels: np.ndarray, order: np.ndarray | None = None):
    """Per distinct threshold t (descending), the counts of `score >= t` predictions; ``order``
    is ``descending_order(scores)`` when the caller has already sorted."""
    order = descending_order(scores) if order is None else order
    s, y = scores[order], labels[order] > 0.5
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # last index of each tie group
    tp = np.cumsum(y)[last].astype(np.float64)
    fp = (last + 1) - tp
    return s[last], tp, fp, float(y.sum()), float(len(y) - y.sum())


def _rates(tp, fp, positives, negatives, beta):
    precision = np.divide(tp, tp + fp, out=np.ones_like(tp), where=(tp + fp) > 0)
    recall = tp / positives if positives else np.zeros_like(tp)
    b2 = beta * beta
    denom = b2 * precision + recall
    f = np.divide((1 + b2) * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    accuracy = (tp + (negatives - fp)) / max(positives + negatives, 1)
    return precision, recall, f, accuracy


def choose_threshold(scores: np.ndarray, labels: np.ndarray, criterion: str, hp: dict,
                     default: float, order: np.ndarray | None = None) -> tuple[float, float]:
    """(threshold, criterion value: higher is better) for one model's calibration scores
    (``order``: their `descending_order`, if already computed)."""
    if criterion in ("loss_function", "cross_entropy_loss") or len(scores) == 0:
        return default, 0.0
    thresholds, tp, fp, positives, negatives = _cuts(scores, labels, order)
    # predicting nothing positive is a cut too (threshold above every score)
    thresholds = np.r_[np.nextafter(thresholds[0], np.inf), thresholds]
    tp, fp = np.r_[0.0, tp], np.r_[0.0, fp]
    precision, recall, f, accuracy = _rates(tp, fp, positives, negatives, hp["f_beta"])
    if criterion == "accuracy":
        value = accuracy
    elif criterion in ("f_beta", "f1"):
        value = f
    elif criterion == "precision_at_target_recall":
        value = np.where(recall >= hp["target_recall"], precision, -1.0 + recall)
    else:  # recall_at_target_precision
        value = np.where(precision >= hp["target_precision"], recall, -1.0 + precision)
    best = int(np.argmax(value))
    if criterion in ("accuracy", "f_beta", "f1"):
        # One-standard-error rule: the best value on a finite sample is partly luck, so of the
        # thresholds within one standard error of it take the one nearest the default.
        near = np.flatnonzero(value >= value[best] - standard_error(value[best], len(scores)))
        best = int(near[np.argmin(np.abs(thresholds[near] - default))])
    return float(thresholds[best]), float(value[best])


def standard_error(rate: float, n: int) -> float:
    return float(np.sqrt(max(rate * (1.0 - rate), 0.0) / max(n, 1)))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney U with tied scores sharing their average rank."""
    y = labels > 0.5
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if not positives or not negatives:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    starts = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
    ends = np.r_[starts[1:], len(s)]
    ranks = np.empty(len(s))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def binary_scores(scores, labels, threshold, hp) -> dict[str, float]:
    predicted = scores >= threshold
    y = labels > 0.5
    tp, fp = float(np.sum(predicted & y)), float(np.sum(predicted & ~y))
    precision, recall, f, accuracy = _rates(np.array([tp]), np.array([fp]), float(y.sum()),
                                            float((~y).sum()), hp["f_beta"])
    return {"binary_classification_accuracy": float(accuracy[0]), f"binary_f_{hp['f_beta']:.3f}": float(f[0]),
            "precision": float(precision[0]), "recall": float(recall[0]), "roc_auc_score": roc_auc(scores, labels)}


def multiclass_scores(probabilities: np.ndarray, labels: np.ndarray, hp: dict) -> dict[str, float]:
    k = probabilities.shape[1]
    y = labels.astype(np.intp)
    predicted = probabilities.argmax(axis=1)
    true_p = probabilities[np.arange(len(y)), y]
    rank = (probabilities > true_p[:, None]).sum(axis=1)  # 0 = top
    top_k = min(hp["accuracy_top_k"], k)
    precision, recall = [], []
    for c in range(k):
        hits = float(np.sum((predicted == c) & (y == c)))
        precision.append(hits / max(np.sum(predicted == c), 1))
        recall.append(hits / max(np.sum(y == c), 1))
    p, r, b2 = float(np.mean(precision)), float(np.mean(recall)), hp["f_beta"] ** 2
    return {"multiclass_accuracy": float(np.mean(predicted == y)),
            f"multiclass_top_k_accuracy_{top_k}": float(np.mean(rank < top_k)),
            "dcg": float(np.mean(1.0 / np.log2(rank + 2.0))),
            "macro_recall": r, "macro_precision": p,
            f"macro_f_{hp['f_beta']:.3f}": (1 + b2) * p * r / (b2 * p + r) if (p + r) else 0.0}


def regression_scores(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    error = predictions - labels
    mse = float(np.mean(error * error)) if len(error) else 0.0
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "absolute_loss": float(np.mean(np.abs(error))) if len(error) else 0.0}
