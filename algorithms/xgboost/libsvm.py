"""A fast path for libsvm training files: whole chunks parsed by numpy in C.

libsvm is XGBoost's default format, and the shared reader (algorithms.io.text.read_libsvm) turns
every `index:value` token into a Python string first, which costs seconds per million tokens.
Here a chunk of lines becomes one string in which `:` is a blank, `np.fromstring` parses all its
numbers at once, and the per-line token counts (from counting colons) say which numbers are labels,
weights, indices and values. Same result as the shared reader (indices as given, absent entries
missing, `label:weight` heads), which still reads Pipe-mode FIFOs, ranking files (`qid:`) and any
chunk this path cannot parse, so that malformed data gets its precise error message.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.sparse

from algorithms.io import Batch

CHUNK = 16 << 20


def read_files(paths: list[Path]) -> list[Batch] | None:
    """Batches of every file, or None if any chunk needs the shared reader."""
    batches = []
    for path in paths:
        with open(path, "rb") as f:
            tail = b""
            while True:
                data = f.read(CHUNK)
                block, _, tail = (tail + data).rpartition(b"\n") if data else (tail, b"", b"")
                if block.strip():
                    batch = parse(block)
                    if batch is None:
                        return None
                    batches.append(batch)
                if not data:
                    break
    if any(b.weights is not None for b in batches):  # weights on some lines: 1 for the others
        batches = [b if b.weights is not None else Batch(b.features, b.labels, np.ones(len(b), np.float32))
                   for b in batches]
    return batches


def parse(block: bytes) -> Batch | None:
    if b"qid:" in block or b"#" in block:
        return None
    lines = [line for line in block.split(b"\n") if line.strip()]
    colons = np.array([line.count(b":") for line in lines], np.int64)
    weighted = np.array([b":" in line.split(None, 1)[0] for line in lines], bool)
    features = colons - weighted
    counts = 1 + weighted + 2 * features  # numbers per line once ':' is a blank
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # older numpy warns where newer raises
            numbers = np.fromstring(b" ".join(lines).replace(b":", b" ").decode("ascii", "replace"), sep=" ")
    except ValueError:  # a token that is not a number
        return None
    if len(numbers) != counts.sum():
        return None
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    labels = numbers[starts].astype(np.float32)
    weights = np.where(weighted, numbers[np.minimum(starts + 1, len(numbers) - 1)], 1.0).astype(np.float32)
    heads = np.zeros(len(numbers), bool)
    heads[starts] = True
    heads[(starts + 1)[weighted]] = True
    pairs = numbers[~heads].reshape(-1, 2)
    columns = pairs[:, 0]
    if len(columns) and (columns.min() < 0 or not np.all(columns == np.floor(columns))):
        return None
    indptr = np.concatenate([[0], np.cumsum(features)])
    width = int(columns.max()) + 1 if len(columns) else 0
    matrix = scipy.sparse.csr_matrix((pairs[:, 1].astype(np.float32), columns.astype(np.int64), indptr),
                                     shape=(len(lines), width))
    matrix.sum_duplicates()
    return Batch(matrix, labels, weights if weighted.any() else None)
