"""Labelled training data for the supervised first-party algorithms (Linear Learner,
Factorization Machines): a channel read into one matrix (dense ndarray or CSR) and its labels,
checked the way SageMaker checks it, and moved between hosts.

Both algorithms train many passes over data that fits in memory, so a channel is read once into
float32 arrays (Pipe mode re-reads a FIFO per pass through :meth:`Channel.batches`). Problems in
the data are the caller's mistake and surface as ``ClientError``: features that are not Float32
in recordio-protobuf, a width other than ``feature_dim``, records without a label.
Multi-host ShardedByS3Key jobs send every host's share to algo-1 (:func:`gather`), so the one
model written reflects all the data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from algorithms.common import logs
from algorithms.common.errors import ClientError
from algorithms.io import RECORDIO_PROTOBUF, parse_content_type
from algorithms.io.sparse import CSR, issparse, sp

# Rows per decoded batch. Large batches keep the recordio fast path busy; the channel is held in
# memory whole anyway, and a uniform dense file of up to this many records is read as one batch
# (no concatenation copy).
READ_BATCH = 100_000


@dataclass
class Labelled:
    """``features``: (n, feature_dim) float32 ndarray, scipy CSR matrix or plain :class:`CSR`
    (read with ``plain_sparse``); ``labels``: (n,) float32."""

    features: Any
    labels: np.ndarray

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def is_sparse(self) -> bool:
        return issparse(self.features)

    def take(self, rows) -> "Labelled":
        return Labelled(self.features[rows], self.labels[rows])

    def pack(self) -> dict[str, np.ndarray]:
        """Plain arrays for :func:`algorithms.common.distributed.gather` (npz, no pickles)."""
        if self.is_sparse:
            f = self.features
            return {"data": f.data, "indices": f.indices, "indptr": f.indptr,
                    "shape": np.array(f.shape, np.int64), "labels": self.labels}
        return {"dense": self.features, "labels": self.labels}

    @staticmethod
    def unpack(arrays: dict[str, np.ndarray]) -> "Labelled":
        if "dense" in arrays:
            return Labelled(arrays["dense"], arrays["labels"])
        shape = tuple(int(v) for v in arrays["shape"])
        matrix = sp().csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        return Labelled(matrix, arrays["labels"])


def concat(parts: list[Labelled], feature_dim: int) -> Labelled:
    parts = [p for p in parts if len(p)] or parts[:1]
    if not parts:
        return Labelled(np.zeros((0, feature_dim), np.float32), np.zeros(0, np.float32))
    if len(parts) == 1:
        return parts[0]
    labels = np.concatenate([p.labels for p in parts])
    if all(isinstance(p.features, CSR) for p in parts):  # no scipy needed to stack plain CSR
        return Labelled(CSR.vstack([p.features for p in parts], feature_dim), labels)
    if any(p.is_sparse for p in parts):
        return Labelled(sp().vstack([_scipy_csr(p.features) for p in parts], format="csr"), labels)
    return Labelled(np.concatenate([p.features for p in parts]), labels)


def _scipy_csr(features: Any) -> Any:
    return features.tocsr() if isinstance(features, CSR) else sp().csr_matrix(features)


def read_channel(channel, feature_dim: int, *, algorithm: str, supported: Iterable[str],
                 default: str = RECORDIO_PROTOBUF, plain_sparse: bool = False) -> Labelled:
    """One pass over ``channel`` as a :class:`Labelled` (in Pipe mode: the next FIFO).
    ``plain_sparse``: sparse recordio-protobuf as a plain :class:`CSR` when the layout allows
    (for a trainer that only walks CSR arrays), so that scipy.sparse is never imported."""
    recordio = parse_content_type(channel.content_type, default).mime == RECORDIO_PROTOBUF
    started = time.perf_counter()
    parts = [_checked(b, channel.name, feature_dim, algorithm, recordio)
             for b in channel.batches(READ_BATCH, supported=tuple(supported), default=default,
                                      plain_sparse=plain_sparse)]
    data = concat(parts, feature_dim)
    logs.info(f"read {len(data)} records from channel '{channel.name}' in {time.perf_counter() - started:.3f} s")
    return data


def _checked(batch, channel: str, feature_dim: int, algorithm: str, recordio: bool) -> Labelled:
    features = batch.features
    if recordio and features.dtype != np.float32:
        kind = {np.dtype(np.float64): "Float64Tensor", np.dtype(np.int32): "Int32Tensor"}.get(features.dtype, str(features.dtype))
        raise ClientError(f"Channel '{channel}' holds {kind} features; {algorithm} reads recordio-protobuf "
                          f"Float32Tensor data only (write it from float32 arrays, e.g. X.astype('float32'))")
    if batch.labels is None:
        raise ClientError(f"The records in channel '{channel}' carry no label; {algorithm} needs one label per "
                          f"record (the first CSV column, or the record's label map in recordio-protobuf)")
    labels = np.asarray(batch.labels, dtype=np.float32)
    if labels.ndim != 1:
        raise ClientError(f"Channel '{channel}' has {labels.shape[1]} label values per record; {algorithm} "
                          f"takes exactly one")
    return Labelled(_with_width(features, feature_dim), labels)


def _with_width(features, feature_dim: int):
    width = features.shape[1]
    if issparse(features):
        if width > feature_dim:
            raise ClientError(f"The data has {width} features, but feature_dim is {feature_dim}")
        if isinstance(features, CSR):
            return features.astype(np.float32, copy=False).with_width(feature_dim)
        csr = sp().csr_matrix(features, dtype=np.float32)
        return sp().csr_matrix((csr.data, csr.indices, csr.indptr), shape=(csr.shape[0], feature_dim))
    if width != feature_dim:
        raise ClientError(f"The data has {width} features, but feature_dim is {feature_dim}")
    return np.ascontiguousarray(features, dtype=np.float32)


def gather(ctx, data: Labelled) -> list[Labelled] | None:
    """Every host's share on the leader, its own first; None on the other hosts, which are done."""
    shares = ctx.gather(data.pack())
    if shares is None:
        return None
    return [data] + [Labelled.unpack(s) for s in shares[1:]]
