"""Walks botocore shapes: wire value → Python value (with validation), Python value → wire value.

Input: a decoded JSON document is checked member by member against the operation's input shape.
Type mismatches are SerializationException (the document cannot be read as the shape), constraint
violations are collected and reported together as one ValidationException in AWS's wording:
`2 validation errors detected: Value 'x' at 'a.b' failed to satisfy constraint: ...; ...`.
Timestamps become epoch-second floats, blobs bytes.

Output: a Python value is written per the output shape; None members are omitted, timestamps are
epoch seconds (json protocols), blobs base64.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import math
from typing import Any

from botocore.model import Shape

from emulator import errors
from emulator.protocol.patterns import matches

MAX_REPORTED = 10  # AWS lists at most this many violations in one message


@functools.lru_cache(maxsize=4096)
def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, bytes):
        return "java.nio.HeapByteBuffer"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_show(v)}" for k, v in value.items()) + "}"
    return str(value)


class InputReader:
    """Reads one request document against one input shape, collecting constraint violations."""

    def __init__(self):
        self.violations: list[str] = []

    def violation(self, value: Any, path: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{_show(value)}'"
        self.violations.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")

    def finish(self) -> None:
        if not self.violations:
            return
        count = len(self.violations)
        noun = "error" if count == 1 else "errors"
        shown = "; ".join(self.violations[:MAX_REPORTED])
        raise errors.validation(f"{count} validation {noun} detected: {shown}")

    # -- the walk -----------------------------------------------------------------------------

    def read(self, shape: Shape, value: Any, path: str) -> Any:
        reader = _READERS.get(shape.type_name)
        if reader is None:
            return value
        return reader(self, shape, value, path)

    def _read_structure(self, shape, value, path):
        if not isinstance(value, dict):
            raise errors.serialization(
                f"Expected a structure for '{path or shape.name}', found {type(value).__name__}."
            )
        result = {}
        members = shape.members
        for name in shape.required_members:
            if value.get(name) is None:
                self.violation(None, self._join(path, name), "Member must not be null")
        for name, raw in value.items():
            member = members.get(name)
            if member is None or raw is None:
                continue  # AWS ignores members it does not know
            result[name] = self.read(member, raw, self._join(path, name))
        return result

    def _read_list(self, shape, value, path):
        if not isinstance(value, list):
            raise errors.serialization(f"Expected a list for '{path}', found {type(value).__name__}.")
        self._check_size(shape, value, path, "Member must have length")
        member = shape.member
        return [self.read(member, item, f"{path}.{i + 1}.member") for i, item in enumerate(value)]

    def _read_map(self, shape, value, path):
        if not isinstance(value, dict):
            raise errors.serialization(f"Expected a map for '{path}', found {type(value).__name__}.")
        self._check_size(shape, value, path, "Member must have length")
        result = {}
        for key, item in value.items():
            key = self._read_string(shape.key, key, path, what="Map keys must satisfy constraint: ")
            result[key] = self.read(shape.value, item, path) if item is not None else None
        return result

    def _read_string(self, shape, value, path, what=""):
        if not isinstance(value, str):
            raise errors.serialization(
                f"Expected a string for '{path}', found {type(value).__name__}."
            )
        check = _string_violations if len(value) <= 256 else _string_violations.__wrapped__  # keep no large ones
        for constraint in check(shape, value, what):
            self.violation(value if constraint[1] else "<value too long to show>", path, constraint[0])
        return value

    def _read_integer(self, shape, value, path):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise errors.serialization(f"Expected an integer for '{path}', found {_show(value)}.")
        self._check_range(shape, value, path)
        return value

    _read_long = _read_integer

    def _read_float(self, shape, value, path):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise errors.serialization(f"Expected a number for '{path}', found {_show(value)}.")
        if isinstance(value, int) and abs(value) > 1e308 or not math.isfinite(value):
            raise errors.serialization(f"Expected a finite number for '{path}'.")
        self._check_range(shape, value, path)
        return float(value)

    _read_double = _read_float

    def _read_boolean(self, shape, value, path):
        if not isinstance(value, bool):
            raise errors.serialization(f"Expected a boolean for '{path}', found {_show(value)}.")
        return value

    def _read_timestamp(self, shape, value, path):
        if isinstance(value, bool):
            raise errors.serialization(f"Expected a timestamp for '{path}', found {_show(value)}.")
        if isinstance(value, (int, float)) and abs(value) <= 1e308 and math.isfinite(value):
            return float(value)
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                pass
            else:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=dt.timezone.utc)
                return parsed.timestamp()
        raise errors.serialization(f"Expected a timestamp for '{path}', found {_show(value)}.")

    def _read_blob(self, shape, value, path):
        if isinstance(value, bytes):
            return value
        if not isinstance(value, str):
            raise errors.serialization(f"Expected base64 data for '{path}'.")
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise errors.serialization(f"Value at '{path}' is not valid base64.") from None

    # -- constraints --------------------------------------------------------------------------

    def _check_size(self, shape, value, path, prefix):
        for constraint, shown in _size_violations(shape, len(value), prefix):
            self.violation(value if shown else "<value too long to show>", path, constraint)

    def _check_range(self, shape, value, path):
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.violation(value, path, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self.violation(value, path, f"Member must have value less than or equal to {high}")

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def _join(path: str, name: str) -> str:
        return f"{path}.{_camel(name)}" if path else _camel(name)


def _size_violations(shape: Shape, size: int, prefix: str) -> list[tuple[str, bool]]:
    """(constraint, value shown) of each length bound a string, list or map breaks; a value of 300
    or more is too long to show."""
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    found = []
    if low is not None and size < low:
        found.append((f"{prefix} greater than or equal to {low}", True))
    if high is not None and size > high:
        found.append((f"{prefix} less than or equal to {high}", size < 300))
    return found


_READERS = {name[len("_read_"):]: method for name, method in vars(InputReader).items()
            if name.startswith("_read_")}


@functools.lru_cache(maxsize=4096)
def _string_violations(shape: Shape, value: str, what: str) -> tuple[tuple[str, bool], ...]:
    """(constraint, value shown) of each constraint a string breaks. Remembered per shape and value:
    a caller sends the same names and content types on every call, and a pattern costs a regex match."""
    found = _size_violations(shape, len(value), what + "Member must have length")
    enum = shape.enum
    if enum and value not in enum:
        found.append((f"{what}Member must satisfy enum value set: [{', '.join(enum)}]", True))
    pattern = shape.metadata.get("pattern")
    if pattern and not matches(pattern, value):
        found.append((f"{what}Member must satisfy regular expression pattern: {pattern}", True))
    return tuple(found)


def read_input(shape: Shape | None, document: Any) -> dict:
    """Validate and convert a request document; raises ServiceError on the first bad type or
    on any constraint violation."""
    if shape is None:
        return {}
    reader = InputReader()
    try:
        result = reader.read(shape, document, "")
    except RecursionError:
        raise errors.serialization("The request document is nested too deeply.") from None
    reader.finish()
    return result


# -- output -------------------------------------------------------------------------------------


def write_output(shape: Shape | None, value: Any) -> Any:
    if shape is None or value is None:
        return None
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                out[name] = write_output(member, item)
        return out
    if kind == "list":
        return [write_output(shape.member, item) for item in value]
    if kind == "map":
        return {k: write_output(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        return to_epoch(value)
    if kind == "blob":
        data = value.encode() if isinstance(value, str) else value
        return base64.b64encode(data).decode("ascii")
    return value


def to_epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return round(value.timestamp(), 3)
    return round(float(value), 3)
