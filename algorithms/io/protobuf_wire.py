"""The protobuf wire format of ``aialgs.data.Record`` (``record.proto``), decoded and encoded
with numpy instead of the protobuf runtime.

Why: the protobuf runtime turns every packed float into a Python object, so 70,000 MNIST rows
take seconds to convert. Here a record costs a few varints and one ``np.frombuffer`` per tensor;
:mod:`.recordio_protobuf` adds a vectorised path for batches of same-shaped dense rows. The
generated ``record_pb2`` stays available for callers that want message objects, and the tests
hold the two to the same bytes.

Wire facts used (proto2; all fields optional or repeated):

* Record: features=1 and label=2 are ``map<string, Value>`` (entry: key=1, value=2);
  uid=3, metadata=4, configuration=5 are strings.
* Value: oneof float32_tensor=2, float64_tensor=3, int32_tensor=7, bytes=9.
* Tensor: values=1, keys=2, shape=3, written packed; a parser must also accept them unpacked.
  No ``keys`` means dense; a sparse tensor has ``keys`` (flat indices) and a ``shape``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple

import numpy as np

from .errors import DataFormatError

# Value's oneof field numbers; the tensor kinds double as keys of the tables below.
FLOAT32, FLOAT64, INT32, BYTES = 2, 3, 7, 9
DTYPES = {FLOAT32: np.dtype("<f4"), FLOAT64: np.dtype("<f8"), INT32: np.dtype(np.int32)}
FIXED_WIDTH = {FLOAT32: 4, FLOAT64: 8}  # packed values of these kinds are raw little-endian
_UNPACKED_WIRE = {FLOAT32: 5, FLOAT64: 1, INT32: 0}  # wire type of one value when not packed
_FIELD_NAMES = {3: "uid", 4: "metadata", 5: "configuration"}


class Tensor(NamedTuple):
    """A decoded Float32/Float64/Int32 tensor; ``keys`` is ``None`` when dense."""

    values: np.ndarray
    keys: np.ndarray | None = None
    shape: tuple[int, ...] | None = None

    @property
    def is_sparse(self) -> bool:
        return self.keys is not None


@dataclass
class Record:
    """A decoded ``aialgs.data.Record``. Map values are :class:`Tensor` or, for ``Bytes``
    values, a list of ``bytes``."""

    features: dict[str, Any] = field(default_factory=dict)
    label: dict[str, Any] = field(default_factory=dict)
    uid: str | None = None
    metadata: str | None = None
    configuration: str | None = None


# ---------------------------------------------------------------------------------------------
# Decoding


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result, shift = b & 0x7F, 7
    while True:
        pos += 1
        b = buf[pos]
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos + 1
        shift += 7
        if shift > 63:
            raise DataFormatError("protobuf: a varint is longer than 10 bytes")


def _skip(buf: bytes, pos: int, wire: int) -> int:
    """Position after a field value of wire type ``wire`` (unknown fields are skipped, as
    protobuf does, so newer writers stay readable)."""
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 5:
        return pos + 4
    if wire == 2:
        n, pos = _varint(buf, pos)
        return pos + n
    raise DataFormatError(f"protobuf: wire type {wire} does not occur in aialgs.data.Record")


def iter_fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """``(field number, wire type, start, stop)`` for each field of ``buf[pos:end]``:
    ``buf[start:stop]`` is the payload of a length-delimited field, else the value's bytes."""
    while pos < end:
        key = buf[pos]  # one-byte keys and lengths (< 128) are the common case: no call
        if key < 0x80:
            pos += 1
        else:
            key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            n = buf[pos]
            if n < 0x80:
                pos += 1
            else:
                n, pos = _varint(buf, pos)
            if pos + n > end:
                break
            yield number, 2, pos, pos + n
            pos += n
        else:
            stop = _skip(buf, pos, wire)
            yield number, wire, pos, stop
            pos = stop
    if pos != end:
        raise DataFormatError("protobuf: a field runs past the end of its message")


def decode_varints(buf: bytes, start: int, end: int) -> np.ndarray:
    """The varints of ``buf[start:end]`` (a packed varint field) as uint64, vectorised."""
    if end - start <= 16:
        out, pos = [], start
        while pos < end:
            v, pos = _varint(buf, pos)
            out.append(v)
        return np.array(out, dtype=np.uint64)
    raw = np.frombuffer(buf, np.uint8, end - start, start)
    last = np.flatnonzero(raw < 0x80)  # the final byte of each varint
    if last.size == 0 or last[-1] != raw.size - 1:
        raise DataFormatError("protobuf: a packed varint field ends inside a varint")
    first = np.empty_like(last)
    first[0] = 0
    first[1:] = last[:-1] + 1
    lengths = last - first + 1
    if lengths.max() > 10:
        raise DataFormatError("protobuf: a varint is longer than 10 bytes")
    shift = ((np.arange(raw.size) - np.repeat(first, lengths)) * 7).astype(np.uint64)
    return np.bitwise_or.reduceat((raw & 0x7F).astype(np.uint64) << shift, first)


class RawTensor(NamedTuple):
    """A tensor as its encoded bytes: ``values`` are the packed (or the concatenated unpacked)
    values, ``keys`` the keys' varint bytes or ``None`` (dense). Batches decode many of these in
    one numpy call; :func:`decode_tensor` decodes one."""

    kind: int
    values: bytes
    keys: bytes | None
    shape: tuple[int, ...] | None


def decode_values(kind: int, data: bytes) -> np.ndarray:
    """The values of a tensor of ``kind`` from their packed bytes."""
    width = FIXED_WIDTH.get(kind)
    if width is None:  # int32 is a varint field; negatives are sign-extended to 64 bits
        return decode_varints(data, 0, len(data)).view(np.int64).astype(np.int32)
    if len(data) % width:
        raise DataFormatError(f"protobuf: {len(data)} bytes of packed values are not a whole "
                              f"number of {width}-byte values")
    return np.frombuffer(data, DTYPES[kind])


def decode_tensor(raw: RawTensor) -> Tensor:
    keys = None if raw.keys is None else decode_varints(raw.keys, 0, len(raw.keys))
    return Tensor(decode_values(raw.kind, raw.values), keys, raw.shape)


def _raw_tensor(buf: bytes, pos: int, end: int, kind: int) -> RawTensor:
    values: list[bytes] = []
    keys: list[bytes] | None = None
    shape: list[bytes] = []
    for number, wire, start, stop in iter_fields(buf, pos, end):
        if number == 1:
            if wire != 2 and wire != _UNPACKED_WIRE[kind]:
                raise DataFormatError(f"protobuf: tensor values with wire type {wire}")
            values.append(buf[start:stop])  # packed bytes are the unpacked values, concatenated
        elif number == 2 or number == 3:
            if wire != 2 and wire != 0:
                raise DataFormatError(f"protobuf: tensor keys/shape with wire type {wire}")
            if number == 3:
                shape.append(buf[start:stop])
            else:
                keys = (keys or []) + [buf[start:stop]]
    return RawTensor(kind, values[0] if len(values) == 1 else b"".join(values),
                     None if keys is None else b"".join(keys),
                     _varint_tuple(b"".join(shape)) if shape else None)


def _varint_tuple(data: bytes) -> tuple[int, ...]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(value)
    return tuple(out)


def _raw_value(buf: bytes, pos: int, end: int) -> Any:
    value: Any = None
    for number, wire, start, stop in iter_fields(buf, pos, end):
        if wire != 2:
            continue
        if number in DTYPES:
            value = _raw_tensor(buf, start, stop, number)
        elif number == BYTES:
            value = [buf[s:e] for n, w, s, e in iter_fields(buf, start, stop) if n == 1 and w == 2]
    return value


def _raw_entry(buf: bytes, pos: int, end: int) -> tuple[str, Any]:
    name, value = "", None
    for number, wire, start, stop in iter_fields(buf, pos, end):
        if number == 1 and wire == 2:
            name = buf[start:stop].decode("utf-8")
        elif number == 2 and wire == 2:
            value = _raw_value(buf, start, stop)
    return name, value


def parse_record_raw(payload: bytes) -> Record:
    """A record whose tensors are left as :class:`RawTensor` (for batch decoding)."""
    record = Record()
    try:
        for number, wire, start, stop in iter_fields(payload, 0, len(payload)):
            if wire != 2:
                continue
            if number == 1 or number == 2:
                name, value = _raw_entry(payload, start, stop)
                (record.features if number == 1 else record.label)[name] = value
            elif number in _FIELD_NAMES:
                setattr(record, _FIELD_NAMES[number], payload[start:stop].decode("utf-8"))
    except IndexError:
        raise DataFormatError("protobuf: the record ends inside a field") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"protobuf: a string field is not UTF-8 ({exc})") from None
    return record


def parse_record(payload: bytes) -> Record:
    """Decode one serialized ``aialgs.data.Record`` (one RecordIO payload)."""
    record = parse_record_raw(payload)
    for section in (record.features, record.label):
        for name, value in section.items():
            if isinstance(value, RawTensor):
                section[name] = decode_tensor(value)
    return record


class Span(NamedTuple):
    """Where one map entry's packed values sit in a record: ``payload[start:stop]``."""

    section: str  # "features" or "label"
    name: str
    kind: int
    start: int
    stop: int


def dense_value_spans(payload: bytes) -> list[Span] | None:
    """The spans of every tensor's packed values if the record consists of dense fixed-width
    tensors with one packed values field each (the common shape of training data), else None.
    Two records of equal length whose bytes agree outside these spans parse identically."""
    spans: list[Span] = []
    for number, wire, start, stop in iter_fields(payload, 0, len(payload)):
        if number not in (1, 2) or wire != 2:
            if number in (1, 2):
                return None
            continue
        section = "features" if number == 1 else "label"
        span = _entry_span(payload, start, stop, section)
        if span is None:
            return None
        spans.append(span)
    return spans


def _entry_span(buf: bytes, pos: int, end: int, section: str) -> Span | None:
    name, found = "", None
    for number, wire, start, stop in iter_fields(buf, pos, end):
        if number == 1 and wire == 2:
            name = buf[start:stop].decode("utf-8", "replace")
        elif number == 2 and wire == 2:
            tensors = [(n, s, e) for n, w, s, e in iter_fields(buf, start, stop) if w == 2]
            if len(tensors) != 1 or tensors[0][0] not in FIXED_WIDTH:
                return None
            kind, t_start, t_stop = tensors[0]
            parts = list(iter_fields(buf, t_start, t_stop))
            if any(n == 2 or (n == 1 and w != 2) for n, w, _, _ in parts):
                return None  # sparse, or unpacked values
            packed = [(s, e) for n, w, s, e in parts if n == 1]
            if len(packed) != 1:  # none: an empty (sparse all-zero) row; several: concatenated
                return None
            s, e = packed[0]
            if (e - s) % FIXED_WIDTH[kind]:
                return None
            found = (kind, s, e)
    if found is None:
        return None
    return Span(section, name, *found)


# ---------------------------------------------------------------------------------------------
# Encoding

_SMALL_VARINTS = [bytes((i,)) for i in range(128)]


def varint_bytes(n: int) -> bytes:
    """One varint (n >= 0)."""
    if n < 128:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_varints(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Varint-encode an integer array, negatives as 10-byte two's complement like protobuf's
    int32; return the bytes and each value's encoded length."""
    v = np.ascontiguousarray(values).astype(np.int64).view(np.uint64).ravel()
    nbytes = np.ones(v.shape, np.int64)
    rest = v >> np.uint64(7)
    while rest.any():
        nbytes += rest > 0
        rest >>= np.uint64(7)
    out = np.empty(int(nbytes.sum()), np.uint8)
    starts = np.cumsum(nbytes) - nbytes
    for j in range(int(nbytes.max(initial=0))):
        live = nbytes > j
        byte = (v[live] >> np.uint64(7 * j)) & np.uint64(0x7F)
        byte |= np.where(nbytes[live] > j + 1, np.uint64(0x80), np.uint64(0))
        out[starts[live] + j] = byte.astype(np.uint8)
    return out.tobytes(), nbytes


def tensor_kind(dtype: np.dtype, what: str) -> int:
    """The Value oneof field for a numpy dtype, as the SageMaker SDK chooses it."""
    if dtype == np.float32:
        return FLOAT32
    if dtype == np.float64:
        return FLOAT64
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        return INT32
    raise TypeError(f"{what}: cannot write dtype {dtype} as a recordio-protobuf tensor "
                    f"(use float32, float64 or an integer type)")


def row_slices(blob: bytes, row_bytes: np.ndarray) -> list[bytes]:
    """Cut ``blob`` into consecutive pieces of ``row_bytes`` bytes each."""
    ends = np.cumsum(row_bytes)
    return [blob[s:e] for s, e in zip((ends - row_bytes).tolist(), ends.tolist())]


def bytes_per_row(nbytes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum per-value byte lengths into per-row totals for rows of ``counts`` values."""
    out = np.zeros(counts.shape, np.int64)
    nonempty = counts > 0
    if nbytes.size:
        out[nonempty] = np.add.reduceat(nbytes, (np.cumsum(counts) - counts)[nonempty])
    return out


def packed_values(values: np.ndarray, kind: int, counts: np.ndarray) -> list[bytes]:
    """The packed ``values`` field contents, one per row of ``counts`` values each."""
    if kind == INT32:
        info = np.iinfo(np.int32)
        if values.size and (values.min() < info.min or values.max() > info.max):
            raise ValueError("integer values do not fit in an Int32Tensor (int32 range)")
        blob, nbytes = encode_varints(values)
        return row_slices(blob, bytes_per_row(nbytes, counts))
    blob = np.ascontiguousarray(values, DTYPES[kind]).tobytes()
    return row_slices(blob, counts * FIXED_WIDTH[kind])
