"""The one shape every reader yields: a batch of rows, their labels and (libsvm, csv) weights.

Readers stream: they yield :class:`Batch` objects of at most ``batch_size`` rows so that a
70,000-row channel, or a Pipe-mode FIFO that never ends until the platform closes it, is
processed without holding it all in memory. ``for features, labels in reader(...)`` works because
a batch unpacks as that pair; weights are there as an attribute for the formats that carry them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from .errors import DataFormatError
from .sparse import issparse, sp


@dataclass(frozen=True)
class Batch:
    """``features`` is a 2-D ``np.ndarray`` (dense) or ``scipy.sparse.csr_matrix`` (sparse);
    ``labels`` is ``None`` (no label in the data), shape ``(n,)`` (one label per row) or ``(n, k)``;
    ``weights`` is ``None`` or shape ``(n,)``."""

    features: Any
    labels: np.ndarray | None = None
    weights: np.ndarray | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.features, self.labels))

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def is_sparse(self) -> bool:
        return issparse(self.features)


def concat_batches(batches: list[Batch]) -> Batch:
    """One batch from many (e.g. a whole small channel or an inference request body)."""
    if not batches:
        raise ValueError("no batches to concatenate")
    if len(batches) == 1:
        return batches[0]
    if any(b.is_sparse for b in batches):
        width = max(b.features.shape[1] for b in batches)
        feats = sp().vstack(
            [_as_csr(b.features, width) for b in batches], format="csr")
    else:
        feats = np.concatenate([b.features for b in batches])
    return Batch(feats, _concat_optional([b.labels for b in batches], "labels"),
                 _concat_optional([b.weights for b in batches], "weights"))


def _as_csr(features: Any, width: int) -> Any:
    m = sp().csr_matrix(features)
    if m.shape[1] != width:
        m = sp().csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], width))
    return m


def _concat_optional(parts: list[np.ndarray | None], what: str) -> np.ndarray | None:
    present = [p is not None for p in parts]
    if not any(present):
        return None
    if not all(present):
        raise DataFormatError(f"some rows have {what} and others do not; "
                              f"give {what} for every row or for none")
    return np.concatenate(parts)
