"""Reservoir sampling for the forest: one uniform sample of `num_samples_per_tree` rows per tree,
from a stream whose length is unknown (a File channel or a Pipe-mode FIFO), mergeable across hosts.

Each (tree, row) pair draws a uniform key and every tree keeps the rows with its smallest keys
("bottom-k" sampling): that is a uniform sample without replacement of everything seen, and
because keys are comparable, the leader merges hosts' reservoirs exactly by keeping, per tree, the
smallest keys of their union. So a ShardedByS3Key job samples from all shards, as one host would
from all the data. Trees sample independently; with far more rows than `num_trees ×
num_samples_per_tree` this matches SageMaker's partitioned sample, and with fewer every tree still
gets a full reservoir. Once the reservoirs are full only the keys small enough to enter are
drawn (`Reservoir._few_candidates`), in the same distribution, so the work per row shrinks as the
stream goes on.
"""

from __future__ import annotations

import numpy as np

# When every tree's threshold (its chance of taking a row) is below this, only the candidates are
# drawn: they are few, and picking distinct rows by drawing with replacement rarely repeats.
SPARSE_BELOW = 0.125


class Reservoir:
    def __init__(self, trees: int, size: int, feature_dim: int, seed: int):
        self.rng = np.random.default_rng(seed)
        self.keys = np.full((trees, size), np.inf)
        self.points = np.zeros((trees, size, feature_dim), np.float32)
        self.seen = 0

    def add(self, rows: np.ndarray) -> None:
        """Offer a batch of rows (b × d float32) to every tree's reservoir."""
        # Slots taken in this batch remember the row's index and are copied once at the end: a
        # row can enter and be pushed out again within the batch.
        taken = np.full(self.keys.shape, -1)
        offset = 0
        while offset < len(rows):
            threshold = self.keys.max(axis=1)  # a row enters a tree only with a key below its largest
            if np.isfinite(threshold).all() and threshold.max() < SPARSE_BELOW:
                count = len(rows) - offset
                tree, column, keys = self._few_candidates(count, threshold)
            else:
                # A key per (tree, row) costs trees × rows: take only as many rows as seen so far
                # (about halving the threshold), so the cheap path takes over after a few chunks.
                count = min(len(rows) - offset, max(self.keys.shape[1], self.seen))
                tree, column, keys = self._every_key(count, threshold)
            self.seen += count
            if tree.size:
                self._keep_smallest(tree, column + offset, keys, taken)
            offset += count
        filled = taken >= 0
        self.points[filled] = rows[taken[filled]]

    def _every_key(self, count: int, threshold: np.ndarray):
        """While reservoirs fill (or accept often): a key for every (tree, row), those below the
        threshold kept, as (tree, column, key) grouped by tree."""
        trees, size = self.keys.shape
        keys = self.rng.random((trees, count))
        if count > size:
            # Only a batch's `size` smallest keys per tree can enter a reservoir of `size`: narrow
            # the candidates to those first (a whole-file batch would otherwise offer every row
            # to every tree). The sample is the same: the bottom-k of the union.
            columns = np.argpartition(keys, size - 1, axis=1)[:, :size]
            keys = np.take_along_axis(keys, columns, axis=1)
        else:
            columns = np.broadcast_to(np.arange(count), keys.shape)
        tree, position = np.nonzero(keys < threshold[:, None])
        return tree, columns[tree, position], keys[tree, position]

    def _few_candidates(self, count: int, threshold: np.ndarray):
        """Once full, a tree takes a row only when its key falls below the tree's threshold τ, so
        only those keys are drawn, in the same distribution as drawing all `trees × count`: how
        many rows fall below (binomial with p = τ), which ones (a uniform subset of the batch),
        and their keys (uniform below τ). The work follows the few candidates, not the batch."""
        counts = self.rng.binomial(count, threshold)
        tree, column = _distinct_columns(self.rng, counts, count)
        return tree, column, self.rng.random(tree.size) * threshold[tree]

    def _keep_smallest(self, tree: np.ndarray, column: np.ndarray, keys: np.ndarray, taken: np.ndarray) -> None:
        """Per tree, the `size` smallest of its keys and the entering candidates'; a slot a
        candidate takes records its row in `taken`."""
        trees, size = self.keys.shape
        counts = np.bincount(tree, minlength=trees)
        rank = np.arange(tree.size) - np.repeat(np.cumsum(counts) - counts, counts)
        entering = np.full((trees, counts.max()), np.inf)
        entering[tree, rank] = keys
        union = np.concatenate([self.keys, entering], axis=1)
        chosen = np.zeros(union.shape, bool)
        np.put_along_axis(chosen, np.argpartition(union, size - 1, axis=1)[:, :size], True, axis=1)
        # Per tree as many slots are freed as candidates enter: pair them in order.
        out_tree, out_slot = np.nonzero(~chosen[:, :size])
        in_tree, in_rank = np.nonzero(chosen[:, size:])
        where = np.zeros((trees, counts.max()), np.int64)
        where[tree, rank] = column
        self.keys[out_tree, out_slot] = entering[in_tree, in_rank]
        taken[out_tree, out_slot] = where[in_tree, in_rank]

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"keys": self.keys, "points": self.points, "seen": np.array([self.seen], np.int64)}


def _distinct_columns(rng: np.random.Generator, counts: np.ndarray, count: int):
    """Per tree t a uniform random set of counts[t] distinct columns of range(count), as (tree,
    column) grouped by tree. Drawn with replacement, repeats dropped and redrawn: the result is
    exactly uniform (the procedure treats every column alike), and with counts far below
    `count`, as SPARSE_BELOW keeps them, repeats are rare."""
    tree = np.repeat(np.arange(len(counts)), counts)
    key = tree * count + rng.integers(0, count, tree.size)
    while True:
        key = _sorted_distinct(key)
        missing = counts - np.bincount(key // count, minlength=len(counts))
        if not missing.any():
            return key // count, key % count
        again = np.repeat(np.arange(len(counts)), missing)
        key = np.concatenate([key, again * count + rng.integers(0, count, again.size)])


def _sorted_distinct(values: np.ndarray) -> np.ndarray:
    """np.unique without its masked-array check, which imports numpy.ma (~15 ms) on first use."""
    values = np.sort(values)
    first = np.ones(len(values), bool)
    first[1:] = values[1:] != values[:-1]
    return values[first]


def merge(shares: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, int]:
    """Every host's reservoirs → (points per tree, trees × count × d; rows seen in all)."""
    keys = np.concatenate([s["keys"] for s in shares], axis=1)
    points = np.concatenate([s["points"] for s in shares], axis=1)
    size = shares[0]["keys"].shape[1]
    seen = int(sum(int(s["seen"][0]) for s in shares))
    count = min(size, seen)
    order = np.argsort(keys, axis=1, kind="stable")[:, :count]
    # Row indexing gathers whole points; take_along_axis would index every feature (5× slower).
    return points[np.arange(len(keys))[:, None], order], seen
