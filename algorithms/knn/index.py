"""The k-NN model: an optional random projection, a faiss index over the sampled training points,
and their labels; searching it and turning the k neighbours into a prediction.

Choices where SageMaker documents no detail (each is visible in the artifact):

* Dimension reduction is a (feature_dim × target) float32 matrix applied before indexing and
  searching. `sign`: entries ±1/√target (a random-sign Johnson-Lindenstrauss projection).
  `fjlt`: the subsampled randomized Hadamard transform (random signs, a normalised Hadamard
  matrix on the zero-padded power-of-two dimension, `target` random coordinates scaled by
  √(padded/target)), the standard fast JL transform.
* COSINE indexes unit-normalised vectors under inner product; faiss.IVFPQ needs a dimension that
  faiss_index_pq_m divides, so vectors get zero columns appended (as SageMaker documents).
* `faiss_index_ivf_nlists=auto` is √(points), at least 1; IVF searches probe min(nlists, 8)
  lists, and any query that finds fewer than k neighbours is searched again over every list.
  IVFPQ codes have 8 bits, fewer when there are under 39 × 256 points to train the codebooks
  (faiss asks for at least 39 training points per centroid).
* Distances are ascending: squared Euclidean for L2 (what faiss returns), −⟨x, y⟩ for
  INNER_PRODUCT and 1 − cos(x, y) for COSINE.
* Classifier: the most frequent label among the k neighbours; a tie goes to the label of the
  nearest neighbour among the tied ones. Regressor: the mean of the k labels.

Artifact `model_algo-1`: the faiss index as `faiss.write_index` writes it (so
`faiss.read_index(path)` opens it as it is; faiss stops reading at the index's end), followed by
a trailer: `labels` (float32, one per indexed point, in index order), `projection` (float32,
feature_dim × target, row-major; nothing without dimension reduction), `config` (UTF-8 JSON: k,
predictor_type, index_metric, index_type, pad, feature_dim) and a 48-byte footer, `<8s5Q`:
the magic b"SMLKNN01", then the byte length of the index, the number of labels, the
projection's two dimensions and the config's byte length. :func:`read_artifact` parses it from
bytes. (Until 2026-12-05 the artifact was an .npz holding the serialized index; np.savez copied
the index into a bytes array and checksummed it, 0.05 s of a 0.15 s Flat job on 50,000 points;
:func:`load` still reads that layout.)
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
from dataclasses import dataclass

import faiss
import numpy as np

PQ_M_VALUES = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)
MAX_PROBES = 8
MAGIC = b"SMLKNN01"
FOOTER = struct.Struct("<8s5Q")


# -- dimension reduction ---------------------------------------------------------------------


def projection(kind: str | None, dim: int, target: int | None, seed: int = 0) -> np.ndarray | None:
    if kind is None:
        return None
    rng = np.random.default_rng(seed)
    if kind == "sign":
        return (rng.choice([-1.0, 1.0], size=(dim, target)) / math.sqrt(target)).astype(np.float32)
    padded = 1 << max(0, (dim - 1).bit_length())
    signs = rng.choice([-1.0, 1.0], size=dim)
    columns = rng.choice(padded, size=target, replace=False)
    # Sylvester's Hadamard entry H[i, j] = (-1)^popcount(i & j), for the rows and columns used only
    parity = np.bitwise_count(np.arange(dim)[:, None] & columns[None, :]) & 1
    hadamard = (1.0 - 2.0 * parity) / math.sqrt(padded)
    return (signs[:, None] * hadamard * math.sqrt(padded / target)).astype(np.float32)


# -- the model ----------------------------------------------------------------------------------


@dataclass
class KnnModel:
    index: faiss.Index
    labels: np.ndarray
    projection: np.ndarray | None
    config: dict

    def prepare(self, points: np.ndarray) -> np.ndarray:
        """Points as the index holds them: projected, normalised (COSINE), padded (IVFPQ)."""
        points = np.asarray(points, np.float32)
        if self.projection is not None:
            points = points @ self.projection
        if self.config["index_metric"] == "COSINE":
            norms = np.linalg.norm(points, axis=1, keepdims=True)
            points = points / np.where(norms > 0, norms, 1)
        if self.config.get("pad"):
            points = np.hstack([points, np.zeros((len(points), self.config["pad"]), np.float32)])
        return np.ascontiguousarray(points, np.float32)

    def search(self, points: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(distances ascending, neighbour positions), each (n, k)."""
        k = k or self.config["k"]
        queries = self.prepare(points)
        scores, found = self.index.search(queries, k)
        missing = np.flatnonzero((found < 0).any(axis=1))
        if len(missing) and hasattr(self.index, "nprobe"):
            self.index.nprobe, probes = self.index.nlist, self.index.nprobe
            scores[missing], found[missing] = self.index.search(queries[missing], k)
            self.index.nprobe = probes
        return _distances(scores, self.config["index_metric"]), found

    def predict(self, points: np.ndarray) -> dict[str, np.ndarray]:
        distances, found = self.search(points)
        neighbours = self.labels[found]
        if self.config["predictor_type"] == "regressor":
            predicted = neighbours.mean(axis=1)
        else:
            predicted = majority(neighbours)
        return {"predicted_label": predicted.astype(np.float32), "distances": distances.astype(np.float32),
                "labels": neighbours.astype(np.float32)}


def _distances(scores: np.ndarray, metric: str) -> np.ndarray:
    if metric == "INNER_PRODUCT":
        return -scores
    if metric == "COSINE":
        return 1.0 - scores
    return scores


def majority(neighbours: np.ndarray) -> np.ndarray:
    """Per row, the most frequent label; ties go to the one whose first occurrence is nearest."""
    k = neighbours.shape[1]
    out = np.empty(len(neighbours), neighbours.dtype)
    step = max(1, 4_000_000 // (k * k))
    for start in range(0, len(neighbours), step):
        rows = neighbours[start:start + step]
        counts = (rows[:, :, None] == rows[:, None, :]).sum(axis=2)  # votes for each position's label
        out[start:start + step] = rows[np.arange(len(rows)), counts.argmax(axis=1)]  # first max = nearest
    return out


# -- building ----------------------------------------------------------------------------------


def build(points: np.ndarray, labels: np.ndarray, hp: dict) -> KnnModel:
    reduce = projection(hp["dimension_reduction_type"], hp["feature_dim"], hp["dimension_reduction_target"])
    config = {key: hp[key] for key in ("k", "predictor_type", "index_metric", "index_type", "feature_dim")}
    model = KnnModel(None, np.asarray(labels, np.float32), reduce, config)
    dim = reduce.shape[1] if reduce is not None else hp["feature_dim"]
    pq_m = _pq_m(hp["faiss_index_pq_m"], dim) if hp["index_type"] == "faiss.IVFPQ" else None
    config["pad"] = (-dim) % pq_m if pq_m else 0
    vectors = model.prepare(points)
    model.index = _index(hp, vectors, pq_m)
    return model


def _pq_m(given: int | None, dim: int) -> int:
    if given is not None:
        return given
    return max(m for m in PQ_M_VALUES if m <= dim and dim % m == 0 and (dim // m >= 2 or m == 1))


def _index(hp: dict, vectors: np.ndarray, pq_m: int | None) -> faiss.Index:
    dim, n = vectors.shape[1], len(vectors)
    metric = faiss.METRIC_L2 if hp["index_metric"] == "L2" else faiss.METRIC_INNER_PRODUCT
    if hp["index_type"] == "faiss.Flat":
        index = faiss.IndexFlat(dim, metric)
    else:
        nlist = hp["faiss_index_ivf_nlists"]
        nlist = max(1, int(round(math.sqrt(n)))) if nlist == "auto" else min(nlist, n)
        quantizer = faiss.IndexFlat(dim, metric)
        if hp["index_type"] == "faiss.IVFFlat":
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, metric)
        else:
            bits = min(8, max(1, int(math.log2(max(n // 39, 2)))))  # ≥ 39 points per centroid, as faiss asks
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, bits, metric)
        index.train(vectors)
        index.nprobe = min(nlist, MAX_PROBES)
    index.add(vectors)
    return index


# -- the artifact --------------------------------------------------------------------------------


def save(model: KnnModel, path) -> None:
    """faiss writes the index straight to the file (no serialized copy); the trailer follows."""
    faiss.write_index(model.index, str(path))
    index_bytes = os.path.getsize(path)
    labels = np.ascontiguousarray(model.labels, "<f4")
    reduce = np.zeros((0, 0), "<f4") if model.projection is None else np.ascontiguousarray(model.projection, "<f4")
    config = json.dumps(model.config).encode()
    with open(path, "ab") as f:
        f.write(labels.data)
        f.write(reduce.data)
        f.write(config)
        f.write(FOOTER.pack(MAGIC, index_bytes, labels.size, *reduce.shape, len(config)))


def read_artifact(data: bytes) -> KnnModel:
    """A model from the bytes of `model_algo-1` (either layout)."""
    if data[:2] == b"PK":  # the .npz of earlier versions
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            reduce = archive["projection"]
            return _model(faiss.deserialize_index(archive["index"]), archive["labels"], reduce,
                          json.loads(str(archive["config"])))
    if len(data) < FOOTER.size:
        raise ValueError("model_algo-1 is too short to be a k-NN model")
    magic, index_bytes, n, rows, cols, config_bytes = FOOTER.unpack_from(data, len(data) - FOOTER.size)
    if magic != MAGIC:
        raise ValueError("model_algo-1 is not a k-NN model (no SMLKNN01 footer)")
    buffer = np.frombuffer(data, np.uint8)
    index = faiss.deserialize_index(buffer[:index_bytes])
    at = index_bytes
    labels = buffer[at:at + 4 * n].view("<f4")
    at += 4 * n
    reduce = buffer[at:at + 4 * rows * cols].view("<f4").reshape(rows, cols)
    at += 4 * rows * cols
    return _model(index, labels.astype(np.float32), reduce.astype(np.float32),
                  json.loads(bytes(buffer[at:at + config_bytes]).decode()))


def load(path) -> KnnModel:
    with open(path, "rb") as f:
        return read_artifact(f.read())


def _model(index, labels: np.ndarray, reduce: np.ndarray, config: dict) -> KnnModel:
    if hasattr(index, "nprobe"):
        index.nprobe = min(index.nlist, MAX_PROBES)
    return KnnModel(index, labels, reduce if reduce.size else None, config)
