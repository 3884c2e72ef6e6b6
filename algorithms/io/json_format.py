"""``application/json`` and ``application/jsonlines`` inference requests and responses.

Requests, as SageMaker's first-party algorithms accept them (Developer Guide, "Common data
formats for inference"); every form below is one *instance* (one row):

* ``[1.5, 16.0, 14.0]``                                    a dense vector
* ``{"features": [1.5, 16.0, 14.0]}``
* ``{"data": {"features": {"values": [1.5, 16.0, 14.0]}}}``
* ``{"data": {"features": {"keys": [3, 9], "values": [1, 1], "shape": [2000]}}}``  sparse
* ``{"keys": [...], "values": [...], "shape": [...]}``       the protobuf-like element alone

A JSON body is ``{"instances": [instance, ...]}``, a list of instances, or one instance; a JSON
Lines body has one instance (or one such body) per line. Responses are
``{"predictions": [{"closest_cluster": 1.0, ...}, ...]}`` (some algorithms use another top-level
key, e.g. PCA's ``projections``), or one object per line for JSON Lines.
"""

from __future__ import annotations

import json
import os
from typing import Any, BinaryIO, Iterator, Mapping

import numpy as np

from .batch import Batch
from .errors import DataFormatError
from .sparse import sp
from .text import iter_line_batches

JSON = "application/json"
JSONLINES = "application/jsonlines"


class _Row:
    """One instance: dense ``values`` or sparse ``keys``/``values``/``width``."""

    __slots__ = ("values", "keys", "width")

    def __init__(self, values: list, keys: list | None = None, width: int | None = None):
        self.values, self.keys, self.width = values, keys, width


def _numbers(value: Any, where: str) -> list:
    if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise DataFormatError(f"{where}: expected a list of numbers, got {_describe(value)}")
    return value


def _describe(value: Any) -> str:
    text = json.dumps(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def _element(value: Any, where: str) -> _Row:
    """A data element: a list of numbers or ``{"values"[, "keys", "shape"]}``."""
    if isinstance(value, list):
        return _Row(_numbers(value, where))
    if not isinstance(value, dict) or "values" not in value:
        raise DataFormatError(f"{where}: expected a list of numbers or an object with "
                              f"'values' (and 'keys' and 'shape' when sparse), got "
                              f"{_describe(value)}")
    values = _numbers(value["values"], f"{where}.values")
    keys = value.get("keys") or None
    shape = value.get("shape") or None
    if keys is None:
        return _Row(values)
    keys = _numbers(keys, f"{where}.keys")
    if shape is None:
        raise DataFormatError(f"{where}: sparse features (keys) need a 'shape', e.g. [2000]")
    shape = _numbers(shape, f"{where}.shape")
    if len(keys) != len(values):
        raise DataFormatError(f"{where}: {len(keys)} keys but {len(values)} values")
    width = int(np.prod(shape))
    if any(not isinstance(k, int) or k < 0 or k >= width for k in keys):
        raise DataFormatError(f"{where}.keys: every key must be an integer in 0..{width - 1}")
    return _Row(values, keys, width)


def _instance(value: Any, where: str) -> _Row:
    if isinstance(value, list):
        return _element(value, where)
    if not isinstance(value, dict):
        raise DataFormatError(f"{where}: expected an instance (a list of numbers or an object "
                              f"with 'features' or 'data'), got {_describe(value)}")
    if "features" in value:
        return _element(value["features"], f"{where}.features")
    if "data" in value:
        data = value["data"]
        if isinstance(data, dict) and "features" in data:
            return _element(data["features"], f"{where}.data.features")
        if isinstance(data, dict) and len(data) == 1 and "values" not in data:
            (name, element), = data.items()
            return _element(element, f"{where}.data.{name}")
        return _element(data, f"{where}.data")
    if "values" in value:
        return _element(value, where)
    raise DataFormatError(f"{where}: an instance needs 'features' or 'data' "
                          f"(found keys: {', '.join(sorted(value)) or 'none'})")


def _instances(doc: Any) -> list[Any]:
    if isinstance(doc, dict) and "instances" in doc:
        if not isinstance(doc["instances"], list):
            raise DataFormatError("'instances' must be a list")
        return doc["instances"]
    if isinstance(doc, list) and doc and all(isinstance(v, (int, float)) for v in doc):
        return [doc]  # one dense vector
    if isinstance(doc, list):
        return doc
    return [doc]


def _rows_to_batch(rows: list[_Row], where: str, dtype: Any) -> Batch:
    if not rows:
        raise DataFormatError(f"{where}: no instances")
    if all(r.keys is None for r in rows):
        width = len(rows[0].values)
        for i, r in enumerate(rows):
            if len(r.values) != width:
                raise DataFormatError(f"{where}: instance {i} has {len(r.values)} features but "
                                      f"instance 0 has {width}")
        return Batch(np.array([r.values for r in rows], dtype=dtype).reshape(len(rows), width))
    width = max(r.width if r.keys is not None else len(r.values) for r in rows)
    data, cols, indptr = [], [], [0]
    for r in rows:
        keys = r.keys if r.keys is not None else range(len(r.values))
        data += r.values
        cols += keys
        indptr.append(len(data))
    return Batch(sp().csr_matrix((np.array(data, dtype), np.array(cols, np.int64),
                                          np.array(indptr, np.int64)), shape=(len(rows), width)))


def _loads(text: bytes | str, where: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{where}: not valid JSON ({exc})") from None


def parse_json(body: bytes | str, *, dtype: Any = np.float32) -> Batch:
    """A whole ``application/json`` request body as one batch (features only)."""
    doc = _loads(body, "request body")
    rows = [_instance(v, f"instances[{i}]") for i, v in enumerate(_instances(doc))]
    return _rows_to_batch(rows, "request body", dtype)


def read_jsonlines(source: BinaryIO | str | os.PathLike | bytes, batch_size: int = 1000, *,
                   dtype: Any = np.float32) -> Iterator[Batch]:
    """Stream ``application/jsonlines``: one instance (or a whole JSON body) per line."""
    for lines, numbers in iter_line_batches(source, batch_size):
        rows = []
        for line, lineno in zip(lines, numbers):
            doc = _loads(line, f"line {lineno}")
            items = _instances(doc) if isinstance(doc, dict) and "instances" in doc else [doc]
            rows += [_instance(v, f"line {lineno}") for v in items]
        yield _rows_to_batch(rows, f"lines {numbers[0]}-{numbers[-1]}", dtype)


# ---------------------------------------------------------------------------------------------
# Responses


def jsonable(column: Any) -> list:
    """Per-row JSON values of a column: numpy arrays give numbers (float32 in its shortest
    form, 0.4 rather than 0.4000000059604645) or lists for vector columns; a Python list is
    taken as already JSON-ready (nested structures such as DeepAR's quantiles)."""
    if isinstance(column, list):
        return column
    arr = np.asarray(column)
    if arr.dtype == np.float32 or arr.dtype == np.float16:
        arr = arr.astype(str).astype(np.float64)
    return arr.tolist()


def _rows(columns: Mapping[str, Any]) -> list[dict[str, Any]]:
    names = list(columns)
    values = [jsonable(columns[n]) for n in names]
    lengths = {len(v) for v in values}
    if len(lengths) > 1:
        raise ValueError(f"columns have different numbers of rows: "
                         f"{dict(zip(names, map(len, values)))}")
    return [dict(zip(names, row)) for row in zip(*values)]


def encode_json(columns: Mapping[str, Any], key: str = "predictions") -> bytes:
    """``{"predictions": [{name: value, ...} per row]}`` (``key`` names the list)."""
    return json.dumps({key: _rows(columns)}).encode()


def encode_jsonlines(columns: Mapping[str, Any]) -> bytes:
    """One JSON object per row and line."""
    return "".join(json.dumps(row) + "\n" for row in _rows(columns)).encode()
