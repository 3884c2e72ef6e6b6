"""Sparse recordio-protobuf batches decoded column-wise: every record of a batch at once.

The per-record parser (:func:`.protobuf_wire.parse_record_raw`) walks each record's fields in
Python, some 50 µs a record; a 100,000-row sparse channel (the SDK's ``RecordSet`` of a one-hot
matrix, Factorization Machines' usual input) spent seconds there. Here the nesting
``Record → MapEntry → Value → Tensor`` is walked one level at a time for all records together:
each step reads the next field of every message still open with numpy, so the Python work is
per *field position* (a handful per record layout), not per record.

Only the common, regular shape is taken: every field length-delimited with a one-byte tag, one
``features`` entry per record, at most one ``label`` entry, sparse feature tensors (keys and a
one-dimensional shape), dense labels. Anything else makes :func:`sparse_batch` return ``None``,
and the caller's per-record path decodes it, or reports exactly what is wrong with it; so both
paths give identical results on what this one accepts.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .batch import Batch
from .protobuf_wire import DTYPES, FIXED_WIDTH, INT32
from .sparse import CSR, ranges

_LEN = 2  # protobuf wire type of length-delimited fields (messages, packed arrays, strings)
_PAD = 16  # zero bytes after the data so that reading a tag or length never runs off the end


class Fields(NamedTuple):
    """Length-delimited fields found in a set of messages, in message order then field order."""

    owner: np.ndarray  # index of the enclosing message
    number: np.ndarray  # field number
    start: np.ndarray  # payload start (after tag and length)
    stop: np.ndarray


def _lengths(buf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The varint at each ``pos`` (a field length) and where it ends; None past 4 bytes."""
    first = buf[pos]
    if (first < 0x80).all():  # the usual: every field of a small record is under 128 bytes
        return first.astype(np.int64), pos + 1
    length = np.zeros(pos.shape, np.int64)
    done = np.zeros(pos.shape, bool)
    after = pos.copy()
    for i in range(4):  # lengths below 2**28: far above any record RecordIO can frame
        byte = buf[pos + i].astype(np.int64)
        live = ~done
        length[live] |= (byte[live] & 0x7F) << (7 * i)
        after[live] = pos[live] + i + 1
        done |= byte < 0x80
        if done.all():
            return length, after
    return None


def walk(buf: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> Fields | None:
    """The fields of the messages ``buf[starts[i]:stops[i]]``, or None when one is not a
    length-delimited field with a one-byte tag, or overruns its message."""
    steps: list[tuple[np.ndarray, ...]] = []
    pos, open_ = starts.copy(), np.flatnonzero(starts < stops)
    while open_.size:
        at, end = pos[open_], stops[open_]
        tag = buf[at]
        if (tag >= 0x80).any() or ((tag & 7) != _LEN).any() or (at + 2 > end).any():
            return None
        read = _lengths(buf, at + 1)
        if read is None:
            return None
        length, begin = read
        stop = begin + length
        if (stop > end).any():
            return None
        steps.append((open_, (tag >> 3).astype(np.int64), begin, stop))
        pos[open_] = stop
        open_ = open_[stop < end]
    if not steps:
        empty = np.zeros(0, np.int64)
        return Fields(empty, empty, empty, empty)
    if all(step[0].size == steps[0][0].size for step in steps):
        # every message has as many fields (the usual): regrouping per message is an interleave
        return Fields(*(np.stack(column, axis=1).ravel() for column in zip(*steps)))
    owner, number, start, stop = (np.concatenate(c) for c in zip(*steps))
    order = np.argsort(owner, kind="stable")  # steps run field by field: regroup per message
    return Fields(owner[order], number[order], start[order], stop[order])


def _one_per_owner(fields: Fields, number: int, owners: int, required: bool) -> Fields | None:
    """The fields numbered ``number``: exactly one per owner when ``required``, else at most one
    (an absent packed field is an empty array); None otherwise (e.g. a field repeated)."""
    pick = np.flatnonzero(fields.number == number)  # once, not a mask scan per column
    chosen = Fields(*(a.take(pick) for a in fields))
    count = np.bincount(chosen.owner, minlength=owners)
    if (count == 1).all() or (not required and (count <= 1).all()):
        return chosen
    return None


def _gather(buf: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """The bytes of all spans joined, without a Python loop: one index per byte taken, so the
    cost follows the bytes gathered, not the buffer (a running sum over the whole buffer per
    column was half of a sparse batch's decoding)."""
    return buf[ranges(start, stop - start)]


def _varints(raw: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Decode the packed varints of consecutive spans of ``lengths`` bytes: (uint64 values, how
    many per span); None when a span ends inside a varint or one is over 10 bytes."""
    ends = np.cumsum(lengths)
    if raw.size and (raw[ends[lengths > 0] - 1] >= 0x80).any():
        return None
    last = np.flatnonzero(raw < 0x80)
    first = np.concatenate(([0], last[:-1] + 1)) if last.size else last
    widths = last - first + 1
    if widths.size and widths.max() > 10:
        return None
    shift = ((np.arange(raw.size) - np.repeat(first, widths)) * 7).astype(np.uint64)
    values = (np.bitwise_or.reduceat((raw & 0x7F).astype(np.uint64) << shift, first)
              if last.size else np.zeros(0, np.uint64))
    closed = np.concatenate(([0], np.cumsum(raw < 0x80)))
    return values, closed[ends] - closed[ends - lengths]


def _values(buf: np.ndarray, kind: int, span: Fields, owners: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The packed values of one tensor per owner (absent = none): (all values, count per owner)."""
    lengths = np.zeros(owners, np.int64)
    lengths[span.owner] = span.stop - span.start
    raw = _gather(buf, span.start, span.stop)
    width = FIXED_WIDTH.get(kind)
    if width is not None:
        if (lengths % width).any():
            return None
        return raw.view(DTYPES[kind]), lengths // width
    decoded = _varints(raw, lengths)
    if decoded is None:
        return None
    return decoded[0].view(np.int64).astype(np.int32), decoded[1]


def _tensors(buf: np.ndarray, entries: Fields, owners: int) -> tuple[int, Fields] | None:
    """Map entries → (tensor kind, the tensor's fields), one tensor of one kind per owner."""
    value = _one_per_owner(walk(buf, entries.start, entries.stop) or _NONE, 2, owners, True)
    if value is None:
        return None
    tensor = walk(buf, value.start, value.stop)
    if tensor is None or tensor.owner.size != owners or (np.bincount(tensor.owner, minlength=owners) != 1).any():
        return None
    kinds = np.unique(tensor.number)
    if kinds.size != 1 or int(kinds[0]) not in DTYPES:
        return None
    inner = walk(buf, tensor.start, tensor.stop)
    if inner is None:
        return None
    return int(kinds[0]), inner


_EMPTY = np.zeros(0, np.int64)
_NONE = Fields(_EMPTY, _EMPTY, _EMPTY, _EMPTY)


def sparse_batch(payloads: list[bytes]) -> Batch | None:
    """A batch of sparse records (SageMaker's sparse ``RecordSet`` layout) as a :class:`.CSR`
    batch (plain arrays: no scipy import; the caller converts when it wants scipy), or None
    when the records are not all of that regular layout (see the module docstring)."""
    n = len(payloads)
    lengths = np.fromiter(map(len, payloads), np.int64, n)
    buf = np.frombuffer(b"".join(payloads) + bytes(_PAD), np.uint8)
    stops = np.cumsum(lengths)
    top = walk(buf, stops - lengths, stops)
    if top is None or not np.isin(top.number, (1, 2, 3, 4, 5)).all():
        return None
    features = _one_per_owner(top, 1, n, True)
    labels = _one_per_owner(top, 2, n, False)
    if features is None or labels is None or labels.owner.size not in (0, n):
        return None  # labels on some records only: the general path names the first without
    found = _tensors(buf, features, n)
    if found is None:
        return None
    kind, parts = found
    if not np.isin(parts.number, (1, 2, 3)).all():
        return None
    spans = [_one_per_owner(parts, k, n, False) for k in (1, 2, 3)]
    if any(s is None for s in spans):
        return None
    value_span, key_span, shape_span = spans
    if shape_span.owner.size != n:  # every row sparse: a shape (keys may be absent when empty)
        return None
    decoded = _values(buf, kind, value_span, n)
    keys = _values(buf, INT32, key_span, n)
    shape = _values(buf, INT32, shape_span, n)
    if decoded is None or keys is None or shape is None:
        return None
    (values, counts), (cols, key_counts), (widths, dims) = decoded, keys, shape
    if (key_counts != counts).any() or (dims != 1).any() or (widths <= 0).any() or (cols < 0).any():
        return None  # multi-dimensional shapes and bad keys: the per-record path says what's wrong
    widths = widths.astype(np.int64)
    if (cols >= np.repeat(widths, counts)).any():
        return None
    label_values = _labels(buf, labels, n)
    if label_values is False:
        return None
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    matrix = CSR(values, cols.astype(np.int64), indptr, (n, int(widths.max())))
    return Batch(matrix, label_values)


def _labels(buf: np.ndarray, labels: Fields, n: int) -> np.ndarray | None | bool:
    """(n,) or (n, k) labels from one dense label tensor per record; None when no record has a
    label; False when they are not that regular (sparse labels, sizes that differ)."""
    if not labels.owner.size:
        return None
    found = _tensors(buf, labels, n)
    if found is None:
        return False
    kind, parts = found
    values = _one_per_owner(parts, 1, n, True)
    if values is None or parts.owner.size != n:  # keys or a shape: leave it to the general path
        return False
    decoded = _values(buf, kind, values, n)
    if decoded is None or (decoded[1] != decoded[1][0]).any() or decoded[1][0] == 0:
        return False
    flat, counts = decoded
    return flat if counts[0] == 1 else flat.reshape(n, int(counts[0]))
