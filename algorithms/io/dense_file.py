"""A whole recordio-protobuf FILE of uniform dense records as one array, without a per-record loop.

What the SDK's `record_set()` uploads (`write_numpy_to_dense_tensor`) is n records of exactly
the same length and layout: every record header is the same 8 bytes, so the file is an
(n, 8 + padded length) byte matrix and each tensor's values are one column block of it. The
file is memory-mapped (read-only) and each tensor is a strided view of that matrix
(:func:`map_dense_file`): no per-record loop (the streaming reader's framing loop in Python costs
about a second per 70,000 MNIST-sized records) and no copy of the file into memory. A caller that
streams over the rows once (PCA's centring) reads the views directly; :func:`read_dense_file`
makes one contiguous copy of each tensor, straight from the page cache.

Anything else (split or differently sized records, sparse or varint tensors, a layout that
differs between records) returns None and the caller uses the streaming reader, which also owns
every error message. Kept apart from :mod:`.recordio_protobuf`, whose streaming path must work on
FIFOs and sockets; this one needs a regular file.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from .batch import Batch
from .protobuf_wire import DTYPES, dense_value_spans
from .recordio import CFLAG_WHOLE, MAGIC, padded


def _choose(named: dict, key: str):
    """The tensor named ``key``, or the only one present (the streaming reader's rule)."""
    if key in named:
        return named[key]
    return next(iter(named.values())) if len(named) == 1 else None


def _same_outside(payload: np.ndarray, spans, length: int) -> bool:
    """Every record has the first one's bytes outside the value spans (compared gap by gap, as
    column slices: no boolean gather of the whole file)."""
    edges = sorted((span.start, span.stop) for span in spans)
    gaps = zip([0] + [stop for _, stop in edges], [start for start, _ in edges] + [length])
    return all((payload[:, a:b] == payload[0, a:b]).all() for a, b in gaps if b > a)


def map_dense_file(path: str | os.PathLike, feature_key: str = "values", label_key: str = "values") -> Batch | None:
    """Every record of ``path`` as one :class:`Batch` of read-only strided views of the mapped
    file (row stride: one record), or None when the fast layout does not hold."""
    size = os.path.getsize(path)
    if size < 8:
        return None
    with open(path, "rb") as f:
        raw = np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)  # the map outlives f
    magic, lrecord = (int(v) for v in raw[:8].view("<u4"))
    length, cflag = lrecord & ((1 << 29) - 1), lrecord >> 29
    stride = 8 + padded(length)
    if magic != MAGIC or cflag != CFLAG_WHOLE or length == 0 or raw.size % stride:
        return None
    rows = raw.reshape(-1, stride)
    if not (rows[:, :8] == rows[0, :8]).all():  # every header the same: the framing is uniform
        return None
    payload = rows[:, 8:8 + length]
    spans = dense_value_spans(payload[0].tobytes())
    if not spans:
        return None
    if not _same_outside(payload, spans, length):  # the same bytes outside the values: the same layout
        return None
    columns: dict[str, dict[str, np.ndarray]] = {"features": {}, "label": {}}
    for span in spans:
        columns[span.section][span.name] = payload[:, span.start:span.stop].view(DTYPES[span.kind])
    features = _choose(columns["features"], feature_key)
    labels = _choose(columns["label"], label_key) if columns["label"] else None
    if features is None or (columns["label"] and labels is None):
        return None
    return Batch(features, labels[:, 0] if labels is not None and labels.shape[1] == 1 else labels)


def read_dense_file(path: str | os.PathLike, feature_key: str = "values", label_key: str = "values") -> Batch | None:
    """:func:`map_dense_file` with each tensor copied once into a contiguous, writable array."""
    mapped = map_dense_file(path, feature_key, label_key)
    if mapped is None:
        return None
    labels = None if mapped.labels is None else np.ascontiguousarray(mapped.labels)
    return Batch(np.ascontiguousarray(mapped.features), labels)
