"""Data formats shared by every built-in algorithm, written once.

Training reads channels with :func:`read_batches` (CSV, libsvm, recordio-protobuf, JSON Lines),
serving decodes requests with :func:`decode_request` and answers with :func:`encode_response`;
all three go through the content-type tables in :mod:`.content_types`. Model artifacts that
SageMaker's MXNet-based algorithms leave (K-Means, PCA) are written with :mod:`.ndarray`.

Modules: ``recordio`` (dmlc framing), ``protobuf_wire`` + ``recordio_protobuf`` (the
``aialgs.data.Record`` format; ``record_pb2`` are the generated protobuf classes),
``text`` (CSV, libsvm), ``json_format`` (JSON, JSON Lines), ``ndarray`` (MXNet NDArray files),
``batch`` (:class:`Batch`), ``errors`` (:class:`DataFormatError`).
"""

from .batch import Batch, concat_batches
from .content_types import (
    CSV, JSON, JSONLINES, LIBSVM, READERS, RECORDIO_PROTOBUF, WRITERS, ContentType,
    choose_accept, decode_request, encode_response, parse_accept, parse_content_type,
    read_batches,
)
from .errors import DataFormatError, UnsupportedContentTypeError
from .json_format import encode_json, encode_jsonlines, parse_json, read_jsonlines
from .recordio_protobuf import encode_records, read_records, read_recordio_protobuf, write_records
from .text import encode_csv, read_csv, read_libsvm

__all__ = [
    "Batch", "CSV", "ContentType", "DataFormatError", "JSON", "JSONLINES", "LIBSVM", "READERS",
    "RECORDIO_PROTOBUF", "UnsupportedContentTypeError", "WRITERS", "choose_accept",
    "concat_batches", "decode_request", "encode_csv", "encode_json", "encode_jsonlines",
    "encode_records", "encode_response", "parse_accept", "parse_content_type", "parse_json",
    "read_batches", "read_csv", "read_jsonlines", "read_libsvm", "read_records",
    "read_recordio_protobuf", "write_records",
]
