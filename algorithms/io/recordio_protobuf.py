"""``application/x-recordio-protobuf``: SageMaker's record format as numpy batches, and writers.

Every first-party algorithm trains on this format and answers in it; the SDK's ``RecordSet``,
``RecordSerializer`` and ``RecordDeserializer`` speak it. A file is RecordIO framing
(:mod:`.recordio`) around serialized ``aialgs.data.Record`` messages (:mod:`.protobuf_wire`,
schema in ``record.proto``).

Reading is built for throughput: a batch of dense rows of one shape (MNIST: 784 float32 values
and a float label per record) is decoded by parsing the first record's layout, checking that
every other record has the same bytes outside the value fields, and slicing all value fields out
of one ``(n, record_length)`` byte matrix at once. Anything else (sparse rows, int32 varints,
ragged rows) goes through the per-record parser, which is still numpy-backed.
"""

from __future__ import annotations

import math
import os
from itertools import islice
from typing import Any, BinaryIO, Iterator, Mapping

import numpy as np

from . import protobuf_columns, recordio
from .batch import Batch
from .errors import DataFormatError
from .protobuf_wire import (
    DTYPES,
    FIXED_WIDTH,
    RawTensor,
    Record,
    Tensor,
    bytes_per_row,
    decode_tensor,
    decode_varints,
    dense_value_spans,
    encode_varints,
    packed_values,
    parse_record,
    parse_record_raw,
    row_slices,
    tensor_kind,
    varint_bytes,
)
from .sparse import issparse, sp

CONTENT_TYPE = "application/x-recordio-protobuf"
_EMPTY_KEYS = np.zeros(0, np.uint64)


class _opened:
    """``with _opened(path_or_file) as f``: opens a path, leaves a given file object open."""

    def __init__(self, source: BinaryIO | str | os.PathLike):
        self._source = source
        self._own = isinstance(source, (str, os.PathLike))

    def __enter__(self) -> BinaryIO:
        self._f = open(self._source, "rb") if self._own else self._source
        return self._f

    def __exit__(self, *exc: object) -> None:
        if self._own:
            self._f.close()


def read_records(source: BinaryIO | str | os.PathLike) -> list[Record]:
    """Every record of a stream or file, decoded (the SDK's ``read_records``, numpy-valued)."""
    with _opened(source) as f:
        return [parse_record(p) for p in recordio.iter_records(f)]


def read_recordio_protobuf(
    source: BinaryIO | str | os.PathLike,
    batch_size: int = 1000,
    *,
    dtype: Any = None,
    force_dense: bool = False,
    plain_sparse: bool = False,
    feature_key: str = "values",
    label_key: str = "values",
) -> Iterator[Batch]:
    """Stream ``source`` (a path or a binary file object, FIFOs included) as batches of at most
    ``batch_size`` rows.

    Dense records give 2-D ndarrays; sparse records (``keys`` + ``shape``) give ``csr_matrix``
    (dense arrays with ``force_dense``, as K-Means' ``force_dense=True`` asks; with
    ``plain_sparse`` the regular sparse layout comes as a scipy-free :class:`.sparse.CSR`, which
    Factorization Machines trains on directly). ``dtype`` casts
    the features (``None`` keeps the tensor type). Labels are ``None`` when the records carry
    none, shape (n,) for scalar labels, (n, k) for vector labels. The tensor named
    ``feature_key`` / ``label_key`` is used, or the only one present.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    with _opened(source) as f:
        payloads = recordio.iter_records(f)
        first = 0
        while True:
            chunk = list(islice(payloads, batch_size))
            if not chunk:
                return
            batch = _fast_dense_batch(chunk, feature_key, label_key)
            if batch is None:
                batch = protobuf_columns.sparse_batch(chunk)
                if batch is not None and force_dense:
                    batch = Batch(batch.features.toarray(), batch.labels)
                elif batch is not None and not plain_sparse:
                    batch = Batch(batch.features.tocsr(), batch.labels)
            if batch is None:
                batch = _assemble([parse_record_raw(p) for p in chunk], first, force_dense,
                                  feature_key, label_key)
            if dtype is not None:
                batch = Batch(batch.features.astype(dtype, copy=False), batch.labels)
            yield batch
            first += len(chunk)


# ---------------------------------------------------------------------------------------------
# The vectorised path: many records with one dense fixed-width layout


def _fast_dense_batch(payloads: list[bytes], feature_key: str, label_key: str) -> Batch | None:
    length = len(payloads[0])
    if any(len(p) != length for p in payloads):
        return None
    spans = dense_value_spans(payloads[0])
    if not spans:
        return None
    rows = np.frombuffer(b"".join(payloads), np.uint8).reshape(len(payloads), length)
    structure = np.ones(length, bool)
    for span in spans:
        structure[span.start:span.stop] = False
    fixed = rows[:, structure]
    if not (fixed == fixed[0]).all():
        return None
    columns: dict[str, dict[str, np.ndarray]] = {"features": {}, "label": {}}
    for span in spans:
        block = np.ascontiguousarray(rows[:, span.start:span.stop])
        columns[span.section][span.name] = block.view(DTYPES[span.kind])
    features = _choose(columns["features"], feature_key)
    if features is None:
        return None  # let the per-record path report what is missing
    labels = _choose(columns["label"], label_key) if columns["label"] else None
    if columns["label"] and labels is None:
        return None
    if labels is not None and labels.shape[1] == 1:
        labels = labels[:, 0]
    return Batch(features, labels)


def _choose(named: Mapping[str, Any], key: str) -> Any:
    if key in named:
        return named[key]
    return next(iter(named.values())) if len(named) == 1 else None


# ---------------------------------------------------------------------------------------------
# The general path: records parsed down to their tensors' bytes, decoded a batch at a time


def _assemble(records: list[Record], first: int, force_dense: bool, feature_key: str,
              label_key: str) -> Batch:
    raws = [_pick(r.features, feature_key, "features", first + i) for i, r in enumerate(records)]
    features = _raw_features(raws, first)
    if features is None:  # rows of mixed types, or dense rows among sparse ones
        tensors = [decode_tensor(t) for t in raws]
        if any(_is_sparse(t) for t in tensors):
            features = _sparse_rows(tensors, first)
        else:
            features = _dense_rows(tensors, first)
    if force_dense and issparse(features):
        features = features.toarray()
    return Batch(features, _labels(records, first, label_key))


def _pick(values: dict[str, Any], key: str, where: str, index: int) -> RawTensor:
    value = _choose(values, key)
    if value is None:
        found = ", ".join(repr(k) for k in sorted(values)) or "none"
        raise DataFormatError(f"record {index}: no {where} tensor named {key!r} (found: {found})")
    if not isinstance(value, RawTensor):
        raise DataFormatError(f"record {index}: {where}[{key!r}] holds Bytes; a "
                              f"Float32Tensor, Float64Tensor or Int32Tensor is needed")
    return value


def _is_sparse(t: RawTensor | Tensor) -> bool:
    # A sparse row without non-zeros serializes with no keys and no values, only its shape.
    return t.keys is not None or (t.shape is not None and len(t.values) == 0
                                  and math.prod(t.shape) > 0)


def _decode_many(kind: int, blobs: list[bytes], first: int) -> tuple[np.ndarray, np.ndarray]:
    """All rows' values in one array, and how many each row has."""
    blob = b"".join(blobs)
    lengths = np.fromiter(map(len, blobs), np.int64, len(blobs))
    width = FIXED_WIDTH.get(kind)
    if width is not None:
        bad = np.flatnonzero(lengths % width)
        if bad.size:
            raise DataFormatError(f"record {first + bad[0]}: {lengths[bad[0]]} bytes of packed "
                                  f"values are not a whole number of {width}-byte values")
        return np.frombuffer(blob, DTYPES[kind]), lengths // width
    values, counts = _varints_many(blob, lengths, first)
    return values.view(np.int64).astype(np.int32), counts


def _varints_many(blob: bytes, lengths: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    raw = np.frombuffer(blob, np.uint8)
    ends = np.cumsum(lengths)
    ragged = np.flatnonzero((lengths > 0) & (raw[np.maximum(ends - 1, 0)] >= 0x80)) \
        if raw.size else np.zeros(0, np.int64)
    if ragged.size:
        raise DataFormatError(f"record {first + ragged[0]}: a packed varint field ends inside "
                              f"a varint")
    ends_of_varints = np.concatenate(([0], np.cumsum(raw < 0x80)))
    counts = ends_of_varints[ends] - ends_of_varints[ends - lengths]
    return decode_varints(blob, 0, len(blob)), counts


def _raw_features(raws: list[RawTensor], first: int) -> Any:
    """The batch's features decoded in bulk, or None when its rows need one-by-one decoding."""
    kind, n = raws[0].kind, len(raws)
    sparse = [_is_sparse(t) for t in raws]
    if any(t.kind != kind for t in raws) or (any(sparse) and not all(sparse)):
        return None
    values, counts = _decode_many(kind, [t.values for t in raws], first)
    if not sparse[0]:
        bad = np.flatnonzero(counts != counts[0])
        if bad.size:
            raise DataFormatError(
                f"record {first + bad[0]} has {counts[bad[0]]} feature values but record "
                f"{first} has {counts[0]}; dense records must all have the same number of features")
        return values.reshape(n, int(counts[0]) if n else 0)
    keys, key_counts = _varints_many(b"".join(t.keys or b"" for t in raws),
                                     np.fromiter((len(t.keys or b"") for t in raws), np.int64, n),
                                     first)
    return _csr(values, keys, counts, key_counts, raws, first)


def _csr(values: np.ndarray, keys: np.ndarray, counts: np.ndarray, key_counts: np.ndarray,
         raws: list[RawTensor], first: int) -> Any:
    bad = np.flatnonzero(key_counts != counts)
    if bad.size:
        raise DataFormatError(f"record {first + bad[0]}: {key_counts[bad[0]]} keys but "
                              f"{counts[bad[0]]} values")
    if any(t.shape is None for t in raws):
        i = next(i for i, t in enumerate(raws) if t.shape is None)
        raise DataFormatError(f"record {first + i}: a sparse tensor (with keys) needs a shape, "
                              f"e.g. shape=[number of features]")
    widths = np.array([math.prod(t.shape) for t in raws], np.int64)
    row_of = np.repeat(np.arange(len(raws)), counts)
    out = np.flatnonzero(keys >= widths[row_of].astype(np.uint64))
    if out.size:
        row = int(row_of[out[0]])
        raise DataFormatError(f"record {first + row}: key {int(keys[out[0]])} is out of range "
                              f"for shape {list(raws[row].shape)}")
    indptr = np.concatenate(([0], np.cumsum(counts)))
    return sp().csr_matrix((values, keys.astype(np.int64), indptr),
                                   shape=(len(raws), int(widths.max())))


def _dense_rows(tensors: list[Tensor], first: int) -> np.ndarray:
    width = tensors[0].values.size
    for i, t in enumerate(tensors):
        if t.values.size != width:
            raise DataFormatError(
                f"record {first + i} has {t.values.size} feature values but record {first} has "
                f"{width}; dense records must all have the same number of features")
    return np.stack([t.values for t in tensors])


def _sparse_row(t: Tensor, index: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(values, column indices, width) of one row of a sparse batch."""
    if not _is_sparse(t):  # a dense row among sparse ones
        cols = np.flatnonzero(t.values)
        return t.values[cols], cols.astype(np.uint64), t.values.size
    keys = t.keys if t.keys is not None else _EMPTY_KEYS
    if t.shape is None:
        raise DataFormatError(f"record {index}: a sparse tensor (with keys) needs a shape, "
                              f"e.g. shape=[number of features]")
    if keys.size != t.values.size:
        raise DataFormatError(f"record {index}: {keys.size} keys but {t.values.size} values")
    width = int(np.prod(t.shape))
    if keys.size and int(keys.max()) >= width:
        raise DataFormatError(f"record {index}: key {int(keys.max())} is out of range for "
                              f"shape {list(t.shape)}")
    return t.values, keys, width


def _sparse_rows(tensors: list[Tensor], first: int) -> Any:
    rows = [_sparse_row(t, first + i) for i, t in enumerate(tensors)]
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([r[1].size for r in rows], out=indptr[1:])
    values = np.concatenate([r[0] for r in rows])
    cols = np.concatenate([r[1] for r in rows]).astype(np.int64)
    width = max(r[2] for r in rows)
    return sp().csr_matrix((values, cols, indptr), shape=(len(rows), width))


def _labels(records: list[Record], first: int, key: str) -> np.ndarray | None:
    present = [bool(r.label) for r in records]
    if not any(present):
        return None
    if not all(present):
        raise DataFormatError(f"record {first + present.index(False)} has no label but other "
                              f"records do; give every record a label or none")
    raws = [_pick(r.label, key, "label", first + i) for i, r in enumerate(records)]
    if all(t.kind == raws[0].kind and t.keys is None for t in raws):
        values, counts = _decode_many(raws[0].kind, [t.values for t in raws], first)
        rows = np.split(values, np.cumsum(counts)[:-1]) if counts.min() != counts.max() else None
    else:
        rows = [_densify(decode_tensor(t)) for t in raws]
    if rows is None:
        return values if counts[0] == 1 else values.reshape(len(raws), int(counts[0]))
    sizes = sorted({r.size for r in rows})
    if len(sizes) == 1:
        return np.concatenate(rows) if sizes == [1] else np.stack(rows)
    raise DataFormatError(f"records {first}..{first + len(records) - 1} have labels of "
                          f"different sizes {sizes}")


def _densify(t: Tensor) -> np.ndarray:
    if t.keys is None:
        return t.values
    out = np.zeros(int(np.prod(t.shape or (int(t.keys.max(initial=0)) + 1,))), t.values.dtype)
    out[t.keys.astype(np.intp)] = t.values
    return out


# ---------------------------------------------------------------------------------------------
# Encoding

_VALUE_TAG = {2: b"\x12", 3: b"\x1a", 7: b"\x3a"}  # Value field 2/3/7, wire type LEN
_SECTION_TAG = {"features": b"\x0a", "label": b"\x12"}  # Record field 1/2, wire type LEN


def _tensors(matrix: Any, what: str) -> tuple[int, list[bytes]]:
    """(Value oneof field, serialized tensor message per row) for a 2-D array or sparse matrix."""
    if issparse(matrix):
        csr = sp().csr_matrix(matrix)
        csr.sort_indices()
        kind = tensor_kind(csr.dtype, what)
        counts = np.diff(csr.indptr).astype(np.int64)
        values = packed_values(csr.data, kind, counts)
        key_blob, key_bytes = encode_varints(csr.indices.astype(np.uint64))
        keys = row_slices(key_blob, bytes_per_row(key_bytes, counts))
        shape = _len_field(b"\x1a", varint_bytes(csr.shape[1]))
        return kind, [_len_field(b"\x0a", v) + _len_field(b"\x12", k) + shape
                      for v, k in zip(values, keys)]
    kind = tensor_kind(matrix.dtype, what)
    counts = np.full(matrix.shape[0], matrix.shape[1], np.int64)
    return kind, [_len_field(b"\x0a", v) for v in packed_values(matrix.reshape(-1), kind, counts)]


def _len_field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field; empty packed fields are omitted, as protobuf does."""
    return tag + varint_bytes(len(payload)) + payload if payload else b""


def _add_entries(rows: list[list[bytes]], section: str, name: str, matrix: Any) -> None:
    """Append the map entry ``name -> Value(tensor)`` of each row to that row's pieces."""
    kind, tensors = _tensors(matrix, f"{section}[{name!r}]")
    key = b"\x0a" + varint_bytes(len(name.encode())) + name.encode()
    tag, vtag, headers = _SECTION_TAG[section], _VALUE_TAG[kind], {}
    for pieces, tensor in zip(rows, tensors):
        header = headers.get(len(tensor))
        if header is None:  # rows of equal length share one header
            value_len = 1 + len(varint_bytes(len(tensor))) + len(tensor)
            entry_len = len(key) + 1 + len(varint_bytes(value_len)) + value_len
            header = b"".join((tag, varint_bytes(entry_len), key, b"\x12",
                               varint_bytes(value_len), vtag, varint_bytes(len(tensor))))
            headers[len(tensor)] = header
        pieces += (header, tensor)


def _as_rows(column: Any, n: int, what: str) -> Any:
    if issparse(column):
        if column.shape[0] != n:
            raise ValueError(f"{what} has {column.shape[0]} rows, expected {n}")
        return column
    arr = np.asarray(column)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(f"{what} has shape {arr.shape}, expected {n} rows")
    return arr.reshape(n, -1)


def encode_records(features: Any = None, labels: Any = None, *, dtype: Any = None) -> bytes:
    """Rows as framed recordio-protobuf records, one record per row.

    ``features``: a 2-D array or scipy sparse matrix, written as ``features["values"]`` (a 1-D
    array is one row); ``None`` leaves ``features`` empty, as algorithms' responses do.
    ``labels``: an array (written as ``label["values"]``, like the SDK) or a dict of named
    columns of shape (n,) or (n, k), e.g. ``{"closest_cluster": c, "distance_to_cluster": d}``.
    Tensor types follow the dtypes as in the SDK (float32 → Float32Tensor, float64 →
    Float64Tensor, integers → Int32Tensor); ``dtype`` casts everything first. SageMaker's
    built-in algorithms answer in float32.
    """
    if features is not None and not issparse(features):
        features = np.asarray(features)
        features = features.reshape(1, -1) if features.ndim == 1 else features
    if labels is not None and not isinstance(labels, Mapping):
        labels = {"values": labels}
    labels = dict(labels or {})
    if dtype is not None:
        features = None if features is None else features.astype(dtype)
        labels = {k: np.asarray(v).astype(dtype) for k, v in labels.items()}
    if features is None and not labels:
        raise ValueError("nothing to write: give features, labels or both")
    n = features.shape[0] if features is not None else len(next(iter(labels.values())))
    rows: list[list[bytes]] = [[] for _ in range(n)]
    if features is not None:
        _add_entries(rows, "features", "values", _as_rows(features, n, "features"))
    for name, column in labels.items():
        _add_entries(rows, "label", name, _as_rows(column, n, f"labels[{name!r}]"))
    return b"".join([recordio.frame(b"".join(pieces)) for pieces in rows])


def write_records(fileobj: BinaryIO, features: Any = None, labels: Any = None, *,
                  dtype: Any = None) -> None:
    """:func:`encode_records` into a binary file object (training files, response bodies)."""
    fileobj.write(encode_records(features, labels, dtype=dtype))
