"""Inference as SageMaker's XGBoost container answers it.

Order and codes as in the container: an empty body is 204; a Content-Type other than CSV, libsvm
(`text/libsvm`, `text/x-libsvm`) or recordio-protobuf, or an unparsable body, is 415 (the container
reports parse failures as 415 too); a payload the model cannot score is 400; an Accept other than
text/csv, application/json, application/jsonlines or recordio-protobuf is 406. No Accept (or `*/*`)
means $SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, else text/csv.

Bodies: text/csv has one prediction per line (multi:softprob: the class probabilities of a row,
comma-separated), as the container's encoder writes them (`np.savetxt`), except from the legacy
`xgboost:1` / `:latest` / `:0.72` image, which answers ONE line of comma-joined scores
(`0.6,0.3`; AWS's Clarify pre-check page shows both shapes). Both images run this one program,
so smlocal's runtimes name the image in $SMLOCAL_ALGORITHM_IMAGE. JSON is
`{"predictions": [{"score": p}, …]}`, JSON Lines one `{"score": p}` per line, recordio-protobuf
one record per row with the label `score`. Batch transform ($SAGEMAKER_BATCH) always answers
"\\n".join(predictions). $SAGEMAKER_INFERENCE_OUTPUT (e.g. `predicted_label,probabilities`)
selects the classification outputs the container offers.

Values are the booster's float32 predictions written as Python writes them (`str(float(p))`), so
they compare equal to `Booster.predict` on the same rows.
"""

from __future__ import annotations

import json
import os
import pickle
import threading
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse

from algorithms.common import logs
from algorithms.io import (CSV, JSON, JSONLINES, LIBSVM, RECORDIO_PROTOBUF, DataFormatError, decode_request,
                           encode_records, parse_accept, parse_content_type)
from algorithms.xgboost.library import xgb

ACCEPTS = (CSV, JSON, JSONLINES, RECORDIO_PROTOBUF)
IMAGE_ENV = "SMLOCAL_ALGORITHM_IMAGE"  # the image URI smlocal started us for (emulator/runtime/contract.py)
_REQUEST_TYPES = {"text/csv": CSV, "csv": CSV, "text/libsvm": LIBSVM, "text/x-libsvm": LIBSVM, "libsvm": LIBSVM,
                  RECORDIO_PROTOBUF: RECORDIO_PROTOBUF}


class Model:
    """The booster(s) of /opt/ml/model and what serving needs to know about them."""

    def __init__(self, boosters: list):
        self.boosters = boosters
        config = json.loads(boosters[0].save_config())["learner"]
        self.objective = config["objective"]["name"]
        self.num_class = config["learner_model_param"].get("num_class", "0")
        self.lock = threading.Lock()  # one predict at a time per booster, as the container's workers do

    def predict(self, dmatrix) -> np.ndarray:
        with self.lock:
            predictions = [_predict(b, dmatrix) for b in self.boosters]
        return predictions[0] if len(predictions) == 1 else np.mean(predictions, axis=0)


def _predict(booster, dmatrix) -> np.ndarray:
    best = booster.attr("best_iteration")
    limit = (0, int(best) + 1) if best is not None else (0, 0)
    return booster.predict(dmatrix, iteration_range=limit, validate_features=False)


def load(model_dir: Path) -> Model:
    """`xgboost-model` (any format `Booster.load_model` reads, or a pickled Booster as images
    before 1.3 wrote); without it, every model file in the folder, averaged as an ensemble."""
    preferred = model_dir / "xgboost-model"
    paths = [preferred] if preferred.is_file() else sorted(
        p for p in model_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise RuntimeError(f"no model file in {model_dir}")
    model = Model([_load_one(p) for p in paths])
    logs.info(f"loaded {', '.join(p.name for p in paths)} (objective {model.objective})")
    return model


def _load_one(path: Path):
    booster = xgb.Booster()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            booster.load_model(str(path))
        return booster
    except xgb.core.XGBoostError as error:
        try:
            with open(path, "rb") as f:
                loaded = pickle.load(f)  # the model the user's own job wrote
        except Exception:
            raise RuntimeError(f"Model at {path} cannot be loaded: {error}") from None
        return loaded.get_booster() if hasattr(loaded, "get_booster") else loaded


# -- the exchange --------------------------------------------------------------------------------


def respond(model: Model, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, bytes, str]:
    if not body:
        return 204, b"", "text/plain"
    try:
        features = _decode(body, content_type)
    except (DataFormatError, ValueError) as exc:
        return 415, str(exc).encode(), "text/plain"
    try:
        predictions = model.predict(xgb.DMatrix(features))
    except Exception as exc:  # the model cannot score these rows (e.g. too many features)
        message = str(exc).split("\nStack trace:")[0]
        return 400, f"Unable to evaluate payload provided: {message}".encode(), "text/plain"
    try:
        mime = _accept(accept)
    except ValueError as exc:
        return 406, str(exc).encode(), "text/plain"
    return 200, encode(model, predictions, mime), mime


def _decode(body: bytes, content_type: str | None):
    parsed = parse_content_type(content_type or CSV, CSV)
    mime = _REQUEST_TYPES.get(parsed.mime)
    if mime is None:
        raise ValueError(f"Content-type {content_type} not supported. Supported content-type is text/csv, "
                         "text/libsvm, text/x-libsvm, application/x-recordio-protobuf")
    if mime == CSV:
        if parsed.param("label_size") not in (None, "0", "1"):
            raise ValueError(f"Content-type {content_type} not supported: label_size must be 1 or absent")
        batch = decode_request(body, CSV, allow_missing=True, dtype=np.float64)
    else:
        batch = decode_request(body, mime)
    features = batch.features
    return features if scipy.sparse.issparse(features) else np.asarray(features)


def _accept(accept: str | None) -> str:
    for choice in parse_accept(accept):
        if choice.mime == "*/*":
            return os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or CSV
        if choice.mime in ACCEPTS:
            return choice.mime
    raise ValueError(f"Accept type {accept} is not supported. Please use supported accept types: {list(ACCEPTS)}.")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def encode(model: Model, predictions: np.ndarray, mime: str) -> bytes:
    values = predictions.tolist()
    if os.environ.get("SAGEMAKER_INFERENCE_OUTPUT"):
        from algorithms.xgboost.selectable import encode_selected

        return encode_selected(model, predictions, mime)
    if _flag("SAGEMAKER_BATCH"):
        return ("\n".join(map(str, values)) + "\n").encode()
    if mime == JSON:
        return json.dumps({"predictions": [{"score": v} for v in values]}).encode()
    if mime == JSONLINES:
        return "".join(json.dumps({"score": v}) + "\n" for v in values).encode()
    if mime == RECORDIO_PROTOBUF:
        return encode_records(labels={"score": predictions.reshape(len(predictions), -1)}, dtype=np.float32)
    if legacy_image() and not (values and isinstance(values[0], list)):
        return ",".join(map(str, values)).encode()
    return "".join((",".join(map(str, v)) if isinstance(v, list) else str(v)) + "\n" for v in values).encode()


def legacy_image() -> bool:
    """Started for the legacy image: repository `xgboost` (any account, region, tag), not
    `sagemaker-xgboost`. Unset (a program run by hand) means the current image."""
    uri = os.environ.get(IMAGE_ENV, "")
    return uri.rsplit("/", 1)[-1].split("@")[0].split(":")[0] == "xgboost"
