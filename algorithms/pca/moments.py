"""Streaming second moments for PCA: one pass over a channel (File or Pipe), mergeable across hosts.

SageMaker's PCA reads mini-batches and combines per-host partial results on a parameter server.
Both of its modes need only sums over the rows, so each host keeps

* ``n``, the row count, and ``mean``, the row mean;
* ``m2``, the scatter matrix about that mean, ``Σ (x-mean)(x-mean)ᵀ`` (d × d), or, for
  randomized mode on wide data, its product with a shared random test matrix Ω,
  ``Σ (x-mean)(x-mean)ᵀ Ω`` (d × l, so a wide feature space never needs a d × d matrix).

Batches are summed about a fixed shift (the first batch's mean) so the float32 products of
well-offset data do not cancel, and hosts are merged with Chan's parallel formula
``M2 = Σ M2_h + Σ n_h δ_h δ_hᵀ(Ω)``, which is exact. Sparse batches (recordio-protobuf with
keys) stay sparse: their shift is zero and ``XᵀX`` is taken on the CSR matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from algorithms.io.sparse import issparse

SKETCH_SEED = 0x5CA1AB1E  # every host must draw the same Ω
SHIFT_ROWS = 4096  # rows whose mean is the shift


def test_matrix(feature_dim: int, width: int) -> np.ndarray:
    """The shared random test matrix Ω of randomized mode: orthonormal columns, d × l."""
    gaussian = np.random.default_rng(SKETCH_SEED).standard_normal((feature_dim, width))
    return np.linalg.qr(gaussian)[0]


@dataclass
class Moments:
    """One host's (or the merged) count, mean and scatter (or sketched scatter)."""

    n: int
    mean: np.ndarray  # (d,) float64
    m2: np.ndarray  # (d, d) or (d, l) float64

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"n": np.array([self.n], np.int64), "mean": self.mean, "m2": self.m2}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Moments":
        return cls(int(arrays["n"][0]), arrays["mean"], arrays["m2"])


class Accumulator:
    """Sums over the batches of one host about a fixed shift; ``omega`` None means regular mode."""

    def __init__(self, feature_dim: int, omega: np.ndarray | None = None):
        self.d = feature_dim
        self.omega = omega
        self.shift: np.ndarray | None = None
        self.n = 0
        self.total = np.zeros(feature_dim)
        self.scatter = np.zeros((feature_dim, feature_dim if omega is None else omega.shape[1]))
        self._buffer: np.ndarray | None = None
        self._ones_vector: np.ndarray | None = None

    def add(self, features) -> None:
        if features.shape[0] == 0:
            return
        if self.shift is None:
            self.shift = self._first_shift(features)
        if issparse(features) and not self.shift.any():
            self._add_sparse(features.tocsr())
        else:
            dense = features.toarray() if issparse(features) else np.asarray(features)
            self._add_dense(dense)

    @staticmethod
    def _first_shift(features) -> np.ndarray:
        """A point near the data's centre, about which the sums stay small (float32 products
        lose nothing to cancellation). Its exact value does not matter (`moments` corrects for
        it), so the first rows' mean serves: over a whole first batch it was a pass as long as
        the centring itself."""
        if issparse(features):
            return np.zeros(features.shape[1])
        return np.asarray(features[:SHIFT_ROWS]).mean(axis=0, dtype=np.float64)

    def _add_dense(self, x: np.ndarray) -> None:
        y = self._centred(x)
        self.n += y.shape[0]
        # Column sums in BLAS (a ones-vector product; numpy's float64 axis-0 sum took 0.045 s of
        # the 220 MB pass). Float32 accumulation is safe here for the reason the float32
        # products are: y is centred on the shift, so its sums are small next to the data.
        self.total += self._ones(len(y), y.dtype) @ y
        if self.omega is None:
            self.scatter += y.T @ y  # numpy hands Aᵀ·A to BLAS syrk
        else:
            self.scatter += y.T @ (y @ self.omega.astype(y.dtype))

    def _centred(self, x: np.ndarray) -> np.ndarray:
        """``x - shift`` (float32 for float32 data, else float64) in a buffer reused across
        batches: one pass that reads ``x`` (a strided view of a mapped file, say) and writes
        contiguous rows for BLAS, with no new allocation (fresh pages) per batch."""
        dtype = np.float32 if x.dtype == np.float32 else np.float64
        if self._buffer is None or self._buffer.dtype != dtype or len(self._buffer) < len(x):
            self._buffer = np.empty((len(x), self.d), dtype)
        return np.subtract(x, self.shift.astype(dtype), out=self._buffer[:len(x)], dtype=dtype)

    def _ones(self, n: int, dtype) -> np.ndarray:
        if self._ones_vector is None or self._ones_vector.dtype != dtype or len(self._ones_vector) < n:
            self._ones_vector = np.ones(n, dtype)
        return self._ones_vector[:n]

    def _add_sparse(self, x: Any) -> None:
        x = x.astype(np.float64)
        self.n += x.shape[0]
        self.total += np.asarray(x.sum(axis=0)).ravel()
        if self.omega is None:
            self.scatter += (x.T @ x).toarray()
        else:
            self.scatter += np.asarray(x.T @ (x @ self.omega))

    def moments(self) -> Moments:
        """Count, mean and the scatter about the mean of everything added."""
        if self.n == 0:
            return Moments(0, np.zeros(self.d), np.zeros_like(self.scatter))
        delta = self.total / self.n
        m2 = self.scatter - self.n * np.outer(delta, self._project(delta))
        return Moments(self.n, self.shift + delta, m2)

    def _project(self, vector: np.ndarray) -> np.ndarray:
        return vector if self.omega is None else vector @ self.omega


def merge(parts: list[Moments], omega: np.ndarray | None = None) -> Moments:
    """Chan's exact combination of per-host moments."""
    parts = [p for p in parts if p.n > 0]
    if not parts:
        raise ValueError("no rows to merge")
    n = sum(p.n for p in parts)
    mean = sum(p.n * p.mean for p in parts) / n
    m2 = sum(p.m2 for p in parts)
    for p in parts:
        delta = p.mean - mean
        m2 = m2 + p.n * np.outer(delta, delta if omega is None else delta @ omega)
    return Moments(n, mean, m2)


def about_origin(moments: Moments, omega: np.ndarray | None = None) -> np.ndarray:
    """The second moment about zero, ``Σ x xᵀ (Ω)``, for subtract_mean=false."""
    mean = moments.mean
    return moments.m2 + moments.n * np.outer(mean, mean if omega is None else mean @ omega)
