"""Content types: parsing ``Content-Type``/``Accept`` values, and the tables from a content type
to its reader and from an Accept type to its writer.

Every algorithm asks here instead of branching on strings: training opens a channel with
``read_batches(f, channel["ContentType"])``, serving decodes a request with
``decode_request(body, content_type)`` and answers with ``encode_response(columns, accept)``.
An algorithm that takes fewer formats passes ``supported=`` (Factorization Machines: no CSV),
and the error names what is supported, which the server turns into 415 (or 406 for Accept).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping

import numpy as np

from . import json_format, recordio_protobuf, text
from .batch import Batch, concat_batches
from .errors import DataFormatError, UnsupportedContentTypeError

CSV, LIBSVM, JSON, JSONLINES = text.CSV, text.LIBSVM, json_format.JSON, json_format.JSONLINES
RECORDIO_PROTOBUF = recordio_protobuf.CONTENT_TYPE

# Other spellings seen in the wild -> the canonical type the tables use.
ALIASES = {
    "text/x-libsvm": LIBSVM,  # the XGBoost container's inference name
    "application/x-libsvm": LIBSVM,
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-protobuf": RECORDIO_PROTOBUF,
}


@dataclass(frozen=True)
class ContentType:
    """A parsed media type: ``mime`` is canonical and lower-case; parameter names are
    lower-case, values keep their case (``text/csv; label_size=0``)."""

    mime: str
    params: Mapping[str, str] = field(default_factory=dict)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name.lower(), default)

    def int_param(self, name: str, default: int) -> int:
        raw = self.param(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise DataFormatError(f"content type parameter {name}={raw!r} must be an integer") \
                from None

    def flag(self, name: str) -> bool:
        return str(self.param(name, "")).lower() in ("true", "1", "yes")

    def __str__(self) -> str:
        return "; ".join([self.mime] + [f"{k}={v}" for k, v in self.params.items()])


def parse_content_type(value: str | None, default: str = JSON) -> ContentType:
    """``"Text/CSV; label_size=0"`` → ``ContentType("text/csv", {"label_size": "0"})``; an
    empty value gives ``default``."""
    value = (value or "").strip() or default
    mime, *rest = value.split(";")
    mime = mime.strip().lower()
    params = {}
    for item in rest:
        name, eq, raw = item.partition("=")
        if name.strip():
            params[name.strip().lower()] = raw.strip().strip('"') if eq else ""
    return ContentType(ALIASES.get(mime, mime), params)


def parse_accept(value: str | None) -> list[ContentType]:
    """The types of an Accept header in order of preference (``q`` weights, then order)."""
    items = [parse_content_type(part, "*/*") for part in (value or "*/*").split(",")
             if part.strip()]
    def weight(ct: ContentType) -> float:
        try:
            return float(ct.param("q", 1))
        except ValueError:
            return 1.0
    return sorted(items, key=weight, reverse=True) or [ContentType("*/*")]


# ---------------------------------------------------------------------------------------------
# Readers: content type -> batches

Reader = Callable[[Any, ContentType, int, dict], Iterator[Batch]]


def _csv(source: Any, ct: ContentType, batch_size: int, options: dict) -> Iterator[Batch]:
    return text.read_csv(source, batch_size,
                         label_size=ct.int_param("label_size", options.get("label_size", 1)),
                         csv_weights=options.get("csv_weights", False),
                         allow_missing=options.get("allow_missing", False),
                         dtype=options.get("dtype") or np.float32)


def _libsvm(source: Any, ct: ContentType, batch_size: int, options: dict) -> Iterator[Batch]:
    labelled = ct.int_param("label_size", options.get("label_size", 1)) > 0
    return text.read_libsvm(source, batch_size, num_features=options.get("num_features"),
                            indexing=options.get("indexing", 0), labelled=labelled,
                            dtype=options.get("dtype") or np.float32)


def _recordio(source: Any, ct: ContentType, batch_size: int, options: dict) -> Iterator[Batch]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    return recordio_protobuf.read_recordio_protobuf(
        source, batch_size, dtype=options.get("dtype"),
        force_dense=options.get("force_dense", False),
        plain_sparse=options.get("plain_sparse", False))


def _json(source: Any, ct: ContentType, batch_size: int, options: dict) -> Iterator[Batch]:
    body = source if isinstance(source, (bytes, bytearray, str)) else _read_all(source)
    yield json_format.parse_json(body, dtype=options.get("dtype") or np.float32)


def _jsonlines(source: Any, ct: ContentType, batch_size: int, options: dict) -> Iterator[Batch]:
    return json_format.read_jsonlines(source, batch_size, dtype=options.get("dtype") or np.float32)


def _read_all(source: Any) -> bytes:
    if hasattr(source, "read"):
        return source.read()
    with open(source, "rb") as f:
        return f.read()


READERS: dict[str, Reader] = {
    CSV: _csv,
    LIBSVM: _libsvm,
    RECORDIO_PROTOBUF: _recordio,
    JSON: _json,
    JSONLINES: _jsonlines,
}


def _reader_for(content_type: str | ContentType | None, supported: Iterable[str] | None,
                default: str) -> tuple[Reader, ContentType]:
    ct = content_type if isinstance(content_type, ContentType) else \
        parse_content_type(content_type, default)
    allowed = [ALIASES.get(s.lower(), s.lower()) for s in supported] if supported else list(READERS)
    if ct.mime not in allowed or ct.mime not in READERS:
        raise UnsupportedContentTypeError(str(ct), allowed)
    return READERS[ct.mime], ct


def read_batches(source: BinaryIO | str | bytes, content_type: str | ContentType | None,
                 batch_size: int = 1000, *, supported: Iterable[str] | None = None,
                 default: str = CSV, **options: Any) -> Iterator[Batch]:
    """Training data: stream ``source`` (path, file object, FIFO or bytes) as batches.

    ``options`` go to the reader that understands them: ``label_size`` (CSV default 1; the
    content type's ``label_size`` parameter wins; 0 for libsvm reads label-less lines),
    ``csv_weights``, ``allow_missing``,
    ``num_features`` and ``indexing`` (libsvm), ``force_dense`` and ``plain_sparse``
    (recordio-protobuf), ``dtype``.
    """
    reader, ct = _reader_for(content_type, supported, default)
    return reader(source, ct, batch_size, options)


def decode_request(body: bytes, content_type: str | ContentType | None, *,
                   supported: Iterable[str] | None = None, default: str = JSON,
                   **options: Any) -> Batch:
    """An inference request body as one batch. Requests carry no label: CSV has none unless the
    content type says ``label_size``, and libsvm lines may start with one that is ignored (as
    XGBoost's container does)."""
    options.setdefault("label_size", 0)
    reader, ct = _reader_for(content_type, supported, default)
    batches = list(reader(body, ct, 1 << 30, options))
    if not batches:
        raise DataFormatError("the request body holds no records")
    return concat_batches(batches)


# ---------------------------------------------------------------------------------------------
# Writers: Accept type -> response body

Writer = Callable[[Mapping[str, Any], ContentType, dict], bytes]

WRITERS: dict[str, Writer] = {
    JSON: lambda cols, ct, opts: json_format.encode_json(cols, opts.get("json_key", "predictions")),
    JSONLINES: lambda cols, ct, opts: json_format.encode_jsonlines(cols),
    CSV: lambda cols, ct, opts: text.encode_csv(cols),
    # First-party algorithms answer recordio-protobuf with float32 tensors in the label map.
    RECORDIO_PROTOBUF: lambda cols, ct, opts: recordio_protobuf.encode_records(
        labels=cols, dtype=np.float32),
}


def choose_accept(accept: str | None, supported: Iterable[str] | None = None,
                  default: str = JSON) -> ContentType:
    """The first acceptable type we can write; ``*/*``, ``type/*`` or no Accept gives
    ``default``. Raises :class:`UnsupportedContentTypeError` (HTTP 406) otherwise."""
    allowed = [ALIASES.get(s.lower(), s.lower()) for s in supported] if supported else list(WRITERS)
    for ct in parse_accept(accept):
        if ct.mime in allowed and ct.mime in WRITERS:
            return ct
        if ct.mime.endswith("/*"):  # */* or type/*: the default if it matches, else the first
            prefix = "" if ct.mime == "*/*" else ct.mime[:-1]
            for mime in [default] + allowed:
                if mime.startswith(prefix) and mime in WRITERS:
                    return parse_content_type(mime)
    raise UnsupportedContentTypeError(accept or "", allowed, what="Accept type")


def encode_response(columns: Mapping[str, Any], accept: str | None, *,
                    supported: Iterable[str] | None = None, default: str = JSON,
                    json_key: str = "predictions") -> tuple[bytes, str]:
    """(body, content type) of a response: ``columns`` maps output names to per-row values,
    e.g. ``{"closest_cluster": c, "distance_to_cluster": d}``; ``json_key`` names the JSON list
    (``predictions``; PCA ``projections``; RCF ``scores``)."""
    ct = choose_accept(accept, supported, default)
    return WRITERS[ct.mime](columns, ct, {"json_key": json_key}), ct.mime
