"""A 2-way factorization machine in numpy, trained with Adam by mini-batch, sparse-aware.

    ŷ(x) = w0 + Σ_i w_i x_i + ½ Σ_f [ (Σ_i v_if x_i)² − Σ_i v_if² x_i² ]

(Rendle 2010, the O(k·nnz) form). Each parameter group (bias, linear, factors) has its own
learning rate and weight decay, as SageMaker's hyperparameters give them. On a sparse batch
only the rows of `w` and `V` for features present in it are read and updated ("lazy" Adam, as
MXNet's sparse optimizers do), so a step costs O(nnz·k) however large `feature_dim` is; weight
decay is applied to the rows a batch touches. Adam is our choice: SageMaker documents `eps`
and `clip_gradient` for its optimizer but not which one it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.io.sparse import issparse, sp

EPSILON = 1e-8
BETA_1, BETA_2 = 0.9, 0.999


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) without overflow, and exact in the tails (tiny scores keep their digits)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@dataclass
class FMParams:
    w0: np.ndarray  # (1,)
    w: np.ndarray  # (d,)
    v: np.ndarray  # (d, k)

    def predict_raw(self, features) -> np.ndarray:
        """ŷ for a batch (ndarray or CSR), chunked to bound memory."""
        out = []
        for start in range(0, features.shape[0], 50_000):
            x = features[start:start + 50_000]
            out.append(_forward(x, _squared(x), self.w0, self.w, self.v)[0])
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def _squared(x):
    return x.multiply(x).tocsr() if issparse(x) else x * x


def _forward(x, x2, w0, w, v):
    xv = np.asarray(x @ v)
    interactions = 0.5 * (np.einsum("ij,ij->i", xv, xv) - np.asarray(x2 @ (v * v)).sum(axis=1))
    return (w0[0] + np.asarray(x @ w).ravel() + interactions).astype(np.float32), xv


def initial(shape, method: str, hp: dict, group: str, rng) -> np.ndarray:
    if method == "constant":
        return np.full(shape, hp[f"{group}_init_value"] or 0.0, np.float32)
    if method == "uniform":
        scale = hp[f"{group}_init_scale"] if hp[f"{group}_init_scale"] is not None else hp[f"{group}_init_sigma"]
        return rng.uniform(-scale, scale, shape).astype(np.float32)
    return rng.normal(0.0, hp[f"{group}_init_sigma"], shape).astype(np.float32)


class Adam:
    """Adam moments per parameter group; `rows` limits an update to some rows (lazy update)."""

    def __init__(self, params: FMParams, hp: dict):
        self.hp, self.t = hp, 0
        self.eps = hp["eps"] or EPSILON
        self.moments = {name: (np.zeros_like(a), np.zeros_like(a)) for name, a in
                        (("bias", params.w0), ("linear", params.w), ("factors", params.v))}

    def step(self, group: str, param: np.ndarray, grad: np.ndarray, rows=None) -> None:
        hp = self.hp
        current = _rows(param, rows)
        grad = grad + hp[f"{group}_wd"] * current
        if hp["clip_gradient"]:
            np.clip(grad, -hp["clip_gradient"], hp["clip_gradient"], out=grad)
        first, second = self.moments[group]
        m = BETA_1 * _rows(first, rows) + (1 - BETA_1) * grad
        s = BETA_2 * _rows(second, rows) + (1 - BETA_2) * grad * grad
        rate = hp[f"{group}_lr"] * np.sqrt(1 - BETA_2 ** self.t) / (1 - BETA_1 ** self.t)
        updated = current - rate * m / (np.sqrt(s) + self.eps)
        if rows is None:
            first[...], second[...], param[...] = m, s, updated
        else:
            first[rows], second[rows], param[rows] = m, s, updated


def _rows(array: np.ndarray, rows) -> np.ndarray:
    """``array[rows]`` (all of it for None); np.take gathers rows several times faster."""
    return array if rows is None else np.take(array, rows, axis=0)


def _active(x):
    """(columns a batch uses, the batch over just those columns)."""
    if not issparse(x):
        return None, x
    columns, local = np.unique(x.indices, return_inverse=True)
    return columns, sp().csr_matrix((x.data, local.ravel(), x.indptr), shape=(x.shape[0], len(columns)))


def train_step(params: FMParams, adam: Adam, x, y: np.ndarray, binary: bool) -> np.ndarray:
    """One Adam step on a mini-batch; returns the batch's predictions before the step."""
    columns, xs = _active(x)
    w, v = _rows(params.w, columns), _rows(params.v, columns)
    x2 = _squared(xs)
    raw, xv = _forward(xs, x2, params.w0, w, v)
    g = (sigmoid(raw) if binary else raw) - y
    g = g * adam.hp["rescale_grad"] if adam.hp["rescale_grad"] else g / len(y)
    g = g.astype(np.float32)
    grad_w = np.asarray(xs.T @ g).ravel()
    grad_v = np.asarray(xs.T @ (g[:, None] * xv)) - v * np.asarray(x2.T @ g).reshape(-1, 1)
    adam.t += 1
    adam.step("bias", params.w0, np.array([g.sum()], np.float32))
    adam.step("linear", params.w, grad_w.astype(np.float32), columns)
    adam.step("factors", params.v, grad_v.astype(np.float32), columns)
    return raw
