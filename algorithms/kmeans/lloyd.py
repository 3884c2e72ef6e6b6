"""The K-Means numerics in numpy, float32 throughout, distances as one BLAS product per block.

SageMaker's `kmeans` streams mini-batches through `k × extra_center_factor` centres (one pass per
epoch) and then reduces them to `k` with a local Lloyd run on the weighted centres
(local_lloyd_init_method, _max_iter, _tol, _num_trials). We do the same, and then, because the
data is in memory anyway, polish the `k` centres with full Lloyd iterations over all records
(same max_iter and tol): started that close to a solution they converge in a few passes, so the
model is as good as scikit-learn's KMeans on the same data while costing a fraction of a Lloyd run
from a random start. scikit-learn is not imported at all: its import alone costs a second or more
of every training job's start-up.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse

BLOCK = 16_384  # rows per distance block: bounds the (rows, centres) temporaries


def row_norms(points: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", points, points)


def closest(points: np.ndarray, centroids: np.ndarray, norms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(index of the closest centroid, squared distance to it) per row, in blocks of BLOCK rows."""
    norms = row_norms(points) if norms is None else norms
    centroid_norms = row_norms(centroids)
    index = np.empty(len(points), np.int64)
    squared = np.empty(len(points), np.float32)
    for start in range(0, len(points), BLOCK):
        stop = start + BLOCK
        d = points[start:stop] @ centroids.T  # the only O(n·k·d) step: sgemm
        d *= -2
        d += centroid_norms
        index[start:stop] = d.argmin(axis=1)
        best = np.take_along_axis(d, index[start:stop, None], axis=1)[:, 0] + norms[start:stop]
        squared[start:stop] = np.maximum(best, 0)  # float32 cancellation can dip below zero
    return index, squared


def cluster_sums(points: np.ndarray, labels: np.ndarray, k: int, weights: np.ndarray | None = None):
    """(per-cluster weighted sum of rows, per-cluster weight): one sparse × dense product."""
    n = len(points)
    w = np.ones(n, np.float32) if weights is None else weights.astype(np.float32, copy=False)
    assignment = scipy.sparse.csr_matrix((w, (labels, np.arange(n))), shape=(k, n))
    return np.asarray(assignment @ points, dtype=np.float32), np.bincount(labels, w, minlength=k).astype(np.float32)


def random_init(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return points[np.sort(rng.choice(len(points), size=k, replace=False))].astype(np.float32)


def kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """Arthur & Vassilvitskii's seeding with scikit-learn's greedy 2 + log(k) candidates per step."""
    n, trials = len(points), 2 + int(math.log(k))
    w = np.ones(n) if weights is None else weights.astype(np.float64)
    norms = row_norms(points)
    centres = [points[rng.choice(n, p=w / w.sum())]]
    nearest = closest(points, centres[0][None, :], norms)[1].astype(np.float64)
    for _ in range(1, k):
        potential = nearest * w
        if potential.sum() <= 0:  # fewer distinct points than k: any point will do
            candidates = rng.choice(n, size=trials)
        else:
            candidates = np.searchsorted(np.cumsum(potential), rng.random(trials) * potential.sum())
            candidates = np.minimum(candidates, n - 1)
        distances = _squared_to(points, norms, points[candidates])  # (trials, n)
        distances = np.minimum(distances, nearest[None, :])
        best = int(np.argmin(distances @ w))
        centres.append(points[candidates[best]])
        nearest = distances[best]
    return np.array(centres, dtype=np.float32)


def _squared_to(points: np.ndarray, norms: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (points @ centres.T).T  # (n, d) @ (d, c): BLAS's fast orientation for a few centres
    d *= -2
    d += norms[None, :]
    d += row_norms(centres)[:, None]
    return np.maximum(d, 0).astype(np.float64)


def initial(points: np.ndarray, k: int, method: str, rng: np.random.Generator,
            weights: np.ndarray | None = None) -> np.ndarray:
    if method == "kmeans++":
        return kmeans_plus_plus(points, k, rng, weights)
    if weights is None:
        return random_init(points, k, rng)
    chosen = rng.choice(len(points), size=k, replace=False, p=weights / weights.sum())
    return points[np.sort(chosen)].astype(np.float32)


def lloyd(points: np.ndarray, centroids: np.ndarray, max_iter: int, tol: float,
          weights: np.ndarray | None = None) -> tuple[np.ndarray, float, int]:
    """Lloyd's iterations from `centroids` until the squared centre shift is at most `tol` times
    the mean feature variance (scikit-learn's rule). Returns (centroids, inertia, iterations).
    A cluster left empty takes the point farthest from its centre, as scikit-learn does."""
    norms = row_norms(points)
    threshold = tol * _mean_variance(points, norms, weights)
    centroids = centroids.astype(np.float32, copy=True)
    iterations = 0
    for iterations in range(1, max_iter + 1):
        labels, squared = closest(points, centroids, norms)
        sums, counts = cluster_sums(points, labels, len(centroids), weights)
        updated = centroids.copy()
        filled = counts > 0
        updated[filled] = sums[filled] / counts[filled, None]
        for cluster, far in zip(np.flatnonzero(~filled), np.argsort(-squared)):
            updated[cluster] = points[far]
        shift = float(((updated - centroids) ** 2).sum())
        centroids = updated
        if shift <= threshold:
            break
    labels, squared = closest(points, centroids, norms)
    inertia = float(squared.sum(dtype=np.float64) if weights is None else (squared * weights).sum(dtype=np.float64))
    return centroids, inertia, iterations


def _mean_variance(points: np.ndarray, norms: np.ndarray, weights: np.ndarray | None) -> float:
    """The mean over features of each feature's variance, from the row norms already at hand
    (sum over features of E[x_j²] is E[|x|²]), so no (n, d) temporary is made."""
    w = np.full(len(points), 1.0 / len(points)) if weights is None else weights / weights.sum()
    mean = w.astype(np.float32) @ points
    return float((w @ norms - float(mean.astype(np.float64) @ mean)) / points.shape[1])


def mini_batch_pass(batches, centres: np.ndarray, counts: np.ndarray, half_life: int) -> None:
    """One epoch of mini-batch k-means, in place: each centre moves to the running (optionally
    exponentially decayed) mean of the points assigned to it."""
    for batch in batches:
        if half_life > 0:
            counts *= np.float32(0.5 ** (len(batch) / half_life))
        labels, _ = closest(batch, centres)
        sums, added = cluster_sums(batch, labels, len(centres))
        hit = added > 0
        counts[hit] += added[hit]
        centres[hit] += (sums[hit] - added[hit, None] * centres[hit]) / counts[hit, None]


def reduce_centres(centres: np.ndarray, weights: np.ndarray, k: int, method: str, max_iter: int, tol: float,
                   trials: int, rng: np.random.Generator) -> np.ndarray:
    """The local Lloyd step: the best of `trials` weighted runs from `method` seeds, k centres."""
    used = weights > 0
    centres, weights = centres[used], weights[used]
    if len(centres) <= k:
        return np.concatenate([centres, centres[rng.choice(len(centres), k - len(centres))]]) if len(centres) < k else centres
    runs = [lloyd(centres, initial(centres, k, method, rng, weights), max_iter, tol, weights) for _ in range(trials)]
    return min(runs, key=lambda run: run[1])[0]
