"""Reservoir sampling for the forest: one uniform sample of `num_samples_per_tree` rows per tree,
from a stream whose length is unknown (a File channel or a Pipe-mode FIFO), mergeable across hosts.

Each (tree, row) pair draws a uniform key and every tree keeps the rows with its smallest keys
("bottom-k" sampling): that is a uniform sample without replacement of everything seen, and
because keys are comparable, the leader merges hosts' reservoirs exactly by keeping, per tree, the
smallest keys of their union. So a ShardedByS3Key job samples from all shards, as one host would
from all the data. Trees sample independently; with far more rows than `num_trees ×
num_samples_per_tree` this matches SageMaker's partitioned sample, and with fewer every tree still
gets a full reservoir.
"""

from __future__ import annotations

import numpy as np


class Reservoir:
    def __init__(self, trees: int, size: int, feature_dim: int, seed: int):
        self.rng = np.random.default_rng(seed)
        self.keys = np.full((trees, size), np.inf)
        self.points = np.zeros((trees, size, feature_dim), np.float32)
        self.seen = 0

    def add(self, rows: np.ndarray) -> None:
        """Offer a batch of rows (b × d float32) to every tree's reservoir."""
        if len(rows) == 0:
            return
        self.seen += len(rows)
        trees, size = self.keys.shape
        keys = self.rng.random((trees, len(rows)))
        if len(rows) > size:
            # Only a batch's `size` smallest keys per tree can enter a reservoir of `size`: narrow
            # the candidates to those first (a whole-file batch would otherwise offer every row
            # to every tree). The sample is the same: the bottom-k of the union.
            columns = np.argpartition(keys, size - 1, axis=1)[:, :size]
            keys = np.take_along_axis(keys, columns, axis=1)
        else:
            columns = np.broadcast_to(np.arange(len(rows)), keys.shape)
        tree, position = np.nonzero(keys < self.keys.max(axis=1, keepdims=True))  # grouped by tree
        if tree.size:
            self._keep_smallest(tree, columns[tree, position], keys[tree, position], rows)

    def _keep_smallest(self, tree: np.ndarray, column: np.ndarray, keys: np.ndarray, rows: np.ndarray) -> None:
        """Per tree, the `size` smallest of its keys and the entering candidates'."""
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
        self.points[out_tree, out_slot] = rows[where[in_tree, in_rank]]

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"keys": self.keys, "points": self.points, "seen": np.array([self.seen], np.int64)}


def merge(shares: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, int]:
    """Every host's reservoirs → (points per tree, trees × count × d; rows seen in all)."""
    keys = np.concatenate([s["keys"] for s in shares], axis=1)
    points = np.concatenate([s["points"] for s in shares], axis=1)
    size = shares[0]["keys"].shape[1]
    seen = int(sum(int(s["seen"][0]) for s in shares))
    order = np.argsort(keys, axis=1, kind="stable")[:, :size]
    count = min(size, seen)
    return np.take_along_axis(points, order[:, :count, None], axis=1), seen
