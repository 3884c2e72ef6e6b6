"""MXNet's NDArray file format (``mx.nd.save`` / ``mx.nd.load``) in numpy alone.

SageMaker's first-party model artifacts are these files: K-Means' ``model_algo-1`` loads as
``[NDArray(k, feature_dim)]``, PCA's as ``{"mean", "s", "v"}``. Users open them with
``mx.nd.load``, so we must write exactly what MXNet writes, yet MXNet 1.x cannot be installed
next to a current numpy. The layout below is MXNet 1.x's ``NDArray::Save``/``Load``
(``src/ndarray/ndarray.cc``) and dmlc's serializer for vectors and strings; every integer is
little-endian:

    file    := uint64 0x112 (kMXAPINDArrayListMagic), uint64 0 (reserved),
               uint64 count, count x array,
               uint64 name_count (0 for the list form, else count), name_count x name
    name    := uint64 byte length, UTF-8 bytes
    array   := uint32 0xF993FAC9 (NDARRAY_V2_MAGIC), int32 storage type (0 = dense),
               shape, int32 dev_type (1 = cpu), int32 dev_id, int32 type flag, data (C order)
    shape   := int32 ndim, ndim x int64

Loading also accepts the older layouts MXNet still reads (V1 magic 0xF993FAC8 without the storage
type; pre-V1 where the first word is ndim and dimensions are uint32) and V3 (0xF993FACA, saved
under numpy shape semantics). Sparse storage types (row_sparse, csr) are refused with a clear
error: no built-in model uses them. ``tests/algorithms/test_ndarray_mxnet.py`` checks both
directions against the real mxnet 1.9.1.
"""

from __future__ import annotations

import io
import os
import struct
from typing import BinaryIO, Mapping, Sequence, Union

import numpy as np

from .errors import DataFormatError

LIST_MAGIC = 0x112
V1_MAGIC, V2_MAGIC, V3_MAGIC = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
CPU_DEVICE = 1
DEFAULT_STORAGE = 0

# mshadow type flags <-> numpy dtypes (mshadow/base.h: kFloat32 = 0 ... kBool = 7).
TYPE_FLAGS: dict[int, np.dtype] = {
    0: np.dtype("<f4"), 1: np.dtype("<f8"), 2: np.dtype("<f2"), 3: np.dtype("u1"),
    4: np.dtype("<i4"), 5: np.dtype("i1"), 6: np.dtype("<i8"), 7: np.dtype("?"),
}
_FLAG_OF = {dtype.newbyteorder("="): flag for flag, dtype in TYPE_FLAGS.items()}

Arrays = Union[Sequence[np.ndarray], Mapping[str, np.ndarray]]


# ---------------------------------------------------------------------------------------------
# Saving


def _array_bytes(arr: np.ndarray, where: str) -> bytes:
    arr = np.asarray(arr)
    flag = _FLAG_OF.get(arr.dtype.newbyteorder("="))
    if flag is None:
        supported = ", ".join(str(d) for d in TYPE_FLAGS.values())
        raise TypeError(f"{where}: MXNet cannot store dtype {arr.dtype} (supported: {supported})")
    if arr.ndim == 0:
        raise ValueError(f"{where}: MXNet 1.x NDArray files cannot hold 0-d arrays (they load "
                         f"as empty); reshape to (1,)")
    data = np.ascontiguousarray(arr, dtype=TYPE_FLAGS[flag]).tobytes()
    return b"".join((
        struct.pack("<Ii", V2_MAGIC, DEFAULT_STORAGE),
        struct.pack(f"<i{arr.ndim}q", arr.ndim, *arr.shape),
        struct.pack("<iii", CPU_DEVICE, 0, flag),
        data,
    ))


def dumps(arrays: Arrays) -> bytes:
    """The bytes of an NDArray file holding ``arrays`` (a list, or a dict for named arrays)."""
    if isinstance(arrays, Mapping):
        names = [str(k) for k in arrays]
        values = list(arrays.values())
    elif isinstance(arrays, np.ndarray):
        raise TypeError("pass a list or dict of arrays (mx.nd.save takes a list or dict), "
                        "e.g. [centroids]")
    else:
        names, values = [], list(arrays)
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(values))]
    parts += [_array_bytes(v, f"array {n!r}" if names else f"array {i}")
              for i, (n, v) in enumerate(zip(names or [None] * len(values), values))]
    parts.append(struct.pack("<Q", len(names)))
    for name in names:
        encoded = name.encode("utf-8")
        parts += (struct.pack("<Q", len(encoded)), encoded)
    return b"".join(parts)


def save(target: str | os.PathLike | BinaryIO, arrays: Arrays) -> None:
    """Write ``arrays`` like ``mx.nd.save(target, arrays)`` (list or dict of numpy arrays)."""
    data = dumps(arrays)
    if isinstance(target, (str, os.PathLike)):
        with open(target, "wb") as f:
            f.write(data)
    else:
        target.write(data)


# ---------------------------------------------------------------------------------------------
# Loading


class _Reader:
    def __init__(self, f: BinaryIO):
        self._f = f
        self.offset = 0

    def read(self, n: int, what: str) -> bytes:
        data = self._f.read(n) if n else b""
        while len(data) < n:  # short reads from pipes
            more = self._f.read(n - len(data))
            if not more:
                raise DataFormatError(f"NDArray file: truncated while reading {what} at byte "
                                      f"{self.offset} (wanted {n} bytes, got {len(data)})")
            data += more
        self.offset += n
        return data

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt), what))


def _shape(r: _Reader, ndim: int, dim_format: str, where: str) -> tuple[int, ...]:
    if ndim < 0:
        return ()  # V3 unknown shape: no data follows
    if ndim > 32:
        raise DataFormatError(f"{where}: implausible ndim {ndim}; not an MXNet NDArray file?")
    return tuple(r.unpack(f"<{ndim}{dim_format}", f"{where} shape")) if ndim else ()


def _load_array(r: _Reader, where: str) -> np.ndarray:
    (magic,) = r.unpack("<I", f"{where} magic")
    if magic in (V2_MAGIC, V3_MAGIC):
        (stype,) = r.unpack("<i", f"{where} storage type")
        if stype != DEFAULT_STORAGE:
            raise DataFormatError(f"{where}: sparse storage type {stype} is not supported "
                                  f"(only dense NDArrays)")
    if magic in (V1_MAGIC, V2_MAGIC, V3_MAGIC):
        (ndim,) = r.unpack("<i", f"{where} ndim")
        shape = _shape(r, ndim, "q", where)
        empty = ndim < 0 if magic == V3_MAGIC else ndim == 0
    else:  # before V1 the first word is ndim itself and dimensions are uint32
        shape = _shape(r, magic, "I", where)
        empty = magic == 0
    if empty:
        raise DataFormatError(f"{where}: an empty (uninitialised) NDArray has no data to load")
    r.unpack("<ii", f"{where} context")
    (flag,) = r.unpack("<i", f"{where} type flag")
    dtype = TYPE_FLAGS.get(flag)
    if dtype is None:
        raise DataFormatError(f"{where}: unsupported MXNet type flag {flag}")
    count = int(np.prod(shape, dtype=np.int64))
    data = r.read(count * dtype.itemsize, f"{where} data")
    return np.frombuffer(data, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def load_file(f: BinaryIO) -> list[np.ndarray] | dict[str, np.ndarray]:
    """Read an NDArray file from a binary file object (``read()`` only)."""
    r = _Reader(f)
    header, _reserved = r.unpack("<QQ", "header")
    if header != LIST_MAGIC:
        raise DataFormatError(f"not an MXNet NDArray file: header 0x{header:X}, expected "
                              f"0x{LIST_MAGIC:X}")
    (count,) = r.unpack("<Q", "array count")
    arrays = [_load_array(r, f"array {i}") for i in range(count)]
    (name_count,) = r.unpack("<Q", "name count")
    if name_count == 0:
        return arrays
    if name_count != count:
        raise DataFormatError(f"NDArray file: {name_count} names for {count} arrays")
    names = []
    for i in range(name_count):
        (length,) = r.unpack("<Q", f"name {i} length")
        names.append(r.read(length, f"name {i}").decode("utf-8"))
    return dict(zip(names, arrays))


def loads(data: bytes) -> list[np.ndarray] | dict[str, np.ndarray]:
    """:func:`load` from bytes."""
    return load_file(io.BytesIO(data))


def load(source: str | os.PathLike | BinaryIO | bytes) -> list[np.ndarray] | dict[str, np.ndarray]:
    """Read what ``mx.nd.save`` wrote: a list of arrays, or a dict when the arrays are named
    (as ``mx.nd.load`` returns them)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return loads(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return load_file(f)
    return load_file(source)
