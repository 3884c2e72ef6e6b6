"""Delimited text: ``text/csv`` and ``text/libsvm`` readers, and the CSV response writer.

CSV as SageMaker's first-party algorithms read it: no header, numbers only, the label in the first
``label_size`` columns (``text/csv;label_size=0`` for unlabelled data; inference requests carry
no label), optionally followed by an instance weight (XGBoost's ``csv_weights=1``).
libsvm as XGBoost reads it: ``label[:weight] index:value ...`` with indices taken as they are
(0-based; XGBoost's default ``indexing_mode=0``), pass ``indexing=1`` for 1-based files.

Both stream: the file object is read in chunks with ``read()`` alone, so a Pipe-mode FIFO works,
and each batch is parsed by numpy in C (``np.loadtxt`` on the batch's lines, ``astype`` on the
libsvm tokens). Only when that fails is the batch walked line by line, to tell the sender which
line and column is wrong and why.
"""

from __future__ import annotations

import os
import re
from typing import Any, BinaryIO, Iterator, Mapping

import numpy as np

from .batch import Batch
from .errors import DataFormatError
from .sparse import sp

CSV = "text/csv"
LIBSVM = "text/libsvm"
DEFAULT_CHUNK = 1 << 20
_EMPTY_FIELD = re.compile(r"(?:(?<=,)|^)(?=,|$)")


def iter_line_batches(source: BinaryIO | str | os.PathLike | bytes, batch_size: int,
                      chunk_size: int = DEFAULT_CHUNK) -> Iterator[tuple[list[str], list[int]]]:
    """(lines, 1-based line numbers) of at most ``batch_size`` non-blank lines at a time."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield from _line_batches_of([bytes(source)], batch_size)
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield from _line_batches_of(_chunks(f, chunk_size), batch_size)
    else:
        yield from _line_batches_of(_chunks(source, chunk_size), batch_size)


def _chunks(f: BinaryIO, size: int) -> Iterator[bytes]:
    while True:
        data = f.read(size)
        if not data:
            return
        yield data


def _line_batches_of(chunks: Iterator[bytes] | list[bytes],
                     batch_size: int) -> Iterator[tuple[list[str], list[int]]]:
    lines: list[str] = []
    numbers: list[int] = []
    lineno, tail = 0, b""
    for chunk in chunks:
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        for raw in parts:
            lineno += 1
            text = _decode(raw, lineno).strip()
            if text:
                lines.append(text)
                numbers.append(lineno)
                if len(lines) == batch_size:
                    yield lines, numbers
                    lines, numbers = [], []
    if tail.strip():
        lines.append(_decode(tail, lineno + 1).strip())
        numbers.append(lineno + 1)
    if lines:
        yield lines, numbers


def _decode(raw: bytes, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"line {lineno}: not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start}); is this really text data?") from None


# ---------------------------------------------------------------------------------------------
# CSV


def read_csv(source: BinaryIO | str | os.PathLike | bytes, batch_size: int = 1000, *,
             label_size: int = 1, csv_weights: bool = False, allow_missing: bool = False,
             dtype: Any = np.float32) -> Iterator[Batch]:
    """Stream CSV rows as batches: ``features`` (n, columns - label_size [- 1]), ``labels``
    (n,) for ``label_size=1``, (n, k) for k > 1, ``None`` for 0; ``weights`` from the column
    after the labels when ``csv_weights``. Empty fields are NaN with ``allow_missing``
    (XGBoost's missing values), an error otherwise."""
    if label_size < 0:
        raise DataFormatError(f"label_size must be >= 0, got {label_size}")
    lead = label_size + (1 if csv_weights else 0)
    width = None
    for lines, numbers in iter_line_batches(source, batch_size):
        table = _parse_csv_lines(lines, numbers, allow_missing, dtype, width)
        width = table.shape[1]
        if width <= lead:
            raise DataFormatError(
                f"line {numbers[0]}: {width} column(s) but the first {lead} are "
                f"{'label and weight' if csv_weights else 'label'} columns, so no features "
                f"remain; for unlabelled data use content type 'text/csv;label_size=0'")
        labels = (None if label_size == 0 else table[:, 0] if label_size == 1
                  else table[:, :label_size])
        weights = table[:, label_size] if csv_weights else None
        yield Batch(np.ascontiguousarray(table[:, lead:]), labels, weights)


def _parse_csv_lines(lines: list[str], numbers: list[int], allow_missing: bool, dtype: Any,
                     width: int | None) -> np.ndarray:
    if allow_missing:
        lines = [_EMPTY_FIELD.sub("nan", line) for line in lines]
    try:
        table = np.loadtxt(lines, delimiter=",", dtype=dtype, ndmin=2, comments=None)
    except ValueError as exc:
        _diagnose_csv(lines, numbers, width)
        raise DataFormatError(f"lines {numbers[0]}-{numbers[-1]}: not valid CSV numbers "
                              f"({exc})") from None
    if width is not None and table.shape[1] != width:
        raise DataFormatError(f"line {numbers[0]} has {table.shape[1]} columns but the lines "
                              f"before it have {width}; every row needs the same columns")
    return table


def _diagnose_csv(lines: list[str], numbers: list[int], width: int | None) -> None:
    """Raise a DataFormatError naming the first bad line, if one can be found."""
    for line, lineno in zip(lines, numbers):
        fields = line.split(",")
        if width is not None and len(fields) != width:
            raise DataFormatError(f"line {lineno} has {len(fields)} columns but the lines "
                                  f"before it have {width}; every row needs the same columns")
        width = len(fields)
        for col, text in enumerate(fields, 1):
            try:
                float(text)
            except ValueError:
                raise DataFormatError(_csv_field_message(lineno, col, text)) from None


def _csv_field_message(lineno: int, col: int, text: str) -> str:
    if not text.strip():
        return (f"line {lineno}, column {col}: empty value; every field must be a number "
                f"(this algorithm does not accept missing values)")
    hint = (" Quoted fields are not supported." if text.strip().startswith(('"', "'")) else
            " CSV input must not have a header row." if lineno == 1 else "")
    return f"line {lineno}, column {col}: {text.strip()!r} is not a number.{hint}"


def encode_csv(columns: Mapping[str, Any]) -> bytes:
    """One line per row: every column's values (vector columns flattened), comma-separated,
    in the dict's order: ``{"closest_cluster": c, "distance_to_cluster": d}`` → ``1.0,3.0``."""
    parts = []
    n = None
    for name, column in columns.items():
        arr = np.asarray(column)
        if arr.ndim == 0 or (n is not None and arr.shape[0] != n):
            raise ValueError(f"column {name!r} has shape {arr.shape}; expected {n} rows")
        n = arr.shape[0]
        parts.append(arr.reshape(n, -1).astype(str))
    if not parts:
        return b""
    cells = np.concatenate(parts, axis=1)
    return "".join(",".join(row) + "\n" for row in cells.tolist()).encode()


# ---------------------------------------------------------------------------------------------
# libsvm


def read_libsvm(source: BinaryIO | str | os.PathLike | bytes, batch_size: int = 1000, *,
                num_features: int | None = None, indexing: int = 0, labelled: bool = True,
                dtype: Any = np.float32) -> Iterator[Batch]:
    """Stream libsvm rows as batches of ``csr_matrix`` features, float labels and (when any
    line has ``label:weight``) weights, 1.0 where a line gives none. Without ``num_features``
    each batch is as wide as its largest index; give it (e.g. ``feature_dim``) for one width.

    ``labelled=False`` reads inference requests as XGBoost's container does: every
    ``index:value`` token is a feature and a leading token without a colon (a label) is
    ignored, so ``1 3:0.5`` and ``3:0.5`` are the same row; labels are then ``None``."""
    if indexing not in (0, 1):
        raise ValueError("indexing must be 0 (indices as given) or 1 (1-based)")
    for lines, numbers in iter_line_batches(source, batch_size):
        yield _parse_libsvm_lines(lines, numbers, num_features, indexing, labelled, dtype)


def _parse_libsvm_lines(lines: list[str], numbers: list[int], num_features: int | None,
                        indexing: int, labelled: bool, dtype: Any) -> Batch:
    heads, tokens, counts = [], [], []
    for line in lines:
        head, body = _split_head(line)
        if not labelled and ":" in head and not head.startswith("qid:"):
            head, body = "", line
        parts = body.split()
        if "qid:" in body:  # ranking query ids: accepted and ignored, as they are not features
            parts = [p for p in parts if not p.startswith("qid:")]
        heads.append(head)
        tokens += parts
        counts.append(len(parts))
    pairs = " ".join(tokens).replace(":", " ").split()
    try:
        if len(pairs) != 2 * len(tokens):
            raise ValueError
        cols = np.array(pairs[0::2]).astype(np.int64) - indexing
        vals = np.array(pairs[1::2]).astype(dtype)
        labels, weights = _libsvm_heads(heads) if labelled else (None, None)
    except ValueError:
        _diagnose_libsvm(lines, numbers, labelled)
        raise DataFormatError(f"lines {numbers[0]}-{numbers[-1]}: not valid libsvm") from None
    width = _libsvm_width(cols, counts, numbers, num_features, indexing)
    indptr = np.zeros(len(lines) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    features = sp().csr_matrix((vals, cols, indptr), shape=(len(lines), width))
    features.sum_duplicates()
    return Batch(features, labels, weights)


def _libsvm_heads(heads: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    if not any(":" in h for h in heads):
        return np.array(heads).astype(np.float32), None
    split = [h.partition(":") for h in heads]
    labels = np.array([s[0] for s in split]).astype(np.float32)
    weights = np.array([s[2] or "1" for s in split]).astype(np.float32)
    return labels, weights


def _libsvm_width(cols: np.ndarray, counts: list[int], numbers: list[int],
                  num_features: int | None, indexing: int) -> int:
    if cols.size == 0:
        return num_features or 0
    limit = num_features if num_features is not None else int(cols.max()) + 1
    bad = np.flatnonzero((cols < 0) | (cols >= limit))
    if bad.size:
        row = int(np.searchsorted(np.cumsum(counts), bad[0], side="right"))
        allowed = (f"{indexing}..{num_features - 1 + indexing}" if num_features is not None
                   else f">= {indexing}")
        raise DataFormatError(
            f"line {numbers[row]}: feature index {int(cols[bad[0]]) + indexing} is out of range "
            f"(allowed: {allowed}{'; indices are read as 1-based' if indexing else ''})")
    return limit


def _split_head(line: str) -> tuple[str, str]:
    parts = line.split(None, 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _diagnose_libsvm(lines: list[str], numbers: list[int], labelled: bool) -> None:
    for line, lineno in zip(lines, numbers):
        head, body = _split_head(line)
        if not labelled:
            head, body = ("0", body) if ":" not in head else ("0", line)
        label, _, weight = head.partition(":")
        for what, text in (("label", label), ("weight", weight or "1")):
            try:
                float(text)
            except ValueError:
                raise DataFormatError(f"line {lineno}: {what} {text!r} is not a number; "
                                      f"expected 'label[:weight] index:value ...'") from None
        for token in body.split():
            index, colon, value = token.partition(":")
            if token.startswith("qid:"):
                continue
            if not colon or ":" in value:
                raise DataFormatError(f"line {lineno}: {token!r} is not 'index:value'")
            try:
                int(index)
                float(value)
            except ValueError:
                raise DataFormatError(f"line {lineno}: {token!r}: expected an integer index and "
                                      f"a number, as in '3:0.5'") from None
