"""The reference of factorization_machines_bench.py: Rendle's FM with Adam in plain numpy.

Its own module, importing numpy only, so that the reference *program* (a fresh interpreter that
loads the data and fits) pays the imports a plain numpy script pays: scipy.sparse is only loaded
by whoever builds sparse data (scipy.sparse.load_npz), as smlocal's program only loads it for
sparse channels.
"""

from __future__ import annotations

import numpy as np


class NumpyFM:
    """The reference: Rendle's FM with Adam (dense updates of every parameter), nothing else."""

    def __init__(self, d: int, k: int, hp: dict, binary: bool, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.p = {"bias": np.zeros(1, np.float32), "linear": rng.normal(0, 0.01, d).astype(np.float32),
                  "factors": rng.normal(0, hp["factors_init_sigma"], (d, k)).astype(np.float32)}
        self.m = {k_: np.zeros_like(v) for k_, v in self.p.items()}
        self.s = {k_: np.zeros_like(v) for k_, v in self.p.items()}
        self.hp, self.binary, self.t = hp, binary, 0

    def predict(self, X) -> np.ndarray:
        xv = np.asarray(X @ self.p["factors"])
        x2 = X * X if isinstance(X, np.ndarray) else X.multiply(X)
        pairs = 0.5 * ((xv * xv).sum(1) - np.asarray(x2 @ self.p["factors"] ** 2).sum(1))
        return self.p["bias"][0] + np.asarray(X @ self.p["linear"]).ravel() + pairs

    def fit(self, X, y, epochs: int, batch: int) -> "NumpyFM":
        rng = np.random.default_rng(0)
        for _ in range(epochs):
            order = rng.permutation(X.shape[0])
            for start in range(0, len(order), batch):
                rows = order[start:start + batch]
                self.step(X[rows], y[rows])
        return self

    def step(self, X, y) -> None:
        raw = self.predict(X)
        g = ((1 / (1 + np.exp(-raw)) if self.binary else raw) - y) / len(y)
        xv = np.asarray(X @ self.p["factors"])
        x2 = X * X if isinstance(X, np.ndarray) else X.multiply(X)
        grads = {"bias": np.array([g.sum()]), "linear": np.asarray(X.T @ g).ravel(),
                 "factors": np.asarray(X.T @ (g[:, None] * xv)) - self.p["factors"] * np.asarray(x2.T @ g).reshape(-1, 1)}
        self.t += 1
        for name, grad in grads.items():
            grad = grad + self.hp[f"{name}_wd"] * self.p[name]
            self.m[name] = 0.9 * self.m[name] + 0.1 * grad
            self.s[name] = 0.999 * self.s[name] + 0.001 * grad * grad
            rate = self.hp[f"{name}_lr"] * np.sqrt(1 - 0.999 ** self.t) / (1 - 0.9 ** self.t)
            self.p[name] = (self.p[name] - rate * self.m[name] / (np.sqrt(self.s[name]) + 1e-8)).astype(np.float32)
