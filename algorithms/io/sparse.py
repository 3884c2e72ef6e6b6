"""scipy.sparse on demand.

Importing scipy.sparse costs a third of a second or more of every `train` and `serve` start
(scipy's array-API layer clones numpy's namespace, which imports numpy.f2py and numpy.testing),
yet most channels are dense. So nothing here imports it at module level: :func:`issparse` answers
without importing (a matrix cannot be a scipy sparse matrix if scipy.sparse was never imported),
and :func:`sp` imports it the first time sparse data is really built. :class:`CSR` carries
sparse rows without scipy for the code that only needs the arrays.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np


def sp() -> ModuleType:
    """The ``scipy.sparse`` module, imported on first use."""
    import scipy.sparse

    return scipy.sparse


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The ranges [start, start + count) of every segment, concatenated, without a Python loop
    (a CSR row selection, the spans of a protobuf column, the points of a tree level)."""
    offsets = np.cumsum(counts) - counts  # where each range begins in the result
    return np.repeat(starts - offsets, counts) + np.arange(offsets[-1] + counts[-1] if len(counts) else 0)


def issparse(x: Any) -> bool:
    """True for a :class:`CSR` or a scipy sparse matrix; never imports scipy.sparse (a matrix
    cannot be a scipy sparse matrix if scipy.sparse was never imported)."""
    if isinstance(x, CSR):
        return True
    module = sys.modules.get("scipy.sparse")
    return module is not None and module.issparse(x)


@dataclass(frozen=True)
class CSR:
    """A compressed-sparse-row matrix as four plain arrays, for readers and trainers that only
    walk CSR arrays (Factorization Machines' sparse step). It exists so that such a job never
    imports scipy.sparse (0.4-0.7 s of a loaded 2-core machine, as much as the whole read);
    :meth:`tocsr` gives the scipy matrix to code that needs sparse algebra.

    ``indptr`` has ``shape[0] + 1`` int64 offsets; row ``i`` is ``indices[indptr[i]:indptr[i+1]]``
    with values ``data[...]`` (column order within a row as the data gave it)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1] - self.indptr[0])

    def astype(self, dtype: Any, copy: bool = True) -> "CSR":
        return CSR(self.data.astype(dtype, copy=copy), self.indices, self.indptr, self.shape)

    def with_width(self, width: int) -> "CSR":
        """The same rows seen as ``width`` columns (readers only know the widest record)."""
        return CSR(self.data, self.indices, self.indptr, (self.shape[0], width))

    def __getitem__(self, rows: Any) -> "CSR":
        """Rows by slice (a view of the arrays) or by integer array (a gather, in that order)."""
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            if step == 1:
                bounds = self.indptr[start:max(stop, start) + 1]
                first, last = bounds[0], bounds[-1]
                return CSR(self.data[first:last], self.indices[first:last], bounds - first,
                           (len(bounds) - 1, self.shape[1]))
            rows = np.arange(start, stop, step)
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        starts, counts = self.indptr[rows], np.diff(self.indptr)[rows]
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        source = ranges(starts, counts)  # position of every kept non-zero in the source
        return CSR(self.data[source], self.indices[source], indptr, (len(rows), self.shape[1]))

    @staticmethod
    def vstack(parts: "list[CSR]", width: int | None = None) -> "CSR":
        width = max(p.shape[1] for p in parts) if width is None else width
        parts = [p[:] if p.indptr[0] else p for p in parts]  # offsets from 0 in every part
        offsets = np.cumsum([0] + [p.nnz for p in parts[:-1]])
        indptr = np.concatenate([[0]] + [p.indptr[1:] + o for p, o in zip(parts, offsets)])
        return CSR(np.concatenate([p.data for p in parts]), np.concatenate([p.indices for p in parts]),
                   indptr.astype(np.int64), (sum(p.shape[0] for p in parts), width))

    def tocsr(self) -> Any:
        """The ``scipy.sparse.csr_matrix`` of the same data (imports scipy.sparse)."""
        return sp().csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    def toarray(self) -> np.ndarray:
        out = np.zeros(self.shape, self.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        np.add.at(out, (rows, self.indices[self.indptr[0]:self.indptr[-1]]),
                  self.data[self.indptr[0]:self.indptr[-1]])
        return out
