"""Linear Learner's loss functions: value and gradient with respect to the raw output, for all
models at once.

One table entry per loss, so a new loss is one function. Scalar-output losses take ``z`` of
shape (batch, models) and labels of shape (batch, 1); ``softmax_loss`` takes (batch, models,
classes) and integer labels. Each returns (loss per row and model, d loss / d z). The objective
names are the ones SageMaker logs (`train mse_objective`, `validation
binary_classification_cross_entropy_objective`, `multiclass_cross_entropy_objective`).
"""

from __future__ import annotations

import numpy as np

OBJECTIVE_NAMES = {
    "logistic": "binary_classification_cross_entropy_objective",
    "softmax_loss": "multiclass_cross_entropy_objective",
    "squared_loss": "mse_objective",
}


def objective_name(loss: str) -> str:
    return OBJECTIVE_NAMES.get(loss, f"{loss}_objective")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) without overflow, and exact in the tails (tiny scores keep their digits)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _logistic(z, y, hp):
    # log(1 + e^z) - y z = max(z, 0) - y z + log(1 + e^-|z|); log1p and logaddexp are several
    # times slower than log, and log(1 + e) is within 1e-7 of log1p(e) for e in (0, 1]
    e = np.exp(-np.abs(z))
    loss = np.maximum(z, 0.0) - y * z + np.log(1.0 + e)
    return loss, np.where(z >= 0, 1.0, e) / (1.0 + e) - y


def _hinge(z, y, hp):
    sign = 2.0 * y - 1.0
    slack = hp["margin"] - sign * z
    return np.maximum(slack, 0.0), np.where(slack > 0, -sign, 0.0)


def _squared(z, y, hp):
    r = z - y
    return r * r, 2.0 * r


def _absolute(z, y, hp):
    r = z - y
    return np.abs(r), np.sign(r)


def _eps_squared(z, y, hp):
    r = z - y
    excess = np.maximum(np.abs(r) - hp["loss_insensitivity"], 0.0)
    return excess * excess, 2.0 * excess * np.sign(r)


def _eps_absolute(z, y, hp):
    r = z - y
    excess = np.abs(r) - hp["loss_insensitivity"]
    return np.maximum(excess, 0.0), np.where(excess > 0, np.sign(r), 0.0)


def _quantile(z, y, hp):
    q, r = hp["quantile"], y - z
    return np.maximum(q * r, (q - 1.0) * r), np.where(r > 0, -q, 1.0 - q)


def _huber(z, y, hp):
    delta, r = hp["huber_delta"], z - y
    small = np.abs(r) <= delta
    return np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)), np.clip(r, -delta, delta)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax(z, y, hp):
    """z: (batch, models, classes); y: (batch,) class indices."""
    p = softmax(z)
    rows = np.arange(z.shape[0])
    picked = p[rows, :, y.astype(np.intp)]  # (batch, models)
    loss = -np.log(np.maximum(picked, 1e-12))
    grad = p
    grad[rows, :, y.astype(np.intp)] -= 1.0
    return loss, grad


LOSS_FUNCTIONS = {
    "logistic": _logistic, "hinge_loss": _hinge, "squared_loss": _squared, "absolute_loss": _absolute,
    "eps_insensitive_squared_loss": _eps_squared, "eps_insensitive_absolute_loss": _eps_absolute,
    "quantile_loss": _quantile, "huber_loss": _huber, "softmax_loss": _softmax,
}


def _logistic_gradient(z, y, hp):
    """σ(z) - y as 0.5 (1 + tanh(z / 2)) - y, the cheapest sigmoid, fine for steps; computed in
    one array (the same operations in the same order, without four temporaries)."""
    g = np.multiply(z, 0.5)
    np.tanh(g, out=g)
    g += 1.0
    g *= 0.5
    g -= y
    return g


def _softmax_gradient(z, y, hp):
    grad = softmax(z)
    grad[np.arange(z.shape[0]), :, y.astype(np.intp)] -= 1.0
    return grad


# Training steps need only the gradient; where the loss costs most of the work, skip it.
GRADIENTS = {"logistic": _logistic_gradient, "softmax_loss": _softmax_gradient,
             "squared_loss": lambda z, y, hp: 2.0 * (z - y)}


def gradient(loss: str, z: np.ndarray, y: np.ndarray, hp: dict) -> np.ndarray:
    if loss in GRADIENTS:
        return GRADIENTS[loss](z, y if loss == "softmax_loss" else y.reshape(-1, 1), hp)
    return evaluate(loss, z, y, hp)[1]


def evaluate(loss: str, z: np.ndarray, y: np.ndarray, hp: dict) -> tuple[np.ndarray, np.ndarray]:
    """(loss, gradient) of ``loss``; scalar losses get labels shaped to broadcast over models."""
    if loss == "softmax_loss":
        return _softmax(z, y, hp)
    return LOSS_FUNCTIONS[loss](z, y.reshape(-1, 1), hp)
