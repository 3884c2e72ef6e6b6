"""`model_algo-1`: the zip SageMaker's Linear Learner leaves, and the model the endpoint serves.

The zip holds `mx-mod-symbol.json` and `mx-mod-0000.params` (an MXNet Module checkpoint, so
`mx.module.Module.load('mx-mod', 0)` after unzipping gives `fc0_weight` (feature_dim × outputs)
and `fc0_bias` (outputs,), as AWS examples read them), `additional-params.json` (what a loader
needs besides the weights: predictor type, loss, the binary decision threshold, and the label
scaling that is already folded into the weights) and `manifest.json` (the file list).
The weights are raw-space: the normalisation statistics are folded in, so `x @ W + b` is the
model's output for raw features, and the symbol's output layer turns it into the score
(sigmoid for logistic, softmax for multiclass, identity otherwise).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from algorithms.common.mxnet_checkpoint import Graph, params_bytes, read_params

MODEL_FILE = "model_algo-1"
PREFIX = "mx-mod"
OUTPUT_LAYERS = {"logistic": "LogisticRegressionOutput", "softmax_loss": "SoftmaxOutput"}


def symbol_json(loss: str, feature_dim: int, outputs: int) -> str:
    graph = Graph()
    data, weight = graph.var("data"), graph.var("fc0_weight", (feature_dim, outputs))
    product = graph.op("dot", data, weight)
    linear = graph.op("broadcast_add", product, graph.var("fc0_bias", (outputs,)))
    head = graph.op(OUTPUT_LAYERS.get(loss, "LinearRegressionOutput"), linear, graph.var("out_label"), name="out")
    return graph.to_json(head)


@dataclass
class LinearModel:
    weights: np.ndarray  # (feature_dim, outputs), raw space
    bias: np.ndarray  # (outputs,)
    params: dict  # additional-params.json

    @property
    def predictor_type(self) -> str:
        return self.params["predictor_type"]

    def raw(self, features) -> np.ndarray:
        if features.shape[1] != self.weights.shape[0]:
            raise ValueError(f"each record needs {self.weights.shape[0]} features, not {features.shape[1]}")
        return np.asarray(features @ self.weights) + self.bias


def save(model_dir: Path, weights: np.ndarray, bias: np.ndarray, params: dict) -> Path:
    files = {
        "additional-params.json": json.dumps(params, indent=2).encode(),
        f"{PREFIX}-symbol.json": symbol_json(params["loss"], *weights.shape).encode(),
        f"{PREFIX}-0000.params": params_bytes({"fc0_weight": weights, "fc0_bias": bias}),
    }
    manifest = {"algorithm": "linear-learner", "checkpoint_prefix": PREFIX, "epoch": 0, "files": sorted(files)}
    files["manifest.json"] = json.dumps(manifest, indent=2).encode()
    target = Path(model_dir) / MODEL_FILE
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("additional-params.json", "manifest.json", f"{PREFIX}-symbol.json", f"{PREFIX}-0000.params"):
            archive.writestr(name, files[name])
    return target


def load(model_dir: Path) -> LinearModel:
    with zipfile.ZipFile(io.BytesIO((Path(model_dir) / MODEL_FILE).read_bytes())) as archive:
        params = json.loads(archive.read("additional-params.json"))
        arrays = read_params(archive.read(f"{PREFIX}-0000.params"))
    weights = np.asarray(arrays["fc0_weight"], np.float32)
    return LinearModel(weights.reshape(weights.shape[0], -1), np.asarray(arrays["fc0_bias"], np.float32).ravel(), params)
