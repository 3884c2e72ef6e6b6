"""`model_algo-1` as SageMaker's Factorization Machines writes it: a zip of `symbol.json`,
`params` and `meta.json`.

AWS's examples (the FM-to-k-NN recommender notebooks) unzip it, rename `symbol.json` to
`model-symbol.json` and `params` to `model-0000.params`, call
`mx.module.Module.load('./model', 0, False, label_names=['out_label'])` and read
`_arg_params['w0_weight']` (1,), `['w1_weight']` (feature_dim, 1) and `['v']`
(feature_dim, num_factors), and read `meta.json["training_parameters"]["feature_dim"]`. This
writes exactly that: an MXNet checkpoint whose graph computes the FM score (sigmoid for
binary_classifier), so `Module.predict` also works.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from algorithms.common.mxnet_checkpoint import Graph, params_bytes, read_params
from algorithms.factorization_machines.model import FMParams

MODEL_FILE = "model_algo-1"


def symbol_json(binary: bool, feature_dim: int, factors: int) -> str:
    g = Graph()
    data, w1 = g.var("data"), g.var("w1_weight", (feature_dim, 1))
    linear = g.op("dot", data, w1)
    v = g.var("v", (feature_dim, factors))
    squared_sum = g.op("square", g.op("dot", data, v))
    sum_squares = g.op("dot", g.op("square", data), g.op("square", v))
    pairs = g.op("sum", g.op("elemwise_sub", squared_sum, sum_squares, name="_minus0"), axis=1, keepdims=True)
    interactions = g.op("_mul_scalar", pairs, name="_mulscalar0", scalar=0.5)
    total = g.op("elemwise_add", linear, interactions, name="_plus0")
    score = g.op("broadcast_add", total, g.var("w0_weight", (1,)))
    head = g.op("LogisticRegressionOutput" if binary else "LinearRegressionOutput", score, g.var("out_label"), name="out")
    return g.to_json(head)


def save(model_dir: Path, params: FMParams, meta: dict) -> Path:
    binary = meta["predictor_type"] == "binary_classifier"
    d, k = params.v.shape
    arrays = {"w0_weight": params.w0.reshape(1), "w1_weight": params.w.reshape(-1, 1), "v": params.v}
    target = Path(model_dir) / MODEL_FILE
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("symbol.json", symbol_json(binary, d, k))
        archive.writestr("params", params_bytes(arrays))
        archive.writestr("meta.json", json.dumps(meta, indent=2))
    return target


def load(model_dir: Path) -> tuple[FMParams, dict]:
    with zipfile.ZipFile(io.BytesIO((Path(model_dir) / MODEL_FILE).read_bytes())) as archive:
        arrays = read_params(archive.read("params"))
        meta = json.loads(archive.read("meta.json"))
    params = FMParams(np.asarray(arrays["w0_weight"], np.float32).reshape(1),
                      np.asarray(arrays["w1_weight"], np.float32).ravel(), np.asarray(arrays["v"], np.float32))
    return params, meta
