"""Selectable inference output: $SAGEMAKER_INFERENCE_OUTPUT names what each prediction carries
(`predicted_label`, `labels`, `probability`, `probabilities`, `raw_score`, `raw_scores`,
`predicted_score`), as SageMaker's XGBoost container offers for classification models.

A key the objective cannot give (say `probability` of a regression) is NaN, as in the container.
CSV writes the keys in the requested order, lists quoted (`1,"[0.4, 0.6]"`); JSON is
`{"predictions": [{key: value}]}`, JSON Lines one object per line, recordio-protobuf one record per
row with each key a float32 tensor in the label map.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from algorithms.io import CSV, JSON, JSONLINES, encode_records

CLASSIFIERS = {
    "binary:logistic": {"predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores"},
    "binary:logitraw": {"predicted_label", "labels", "raw_score", "raw_scores"},
    "binary:hinge": {"predicted_label", "labels", "raw_score", "raw_scores"},
    "multi:softmax": {"predicted_label", "labels", "raw_score", "raw_scores"},
    "multi:softprob": {"predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores"},
}
REGRESSORS = ("reg:squarederror", "reg:logistic", "reg:gamma", "reg:tweedie", "reg:linear")


def selected_keys() -> list[str]:
    return [k for k in os.environ.get("SAGEMAKER_INFERENCE_OUTPUT", "").replace(" ", "").lower().split(",") if k]


def _one(key: str, objective: str, num_class: str, p) -> object:
    vector = isinstance(p, list)
    if key == "predicted_score":
        return p
    if key == "labels":
        return [0, 1] if objective.startswith("binary:") else list(range(int(num_class)))
    if key == "predicted_label":
        if vector:
            return int(np.argmax(p))
        if objective == "binary:logistic":
            return int(p > 0.5)
        if objective == "binary:logitraw":
            return int(p > 0)
        return p
    if key in ("probability", "raw_score"):
        return max(p) if vector else p
    return p if vector else [1.0 - p, p]  # probabilities, raw_scores


def select(predictions: np.ndarray, objective: str, num_class: str) -> list[dict]:
    keys = selected_keys()
    valid = CLASSIFIERS.get(objective, {"predicted_score"} if objective in REGRESSORS else set())
    rows = []
    for p in predictions.tolist():
        rows.append({k: _one(k, objective, num_class, p) if k in valid else math.nan for k in keys})
    return rows


def encode_selected(model, predictions: np.ndarray, mime: str) -> bytes:
    rows = select(predictions, model.objective, model.num_class)
    keys = selected_keys()
    if mime == JSON:
        return json.dumps({"predictions": rows}).encode()
    if mime == JSONLINES:
        return "".join(json.dumps(r) + "\n" for r in rows).encode()
    if mime == CSV:
        lines = [",".join(f'"{r[k]}"' if isinstance(r[k], list) else str(r[k]) for k in keys) for r in rows]
        text = "\n".join(lines)
        batch = os.environ.get("SAGEMAKER_BATCH", "").lower() in ("1", "true", "yes")
        return (text + "\n" if batch else text).encode()
    columns = {k: np.array([r[k] if isinstance(r[k], list) else [r[k]] for r in rows], dtype=np.float32)
               for k in keys}
    return encode_records(labels=columns, dtype=np.float32)
