"""normalize_data / unbias_data / normalize_label / unbias_label: the statistics SageMaker's
Linear Learner computes on the first `num_point_for_scaler` records before training.

The models are trained in the normalised space, but the data is never rewritten: a normalised
linear model w'·((x - mean) / scale) + b' is the raw-space model (w'/scale)·x + (b' - mean·w'/scale),
so training multiplies by the statistics instead (sparse input stays sparse), and the artifact
holds raw-space weights, as SageMaker's does (a loaded model predicts from raw features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.common.labelled_data import Labelled


@dataclass(frozen=True)
class Scaler:
    mean: np.ndarray  # (d,), zeros when the data is not unbiased
    scale: np.ndarray  # (d,), ones when the data is not normalised
    label_mean: float = 0.0
    label_scale: float = 1.0

    @staticmethod
    def fit(sample: Labelled, settings) -> "Scaler":
        d = sample.features.shape[1]
        mean, scale = np.zeros(d), np.ones(d)
        if len(sample) and (settings.unbias_data or settings.normalize_data):
            first, second = _moments(sample.features)
            if settings.unbias_data:
                mean = first
            if settings.normalize_data:
                centre = first if settings.unbias_data else 0.0
                spread = np.sqrt(np.maximum(second - 2 * centre * first + centre ** 2, 0.0))
                scale = np.where(spread > 1e-12, spread, 1.0)
        label_mean = float(sample.labels.mean()) if settings.unbias_label and len(sample) else 0.0
        label_scale = 1.0
        if settings.normalize_label and len(sample):
            label_scale = float(np.sqrt(np.mean((sample.labels - label_mean) ** 2))) or 1.0
        return Scaler(mean, scale, label_mean, label_scale)

    def labels(self, y: np.ndarray) -> np.ndarray:
        return (y - self.label_mean) / self.label_scale

    def to_raw(self, weights: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised-space (d, k) weights and (k,) bias as raw-space ones (labels in raw units)."""
        w = weights / self.scale[:, None]
        b = bias - self.mean @ w
        return (w * self.label_scale).astype(np.float32), (b * self.label_scale + self.label_mean).astype(np.float32)

    def describe(self) -> dict:
        return {"label_mean": self.label_mean, "label_scale": self.label_scale,
                "unbiased_features": bool(np.any(self.mean)), "normalized_features": bool(np.any(self.scale != 1))}


def _moments(features) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature E[x] and E[x²] (a sparse matrix stays sparse)."""
    n = features.shape[0]
    if hasattr(features, "multiply"):
        first = np.asarray(features.sum(axis=0)).ravel() / n
        second = np.asarray(features.multiply(features).sum(axis=0)).ravel() / n
        return first, second
    x = features.astype(np.float64)
    return x.mean(axis=0), np.einsum("ij,ij->j", x, x) / n
