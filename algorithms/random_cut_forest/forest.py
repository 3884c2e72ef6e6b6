"""A random cut forest in numpy: every tree built and scored at once, level by level.

**Building** (Guha et al., "Robust Random Cut Forest Based Anomaly Detection on Streams", 2016):
a node's points are split by a random cut whose dimension is drawn with probability proportional
to the side lengths of the node's bounding box and whose value is uniform within it; points with
`x[dim] <= cut` go left. A node with one distinct point is a leaf whose mass counts duplicates.
All trees advance together one depth at a time, so a forest of 100 × 256 points is a few dozen
vectorised steps rather than 25,000 Python calls.

**Scoring** is the anomaly score of AWS's Random Cut Forest library (the "expected displacement"
score SageMaker reports): walking the query's path, a leaf at depth D contributes
`1/(D+1)` (or, when the query equals the leaf's point, `(1 - m/2M)/(D + log2(m+1))` for leaf mass
m and tree mass M); going up, each node mixes in `1/(depth+1)` with the probability that a random
cut of the node's box extended to the query separates the query:
`score ← p·1/(depth+1) + (1-p)·score`. Each tree's score is scaled by `log2(M+1)` and the forest
averages its trees, so ordinary points score about 1 and isolated ones several times more.
Vectorised: every (query, tree) pair is routed to its leaf at once (one comparison per level),
then walked back up while the query lies outside the node's box (once inside, p = 0 for every
ancestor, as the library stops there too). Scoring costs about trees × depth × feature_dim
operations per query: well under a millisecond for 100 trees of 256 points in 48 dimensions.

**Artifact** (`model_algo-1`, an uncompressed numpy `.npz`, no pickles): `points` (all trees'
sample points, each node's points contiguous), per node `start`, `mass`, `dim` (-1 for a leaf),
`cut`, `left`, `right`, `depth`, and per tree `root` and `tree_mass`, plus `format` [1]. Bounding
boxes are recomputed from `points` on load (bottom-up, a parent's box spanning its children's),
so the file is about the size of the sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from algorithms.io.sparse import ranges

FORMAT_VERSION = 1
CELLS_PER_STEP = 1 << 21  # values in one vectorised step: (query, tree) pairs × features when
#                            scoring, a block of points × features when building
PAIRS_PER_STEP = 1 << 18  # and when scoring at most this many pairs (their paths are kept)


@dataclass
class Forest:
    points: np.ndarray  # (P, d) float32, node segments contiguous
    start: np.ndarray  # (N,) integers: the node's points are points[start:start + mass]
    mass: np.ndarray  # (N,) integers
    dim: np.ndarray  # (N,) integers, -1 for a leaf
    cut: np.ndarray  # (N,) float64, NaN for a leaf
    left: np.ndarray  # (N,) integers, -1 for a leaf
    right: np.ndarray  # (N,) integers, -1 for a leaf
    depth: np.ndarray  # (N,) integers, 0 at a root
    root: np.ndarray  # (T,) integers
    tree_mass: np.ndarray  # (T,) integers
    lo: np.ndarray | None = field(default=None, repr=False)  # (N, d) bounding boxes: from the
    hi: np.ndarray | None = field(default=None, repr=False)  # builder, or recomputed on load
    width: np.ndarray = field(init=False, repr=False)  # Σ hi - Σ lo per node (see _separation)

    def __post_init__(self) -> None:
        if self.lo is None or self.hi is None:
            self.lo, self.hi = boxes(self)
        self.width = self.hi.sum(axis=1) - self.lo.sum(axis=1)

    @property
    def trees(self) -> int:
        return len(self.root)

    @property
    def feature_dim(self) -> int:
        return self.points.shape[1]

    # -- persistence --------------------------------------------------------------------------

    FIELDS = ("points", "start", "mass", "dim", "cut", "left", "right", "depth", "root", "tree_mass")

    def save(self, target: BinaryIO) -> None:
        arrays = {f: getattr(self, f) for f in self.FIELDS}
        arrays.update({f: a.astype(np.int32) for f, a in arrays.items() if a.dtype.kind == "i"})
        np.savez(target, format=np.array([FORMAT_VERSION]), **arrays)

    @classmethod
    def load(cls, source: BinaryIO) -> "Forest":
        with np.load(source, allow_pickle=False) as archive:
            version = int(archive["format"][0]) if "format" in archive.files else None
            if version != FORMAT_VERSION:
                raise ValueError(f"not a random cut forest of format {FORMAT_VERSION} (found {version})")
            return cls(**{f: archive[f] for f in cls.FIELDS})

    # -- scoring ------------------------------------------------------------------------------

    def score(self, queries: np.ndarray) -> np.ndarray:
        """The anomaly score of every row of `queries` (m × d), averaged over the trees."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        step = max(1, min(CELLS_PER_STEP // (self.trees * self.feature_dim), PAIRS_PER_STEP // self.trees))
        parts = [self._score_chunk(queries[i:i + step]) for i in range(0, len(queries), step)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _score_chunk(self, queries: np.ndarray) -> np.ndarray:
        m, trees = len(queries), self.trees
        query = np.tile(np.arange(m), trees)  # tree-major pairs: each tree's nodes stay in cache
        path, leaf = self._route(queries, query, np.repeat(self.root, m))
        depth = self.depth[leaf]
        score, inside = self._leaf_score(queries[query], leaf, depth, np.arange(m * trees) // m)
        pending = np.flatnonzero(~inside & (depth > 0))
        up = 1
        while pending.size:  # upwards from the leaf while the query lies outside the node's box
            level = depth[pending] - up
            node = path[level, pending]
            p = self._separation(np.take(queries, np.take(query, pending), axis=0), node)
            score[pending] = p / (level + 1.0) + (1.0 - p) * score[pending]
            keep = (p > 0) & (level > 0)
            pending, up = pending[keep], up + 1
        scale = np.log2(self.tree_mass + 1.0)
        return (score.reshape(trees, m) * scale[:, None]).mean(axis=0)

    def _route(self, queries: np.ndarray, query: np.ndarray, node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each (query, tree) pair's path: nodes by depth (levels × pairs) and its leaf."""
        path, moving = [], np.flatnonzero(self.dim[node] >= 0)
        while moving.size:
            path.append(node.astype(np.int32))
            n = node[moving]
            go_left = queries[query[moving], self.dim[n]] <= self.cut[n]
            node[moving] = np.where(go_left, self.left[n], self.right[n])
            moving = moving[self.dim[node[moving]] >= 0]
        return np.array(path), node

    def _leaf_score(self, q: np.ndarray, n: np.ndarray, depth: np.ndarray, tree: np.ndarray):
        """(leaf contribution, whether the query equals the leaf's point) per pair."""
        mass = self.mass[n].astype(np.float64)
        seen = np.all(q == self.lo[n], axis=1)
        damp = 1.0 - mass / (2.0 * self.tree_mass[tree])
        return np.where(seen, damp / (depth + np.log2(mass + 1.0)), 1.0 / (depth + 1.0)), seen

    def _separation(self, q: np.ndarray, n: np.ndarray) -> np.ndarray:
        """P(a random cut of the node's box grown to include q separates q from the box).

        The growth Σ max(q-hi, 0) + max(lo-q, 0) is computed as Σ max(q, hi) - Σ min(q, lo) -
        (Σ hi - Σ lo): fewer passes over the (pairs × d) arrays, and exactly 0 when q lies inside
        the box (sums of identical rows agree bit for bit)."""
        box = np.take(self.hi, n, axis=0)
        grown = np.maximum(box, q, out=box).sum(axis=1)
        np.take(self.lo, n, axis=0, out=box)
        grown -= np.minimum(box, q, out=box).sum(axis=1)
        outside = np.maximum(grown - np.take(self.width, n), 0.0)
        return np.divide(outside, grown, out=np.zeros_like(outside), where=grown > 0).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Bounding boxes


def boxes(forest: "Forest") -> tuple[np.ndarray, np.ndarray]:
    """Every node's bounding box, bottom-up: a leaf's is its point, a parent's spans its children's."""
    lo = np.empty((len(forest.start), forest.points.shape[1]), forest.points.dtype)
    hi = np.empty_like(lo)
    leaf = forest.dim < 0
    lo[leaf] = hi[leaf] = forest.points[forest.start[leaf]]
    inner = np.flatnonzero(~leaf)
    for level in range(int(forest.depth.max(initial=0)), -1, -1):
        nodes = inner[forest.depth[inner] == level]
        left, right = forest.left[nodes], forest.right[nodes]
        lo[nodes] = np.minimum(lo[left], lo[right])
        hi[nodes] = np.maximum(hi[left], hi[right])
    return lo, hi


# ---------------------------------------------------------------------------------------------
# Building


def build(samples: np.ndarray, rng: np.random.Generator) -> Forest:
    """A forest from per-tree samples (trees × count × d): all trees grown together, level by level."""
    trees, count, _ = samples.shape
    points = np.ascontiguousarray(samples.reshape(trees * count, -1), dtype=np.float32)
    order = np.arange(len(points))
    levels = []
    ids = np.arange(trees)
    start, size = ids * count, np.full(trees, count)
    depth = 0
    while ids.size:
        level, (start, size) = _split_level(points, order, start, size, ids, depth, rng)
        levels.append(level)
        ids = ids[-1] + 1 + np.arange(size.size) if size.size else size
        depth += 1
    nodes = {k: np.concatenate([lv[k] for lv in levels]) for k in levels[0]}
    return Forest(points=points[order], root=np.arange(trees), tree_mass=np.full(trees, count), **nodes)


def _split_level(points, order, start, size, ids, depth, rng):
    """Cut every node of one depth; returns its node records (boxes included, so loading's
    bottom-up pass is not repeated) and the next frontier's segments."""
    lo, hi = _segment_boxes(points, order, start, size)
    dim, cut = _random_cuts(lo, hi, rng)
    where = ranges(start, size)
    segment = np.repeat(np.arange(ids.size), size)
    # Only the cut coordinate of each point is read: a 1-d gather, not the level's rows.
    goes_right = points[order[where], np.maximum(dim, 0)[segment]] > cut[segment]
    goes_right &= dim[segment] >= 0
    order[where] = order[where][np.argsort(segment * 2 + goes_right, kind="stable")]
    n_right = np.bincount(segment, weights=goes_right, minlength=ids.size).astype(np.int64)
    split = dim >= 0
    first_child = ids[-1] + 1 + 2 * (np.cumsum(split) - 1)
    level = {"start": start, "mass": size, "dim": dim, "cut": cut, "depth": np.full(ids.size, depth),
             "left": np.where(split, first_child, -1), "right": np.where(split, first_child + 1, -1),
             "lo": lo, "hi": hi}
    s, n_left = start[split], (size - n_right)[split]
    children_start = np.stack([s, s + n_left], axis=1).ravel()
    children_size = np.stack([n_left, n_right[split]], axis=1).ravel()
    return level, (children_start, children_size)


def _segment_boxes(points, order, start, size):
    """Per segment of `order`, the min and max of its points' rows.

    np.minimum.reduceat costs microseconds per segment, and a deep level has thousands of small
    segments. Instead segments are grouped by size class (up to 1, 2, 4, … points) and each class
    is gathered into one (segments × width × d) block, shorter segments padded by repeating their
    last point (a repeat changes neither min nor max): a few numpy calls per class, at most twice
    the level's rows touched, in blocks of at most CELLS_PER_STEP values."""
    lo = np.empty((len(size), points.shape[1]), points.dtype)
    hi = np.empty_like(lo)
    width_class = np.ceil(np.log2(size)).astype(np.int64)
    # The classes present via bincount, not np.unique: its masked-array check imports numpy.ma.
    for c in np.flatnonzero(np.bincount(width_class)):
        members = np.flatnonzero(width_class == c)
        per_block = max(1, CELLS_PER_STEP // ((1 << c) * points.shape[1]))  # bounds the memory
        for chosen in np.split(members, np.arange(per_block, len(members), per_block)):
            rows = start[chosen, None] + np.minimum(np.arange(1 << c), size[chosen, None] - 1)
            lo[chosen], hi[chosen] = _halving_min_max(points[order[rows]])
    return lo, hi


def _halving_min_max(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max over axis 1 of a (segments × 2^c × d) block, by halving it c times. Each step
    is one elementwise pass over contiguous halves, whatever d; block.min(axis=1) runs an inner
    loop per d values and is 10-30× slower for the one- or two-feature series RCF often gets."""
    low = high = block
    while low.shape[1] > 1:
        half = low.shape[1] // 2
        low = np.minimum(low[:, :half], low[:, half:])
        high = np.maximum(high[:, :half], high[:, half:])
    return low[:, 0], high[:, 0]


def _random_cuts(lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(dim, cut) per box: dim ∝ side length, cut uniform on it; dim -1 for a one-point box."""
    span = hi.astype(np.float64) - lo
    running = np.cumsum(span, axis=1)
    total = running[:, -1]
    draw = np.minimum(rng.random(len(span)) * total, np.nextafter(total, 0))
    dim = np.minimum((running <= draw[:, None]).sum(axis=1), span.shape[1] - 1)
    rows = np.arange(len(span))
    cut = lo[rows, dim] + (draw - (running[rows, dim] - span[rows, dim]))
    top = np.nextafter(hi[rows, dim].astype(np.float64), -np.inf)
    cut = np.clip(cut, lo[rows, dim], top)
    leaf = total <= 0
    return np.where(leaf, -1, dim), np.where(leaf, np.nan, cut)
