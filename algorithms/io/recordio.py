"""dmlc RecordIO framing: the container of SageMaker's ``application/x-recordio-protobuf``.

Why by hand: the format is 30 lines of dmlc-core (``include/dmlc/recordio.h``,
``src/recordio.cc``) and the libraries that ship it (mxnet) cannot be installed next to a
current numpy. Layout of one record, all little-endian:

* ``uint32 magic = 0xCED7230A``
* ``uint32 lrecord``: low 29 bits = payload length, top 3 bits = ``cflag``
* payload, then zero padding to a multiple of 4 bytes (not counted in the length)

A payload that contains the magic at a 4-byte-aligned offset is split there by dmlc's writer:
the magic is dropped and the pieces are written as parts with cflag 1 (start), 2 (middle),
3 (end); the reader joins them with the magic put back. The SageMaker Python SDK never splits
(and its reader cannot read split records), dmlc/MXNet always does; we read both and write like
dmlc, so anything MXNet-based reads what we write.

The reader streams: it reads the file object in chunks with ``read()`` only (no ``seek``,
``tell`` or ``len``), so it works on a Pipe-mode FIFO, a socket file or a gzip stream.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

import numpy as np

from .errors import DataFormatError

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
MAX_LENGTH = (1 << 29) - 1
CFLAG_WHOLE, CFLAG_START, CFLAG_MIDDLE, CFLAG_END = 0, 1, 2, 3
DEFAULT_CHUNK = 1 << 20

_HEADER = struct.Struct("<II")
_PADDING = (b"", b"\0\0\0", b"\0\0", b"\0")  # indexed by length % 4


def padded(length: int) -> int:
    """The payload length rounded up to the 4-byte boundary dmlc aligns records to."""
    return (length + 3) & ~3


class _ChunkReader:
    """Hands out exact byte ranges from a stream read in large chunks (works without seek)."""

    def __init__(self, fileobj: BinaryIO, chunk_size: int):
        self._f = fileobj
        self._chunk = chunk_size
        self._buf = b""
        self._pos = 0
        self.offset = 0  # stream offset of self._buf[self._pos], for error messages

    def ensure(self, n: int) -> int:
        """Make ``n`` bytes available from the current position; return how many are."""
        have = len(self._buf) - self._pos
        if have >= n:
            return have
        parts = [self._buf[self._pos:]]
        while have < n:
            data = self._f.read(max(self._chunk, n - have))
            if not data:
                break
            parts.append(data)
            have += len(data)
        self._buf = b"".join(parts)
        self._pos = 0
        return have

    def take(self, n: int) -> tuple[bytes, int]:
        """(buffer, start) such that ``buffer[start:start + n]`` are the next n bytes."""
        start = self._pos
        self._pos += n
        self.offset += n
        return self._buf, start

    def whole_records(self) -> list[bytes]:
        """The payloads of the whole records (cflag 0, right magic) that lie complete, padding
        included, at the front of the buffer, consumed. Runs of records are framed a buffer at a
        time by :func:`_linked_run`; this loop takes the records that stop a run one header
        unpack each, and stops at anything else (a split part, a bad magic, the buffer's end),
        which :func:`_next_part` then reads or reports."""
        buf, pos, end, out = self._buf, self._pos, len(self._buf), []
        unpack = _HEADER.unpack_from
        backoff = wait = 0  # records to frame one by one before the next block try
        while pos + 8 <= end:
            if wait <= 0 and end - pos >= _BLOCK_BYTES:
                starts, lengths = _linked_run(buf, pos, end)
                # records that keep stopping runs (payloads holding the magic) are framed one by
                # one for ever longer stretches, so that failed tries stay a small cost
                backoff = 1 if len(starts) >= _RUN_MIN else 2 * max(backoff, 1)
                wait = backoff
                if starts:
                    out += [buf[at:at + n] for at, n in zip(starts, lengths)]
                    pos = starts[-1] + padded(lengths[-1])
                    continue
            magic, lrecord = unpack(buf, pos)
            if magic != MAGIC or lrecord > MAX_LENGTH:  # cflag bits set: lrecord > MAX_LENGTH
                break
            following = pos + 8 + ((lrecord + 3) & ~3)
            if following > end:
                break
            out.append(buf[pos + 8:pos + 8 + lrecord])
            pos = following
            wait -= 1
        self.offset += pos - self._pos
        self._pos = pos
        return out


_RUN_MIN = 64  # a block try that frames fewer records than this counts as failed
_BLOCK_BYTES = 1024  # below this, numpy's set-up costs more than the records' own loop


def _linked_run(buf: bytes, pos: int, end: int) -> tuple[list[int], list[int]]:
    """(payload starts, payload lengths) of the whole records from ``pos`` that lie complete in
    the buffer, found with numpy instead of a header unpack per record: records are 4-byte
    aligned, so every header is an aligned magic word. Not every aligned magic is a header (a
    payload may hold one: the SDK's writer does not split records), so the run is the records
    whose end is exactly the next aligned magic; it stops after the first whose end is not
    (keeping it when it is whole and complete), and before a split part or an incomplete one.
    Variable-length records (sparse rows, whose varints differ in length) frame this way as
    quickly as equal-length ones."""
    words = np.frombuffer(buf, "<u4", (end - pos) // 4, pos)
    at = np.flatnonzero(words[:-1] == MAGIC)  # a header needs its length word after it
    if not at.size or at[0] != 0:
        return [], []
    lrecord = words[at + 1].astype(np.int64)
    after = at + 2 + ((lrecord + 3) >> 2)  # the word after the padded payload
    whole = (lrecord <= MAX_LENGTH) & (after <= words.size)  # cflag 0, complete in the buffer
    linked = after[:-1] == at[1:]
    count = min(_first_false(whole, at.size), _first_false(linked, at.size - 1) + 1)
    starts = pos + 4 * at[:count] + 8
    return starts.tolist(), lrecord[:count].tolist()


def _first_false(flags: np.ndarray, default: int) -> int:
    """The index of the first False in ``flags``, or ``default`` when all are True."""
    missing = np.flatnonzero(~flags)
    return int(missing[0]) if missing.size else default


def _next_part(src: _ChunkReader) -> tuple[int, int, bytes] | None:
    """(byte offset, cflag, payload) of the next framed part, or None at the end of the data."""
    offset = src.offset
    have = src.ensure(8)
    if have == 0:
        return None
    if have < 8:
        raise DataFormatError(f"RecordIO: truncated header at byte {offset}: {have} of 8 "
                              f"bytes; the data ends inside a record")
    buf, at = src.take(8)
    magic, lrecord = _HEADER.unpack_from(buf, at)
    if magic != MAGIC:
        raise DataFormatError(
            f"RecordIO: bad magic 0x{magic:08X} at byte {offset}; expected 0x{MAGIC:08X}. "
            f"Is this really application/x-recordio-protobuf data?")
    cflag, length = lrecord >> 29, lrecord & MAX_LENGTH
    size = padded(length)
    if src.ensure(size) < size:
        raise DataFormatError(f"RecordIO: the record at byte {offset} declares {length} "
                              f"bytes but the data ends first")
    buf, at = src.take(size)
    return offset, cflag, buf[at:at + length]


def iter_records(fileobj: BinaryIO, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
    """Yield every record's payload (split records joined back), streaming from ``fileobj``.

    Raises :class:`DataFormatError` naming the byte offset on a bad magic, a truncated record or
    an out-of-order cflag.
    """
    src = _ChunkReader(fileobj, chunk_size)
    pieces: list[bytes] | None = None  # the parts of a split record collected so far
    while True:
        if pieces is None:
            whole = src.whole_records()
            if whole:
                yield from whole
                continue
        part = _next_part(src)
        if part is None:
            break
        offset, cflag, payload = part
        if pieces is None and cflag == CFLAG_WHOLE:
            yield payload
        elif pieces is None and cflag == CFLAG_START:
            pieces = [payload]
        elif pieces is not None and cflag in (CFLAG_MIDDLE, CFLAG_END):
            pieces.append(payload)
            if cflag == CFLAG_END:
                yield MAGIC_BYTES.join(pieces)
                pieces = None
        else:
            expected = ("0 (whole) or 1 (start)" if pieces is None
                        else "2 (middle) or 3 (end) to continue a split record")
            raise DataFormatError(f"RecordIO: the part at byte {offset} has cflag {cflag}; "
                                  f"expected {expected}")
    if pieces is not None:
        raise DataFormatError("RecordIO: the data ends inside a split record (no part with "
                              "cflag 3)")


def frame(payload: bytes, split: bool = True) -> bytes:
    """One record, framed. With ``split`` (dmlc's behaviour) a payload containing the magic at
    a 4-byte-aligned offset is written as start/middle/end parts without the magic."""
    length = len(payload)
    if length > MAX_LENGTH:
        raise ValueError(f"RecordIO records are limited to {MAX_LENGTH} bytes, got {length}")
    cuts = _aligned_magic_offsets(payload) if split else []
    if not cuts:
        return b"".join((_HEADER.pack(MAGIC, length), payload, _PADDING[length & 3]))
    out, begin = [], 0
    for i, cut in enumerate(cuts):
        flag = CFLAG_START if i == 0 else CFLAG_MIDDLE
        out += (_HEADER.pack(MAGIC, (flag << 29) | (cut - begin)), payload[begin:cut])
        begin = cut + 4
    rest = length - begin
    out += (_HEADER.pack(MAGIC, (CFLAG_END << 29) | rest), payload[begin:], _PADDING[rest & 3])
    return b"".join(out)


def _aligned_magic_offsets(payload: bytes) -> list[int]:
    cuts, at = [], payload.find(MAGIC_BYTES)
    while at != -1:
        if at % 4 == 0:
            cuts.append(at)
            at = payload.find(MAGIC_BYTES, at + 4)
        else:
            at = payload.find(MAGIC_BYTES, at + 1)
    return cuts
