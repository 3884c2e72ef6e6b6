"""Training data for XGBoost: the channel content types the container accepts, read into the
arrays a `DMatrix` is built from.

The container's rules: no ContentType means libsvm; `csv`/`text/csv` put the label in the first
column and only `label_size=1` is allowed (with `csv_weights=1` the second column is the instance
weight; an empty field is a missing value); `libsvm`/`text/libsvm`/`text/x-libsvm` lines are
`label[:weight] index:value …` with indices as given (an absent index is a missing value);
`application/x-recordio-protobuf` records carry the features in `values` and the label in the
label map; `application/x-parquet` has the label in the first column (needs pyarrow).
Reading goes through the shared streaming readers (algorithms.io), so File and Pipe mode both work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.common.errors import ClientError
from algorithms.io import CSV, LIBSVM, RECORDIO_PROTOBUF, Batch, concat_batches, parse_content_type
from algorithms.io.sparse import CSR, issparse, sp  # scipy.sparse imported only for sparse data
from algorithms.xgboost import libsvm

PARQUET = "application/x-parquet"
_ALIASES = {"csv": CSV, "text/csv": CSV, "libsvm": LIBSVM, "text/libsvm": LIBSVM, "text/x-libsvm": LIBSVM,
            "application/x-libsvm": LIBSVM, RECORDIO_PROTOBUF: RECORDIO_PROTOBUF,
            "application/x-recordio-protobuf; charset=utf-8": RECORDIO_PROTOBUF,
            "parquet": PARQUET, PARQUET: PARQUET}
SUPPORTED = "text/csv, text/libsvm, application/x-recordio-protobuf, application/x-parquet"
READ_BATCH = 50_000  # rows per parsed batch: few Python round trips, bounded memory per batch


def content_type(raw: str | None) -> str:
    """The canonical training content type, or a ClientError naming what is supported."""
    if not raw:
        return LIBSVM
    parsed = parse_content_type(raw, LIBSVM)
    mime = _ALIASES.get(parsed.mime) or _ALIASES.get(raw.strip().lower())
    if mime is None:
        raise ClientError(f"Content-type {raw} not supported. Supported content-type is {SUPPORTED}.")
    label_size = parsed.param("label_size")
    if mime == CSV and label_size not in (None, "1"):
        raise ClientError(f"Content-type {raw} not supported: XGBoost takes CSV with label_size=1 only "
                          "(the label in the first column).")
    return mime


@dataclass
class Dataset:
    """One channel's rows: features (ndarray with NaN as missing, or csr_matrix), labels, weights."""

    features: object
    labels: np.ndarray
    weights: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return self.features.shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        """The dataset as plain arrays, to send to the leader (algorithms.common.distributed)."""
        out = {"labels": self.labels}
        if self.weights is not None:
            out["weights"] = self.weights
        if issparse(self.features):
            csr = self.features
            out.update(data=csr.data, indices=csr.indices, indptr=csr.indptr, shape=np.array(csr.shape))
        else:
            out["dense"] = self.features
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Dataset":
        if "dense" in arrays:
            features = arrays["dense"]
        else:
            features = sp().csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                       shape=tuple(arrays["shape"]))
        return cls(features, arrays["labels"], arrays.get("weights"))


def read_channel(channel, mime: str, csv_weights: bool) -> Dataset | None:
    """Every row of a channel (one pass; one FIFO in Pipe mode), or None if it holds none."""
    if mime == PARQUET:
        return _read_parquet(channel)
    channel.content_type = mime
    if mime == LIBSVM and channel.mode != "Pipe":
        batches = libsvm.read_files(channel.files())
        if batches is not None:
            batches = [b for b in batches if len(b)]
            return _dataset(concat_batches(batches), channel.name) if batches else None
    if mime != CSV:
        return _collect(channel)
    if channel.mode != "Pipe":  # most CSV has no empty field: parse without looking for them first
        try:
            return _collect(channel, csv_weights=csv_weights)
        except ClientError:
            pass  # an empty field, or really bad data: read again, allowing missing values
    return _collect(channel, csv_weights=csv_weights, allow_missing=True)


def _collect(channel, **options) -> Dataset | None:
    batches = [b for b in channel.batches(READ_BATCH, **options) if len(b)]
    return _dataset(concat_batches(batches), channel.name) if batches else None


def _dataset(batch: Batch, name: str) -> Dataset:
    if batch.labels is None:
        raise ClientError(f"The {name} channel's records have no labels; XGBoost needs one label per record")
    labels = np.asarray(batch.labels, np.float32)
    if labels.ndim != 1:
        raise ClientError(f"The {name} channel's records have {labels.shape[1]} labels each; XGBoost takes one")
    features = batch.features
    if issparse(features):
        features = sp().csr_matrix(features.tocsr() if isinstance(features, CSR) else features, dtype=np.float32)
    else:
        features = np.asarray(features, np.float32)
    weights = None if batch.weights is None else np.asarray(batch.weights, np.float32)
    return Dataset(features, labels, weights)


def _read_parquet(channel) -> Dataset | None:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ClientError("Content-type application/x-parquet needs pyarrow, which this installation lacks; "
                          "use text/csv, text/libsvm or application/x-recordio-protobuf") from None
    if channel.mode == "Pipe":
        raise ClientError("Content-type application/x-parquet is supported in File mode only")
    tables = [pq.read_table(path).to_pandas().to_numpy(np.float32) for path in channel.files()]
    tables = [t for t in tables if len(t)]
    if not tables:
        return None
    table = np.concatenate(tables)
    return Dataset(np.ascontiguousarray(table[:, 1:]), table[:, 0].copy())


def combine(parts: list[Dataset | None]) -> Dataset | None:
    """Shares from every host as one dataset (the leader trains on all of them)."""
    parts = [p for p in parts if p is not None and p.rows]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    batches = [Batch(p.features, p.labels, p.weights if p.weights is not None else
                     (np.ones(p.rows, np.float32) if any(q.weights is not None for q in parts) else None))
               for p in parts]
    try:
        return _dataset(concat_batches(batches), "train")
    except ValueError as exc:
        raise ClientError(f"The hosts' shares of the data do not fit together: {exc}") from None


def same_width(*datasets: Dataset | None) -> int:
    """Pad sparse datasets to one column count (libsvm files only know their largest index)."""
    present = [d for d in datasets if d is not None]
    width = max(d.features.shape[1] for d in present)
    for d in present:
        if issparse(d.features) and d.features.shape[1] < width:
            csr = d.features
            d.features = sp().csr_matrix((csr.data, csr.indices, csr.indptr), shape=(csr.shape[0], width))
    return width
