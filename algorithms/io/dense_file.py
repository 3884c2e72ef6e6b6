"""A whole recordio-protobuf FILE of uniform dense records as one array, without a per-record loop.

What the SDK's `record_set()` uploads (`write_numpy_to_dense_tensor`) is n records of exactly
the same length and layout: every record header is the same 8 bytes, so the file is an
(n, 8 + padded length) byte matrix and each tensor's values are one column block of it. Reading
that needs one `np.fromfile` and one copy of the value block, instead of the streaming reader's
per-record framing loop in Python (which costs about a second per 70,000 MNIST-sized records).

Anything else (split or differently sized records, sparse or varint tensors, a layout that
differs between records) returns None and the caller uses the streaming reader, which also owns
every error message. Kept apart from :mod:`.recordio_protobuf`, whose streaming path must work on
FIFOs and sockets; this one needs a regular file.
"""

from __future__ import annotations

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


def read_dense_file(path: str | os.PathLike, feature_key: str = "values", label_key: str = "values") -> Batch | None:
    """Every record of ``path`` as one :class:`Batch`, or None when the fast layout does not hold."""
    raw = np.fromfile(path, np.uint8)
    if raw.size < 8:
        return None
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
    structure = np.ones(length, bool)
    for span in spans:
        structure[span.start:span.stop] = False
    fixed = payload[:, structure]
    if not (fixed == fixed[0]).all():  # the same bytes outside the values: the same layout
        return None
    columns: dict[str, dict[str, np.ndarray]] = {"features": {}, "label": {}}
    for span in spans:
        block = np.ascontiguousarray(payload[:, span.start:span.stop])  # the one copy of the values
        columns[span.section][span.name] = block.view(DTYPES[span.kind])
    features = _choose(columns["features"], feature_key)
    labels = _choose(columns["label"], label_key) if columns["label"] else None
    if features is None or (columns["label"] and labels is None):
        return None
    return Batch(features, labels[:, 0] if labels is not None and labels.shape[1] == 1 else labels)
