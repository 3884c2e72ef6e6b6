"""Fast paths for libsvm training files.

libsvm is XGBoost's default format, and the shared reader (algorithms.io.text.read_libsvm) turns
every `index:value` token into a Python string first, which costs seconds per million tokens.

1. XGBoost's own parser (`DMatrix("file?format=libsvm")`, C++ on every core), which is what
   SageMaker's XGBoost container reads libsvm with. Used for a file only when nothing in it can be
   read differently: plain numbers only (no `qid:`, comments, `nan` or stray text), every index an
   integer, and no `label:weight` head (XGBoost misplaces weights when only some lines have one).
2. Otherwise numpy: a chunk of lines becomes one string in which `:` is a blank, `np.fromstring`
   parses all its numbers at once, and the per-line token counts (from counting colons) say which
   numbers are labels, weights, indices and values.

Both give the shared reader's result (indices as given, absent entries missing, explicit zeros
kept, duplicates summed, `label:weight` heads), which still reads Pipe-mode FIFOs, ranking files
(`qid:`) and any chunk neither path can parse, so that malformed data gets its precise error
message. One difference, the container's own: XGBoost's number parser is fast rather than
correctly rounded, so about one value in 100,000 lands one float32 step from numpy's reading.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from algorithms.io import Batch
from algorithms.io.sparse import sp

CHUNK = 16 << 20


def read_files(paths: list[Path]) -> list[Batch] | None:
    """Batches of every file, or None if any chunk needs the shared reader."""
    batches = []
    for path in paths:
        parsed = by_xgboost(path)
        if parsed is not None:
            batches.append(parsed)
            continue
        chunks = by_numpy(path)
        if chunks is None:
            return None
        batches += chunks
    if any(b.weights is not None for b in batches):  # weights on some lines: 1 for the others
        batches = [b if b.weights is not None else Batch(b.features, b.labels, np.ones(len(b), np.float32))
                   for b in batches]
    return batches


def by_xgboost(path: Path) -> Batch | None:
    """The file read by XGBoost's parser, or None where it could read it differently from ours.

    The check and the parse overlap: once the first block passes the check, XGBoost parses the
    file in a thread (its C++ parser lets go of the GIL) while this thread checks the rest, which
    takes a 100,000-line file from 0.6 s to 0.35 s. A file that fails on its first block (a ranking
    file, a CSV sent as libsvm) is never handed to XGBoost at all."""
    if any(c in str(path) for c in "?#&"):  # would be taken as the URI's query or cache file
        return None
    colons, parsing = 0, None
    try:
        for block in _blocks(path):  # checked a block at a time: memory stays bounded, as when parsing
            found = _plain_colons(block)
            if found is None:
                return None
            colons += found
            if parsing is None:
                parsing = _Parse(path)
    finally:
        matrix = parsing.result() if parsing is not None else None  # never leave XGBoost running behind us
    if matrix is None or matrix.get_weight().size:
        return None
    features = matrix.get_data()
    if features.nnz != colons:  # every index:value pair must be an entry (none dropped, none invented)
        return None
    features.sum_duplicates()
    return Batch(features.astype(np.float32, copy=False), matrix.get_label(), None)


class _Parse:
    """`DMatrix("file?format=libsvm")` in a thread of its own; `result()` waits for it (None if
    XGBoost refused the file: a line out of shape, which the other readers then name)."""

    def __init__(self, path: Path):
        self._path, self._matrix = path, None
        self._thread = threading.Thread(target=self._run, name="xgboost-libsvm-parse", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from algorithms.xgboost.library import XGBoostError, xgb

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "text input is deprecated": it is the container's own reader
                self._matrix = xgb.DMatrix(f"{self._path}?format=libsvm", nthread=-1)
        except XGBoostError:
            self._matrix = None

    def result(self):
        self._thread.join()
        return self._matrix


# Bytes a plain libsvm file is made of: numbers (with signs and exponents), `:` and blanks.
_PLAIN = b"0123456789.+-eE: \t\r\n"
_DIGIT = np.zeros(256, bool)
_DIGIT[ord("0"):ord("9") + 1] = True
_SEPARATOR = np.zeros(256, bool)  # what may come before an index
_SEPARATOR[[ord(" "), ord("\t")]] = True
_LONGEST_INDEX = 10


def _plain_colons(block: bytes) -> int | None:
    """How many `:` a block of whole lines has, if it holds only number bytes and each `:`
    follows an unsigned integer index that a space or tab starts (a line start would make it a
    `label:weight` head or a line without a label); else None. XGBoost reads `0.5:1` as index 0
    and a head as it comes; both go to the other readers."""
    if block.translate(None, _PLAIN):
        return None
    text = np.frombuffer(b"\n" + block, np.uint8)  # a line start before the first line too
    colons = np.flatnonzero(text == ord(":"))
    if colons.size == 0:
        return 0
    if not _DIGIT[text[colons - 1]].all():
        return None
    undecided = np.ones(colons.size, bool)  # colons whose index has not reached its start yet
    for back in range(2, _LONGEST_INDEX + 2):
        chars = text[colons[undecided] - back]
        if not (_DIGIT[chars] | _SEPARATOR[chars]).all():
            return None  # a sign, point, exponent or line start inside or before the index
        undecided[undecided] = _DIGIT[chars]
        if not undecided.any():
            return int(colons.size)
    return None  # an index longer than any sane one: let the other readers judge it


def by_numpy(path: Path) -> list[Batch] | None:
    """The file parsed a block at a time with numpy, or None if a block needs the shared reader."""
    batches = []
    for block in _blocks(path):
        batch = parse(block)
        if batch is None:
            return None
        batches.append(batch)
    return batches


def _blocks(path: Path) -> Iterator[bytes]:
    """The file in blocks of whole lines, about CHUNK bytes each; blank blocks left out."""
    with open(path, "rb") as f:
        tail = b""
        while True:
            data = f.read(CHUNK)
            block, _, tail = (tail + data).rpartition(b"\n") if data else (tail, b"", b"")
            if block.strip():
                yield block
            if not data:
                break


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
    matrix = sp().csr_matrix((pairs[:, 1].astype(np.float32), columns.astype(np.int64), indptr),
                             shape=(len(lines), width))
    matrix.sum_duplicates()
    return Batch(matrix, labels, weights if weighted.any() else None)
