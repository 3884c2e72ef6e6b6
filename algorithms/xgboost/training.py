"""Training with the real XGBoost library, as SageMaker's XGBoost container does it.

`xgboost.train(params, dtrain, num_round, evals=[train, validation], early_stopping_rounds)` with
exactly the user's booster parameters, so the model equals a direct `xgboost.train` call on the
same data. The evaluation lines are printed as the container prints them,
`[0]\\ttrain-rmse:0.32107\\tvalidation-rmse:0.33256` (CloudWatch shows the TABs as `#011`, which
is what the built-in metric definitions match); the model is written with `Booster.save_model`
as `xgboost-model`.

Several hosts (ShardedByS3Key): every host reads its share and sends it to algo-1
(algorithms.common.distributed.gather), which trains on all of it. SageMaker's container joins
the hosts in a Rabit ring instead; the difference is that here the model is exactly the one-host
model on all the data (a Rabit ring merges per-host quantile sketches, so its trees differ
slightly), and a host with no data simply sends nothing. The other hosts exit once they have sent.

Checkpoints: with a CheckpointConfig, `xgboost-checkpoint.<round>` is written to its LocalPath
after every round, and a job that finds checkpoints there resumes from the latest one.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np

from algorithms.common import contract, logs
from algorithms.common.errors import AlgorithmError, ClientError
from algorithms.common.training import TrainingContext
from algorithms.xgboost import data
from algorithms.xgboost.library import TrainingCallback, XGBoostError, xgb
from algorithms.xgboost.hyperparameters import booster_params, check_dependencies, eval_metrics
from algorithms.xgboost.metrics import custom_metric, split_metrics

MODEL_FILE = "xgboost-model"
CHECKPOINT = re.compile(r"^xgboost-checkpoint\.(\d+)$")
# XGBoost's messages that mean the data or the parameters are wrong, not the algorithm.
CUSTOMER_ERRORS = ("label must be", "base_score must be", "feature_names mismatch", "must be nonnegative",
                   "Check failed: preds.size() == info.labels", "dataset only contains pos or neg",
                   "Target is multiclass", "should be greater equal to 0", "Invalid Input", "num_class",
                   "Number of columns", "label_lower_bound", "Invalid parameter", "Unknown objective")


def train(ctx: TrainingContext) -> None:
    hp = ctx.hyperparameters
    check_dependencies(hp)
    train_type = data.content_type(ctx.channels["train"].content_type)
    val_channel = ctx.channels.get("validation")
    val_type = data.content_type(val_channel.content_type) if val_channel and val_channel.content_type else train_type
    weights = bool(hp["csv_weights"])
    shares = ctx.gather(_share(ctx, train_type, val_type, weights))
    if shares is None:
        logs.info("sent this host's data to algo-1, which trains on all of it")
        return
    dtrain, dval = _leader_data(shares, ctx, val_channel is not None)
    booster = _fit(hp, dtrain, dval)
    path = ctx.model_dir / MODEL_FILE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "saving in UBJSON as default": the container's file name has no extension
        booster.save_model(str(path))
    logs.info(f"wrote {MODEL_FILE} ({booster.num_boosted_rounds()} rounds, {booster.num_features()} features)")


def _share(ctx, train_type: str, val_type: str, weights: bool) -> dict[str, np.ndarray]:
    """This host's rows of each channel, flattened to arrays for the gather."""
    share: dict[str, np.ndarray] = {}
    for name, mime in (("train", train_type), ("validation", val_type)):
        channel = ctx.channels.get(name)
        if channel is None or (name == "validation" and not ctx.is_leader and channel.distribution != "ShardedByS3Key"):
            continue  # a replicated validation channel is read once, by the leader
        part = data.read_channel(channel, mime, weights and mime == data.CSV)
        if part is not None:
            share.update({f"{name}.{k}": v for k, v in part.arrays().items()})
    return share


def _unpack(share: dict[str, np.ndarray], name: str) -> data.Dataset | None:
    arrays = {k.split(".", 1)[1]: v for k, v in share.items() if k.startswith(name + ".")}
    return data.Dataset.from_arrays(arrays) if arrays else None


def _leader_data(shares, ctx, has_validation: bool):
    train_set = data.combine([_unpack(s, "train") for s in shares])
    if train_set is None or not train_set.rows:
        raise ClientError(f"No data in training channel path {ctx.channels['train'].path}")
    val_parts = [_unpack(s, "validation") for s in shares]
    val_set = data.combine(val_parts) if any(p is not None for p in val_parts) else None
    if has_validation and val_set is None:
        raise ClientError(f"No data in validation channel path {ctx.channels['validation'].path}")
    data.same_width(train_set, val_set)
    logs.info(f"Train matrix has {train_set.rows} rows and {train_set.features.shape[1]} columns"
              + (f"; validation matrix has {val_set.rows} rows" if val_set is not None else ""))
    dtrain = xgb.DMatrix(train_set.features, label=train_set.labels, weight=train_set.weights)
    dval = None if val_set is None else xgb.DMatrix(val_set.features, label=val_set.labels, weight=val_set.weights)
    return dtrain, dval


def _fit(hp: dict, dtrain, dval):
    params = booster_params(hp)
    builtin, custom = split_metrics(eval_metrics(hp))
    if builtin:
        params["eval_metric"] = builtin
    evals = [(dtrain, "train")] + ([(dval, "validation")] if dval is not None else [])
    start, rounds = _resume()
    callbacks = [EvaluationLines(rounds)] + ([Checkpoints(rounds)] if _checkpoint_dir() else [])
    logs.info(f"xgboost.train parameters {params}, num_round {hp['num_round']}"
              + (f", early_stopping_rounds {hp['early_stopping_rounds']}" if hp["early_stopping_rounds"] else "")
              + (f", metrics computed by the container {custom}" if custom else ""))
    try:
        return xgb.train(params, dtrain, num_boost_round=max(0, hp["num_round"] - rounds), evals=evals,
                         early_stopping_rounds=hp["early_stopping_rounds"],
                         custom_metric=custom_metric(custom, params.get("objective", "")),
                         callbacks=callbacks, verbose_eval=False, xgb_model=start)
    except XGBoostError as exc:
        message = str(exc).split("\nStack trace:")[0].strip()
        if any(marker in message for marker in CUSTOMER_ERRORS):
            raise ClientError(message) from None
        raise AlgorithmError(f"XGB train call failed with exception:\n {message}") from None


class EvaluationLines(TrainingCallback):
    """Prints `[i]\\ttrain-m:v\\tvalidation-m:v` after every round, as XGBoost's own monitor does
    (a resumed job counts on from its checkpoint's rounds, as the container's callback does)."""

    def __init__(self, offset: int = 0) -> None:
        super().__init__()
        self.offset = offset

    def after_iteration(self, model, epoch, evals_log) -> bool:
        epoch += self.offset
        parts = [f"\t{data_name}-{metric}:{values[-1]:.5f}"
                 for data_name, metrics in evals_log.items() for metric, values in metrics.items()]
        sys.stdout.write(f"[{epoch}]" + "".join(parts) + "\n")
        sys.stdout.flush()
        return False


# -- checkpoints ---------------------------------------------------------------------------------


def _checkpoint_dir() -> Path | None:
    """CheckpointConfig's LocalPath; a path under /opt/ml follows the re-rooted tree ($SMLOCAL_OPT_ML)."""
    config = contract.read_config("checkpointconfig.json")
    if not config:
        return None
    local = Path(config.get("LocalPath") or "/opt/ml/checkpoints")
    return contract.ROOT / local.relative_to("/opt/ml") if local.is_relative_to("/opt/ml") else local


def _resume():
    """(the booster to continue from, rounds it holds), or (None, 0)."""
    folder = _checkpoint_dir()
    if folder is None or not folder.is_dir():
        return None, 0
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT.match(p.name)))
    if not found:
        return None, 0
    rounds, path = found[-1]
    booster = xgb.Booster()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown file format: using UBJSON as a guess"
        booster.load_model(str(path))
    logs.info(f"Checkpoint loaded from {path}; resuming from iteration {rounds + 1}")
    return booster, rounds + 1


class Checkpoints(TrainingCallback):
    """Saves `xgboost-checkpoint.<round>` after every round, keeping the last five."""

    def __init__(self, offset: int = 0) -> None:
        super().__init__()
        self.folder, self.offset = _checkpoint_dir(), offset

    def after_iteration(self, model, epoch, evals_log) -> bool:
        epoch += self.offset
        self.folder.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save_model(str(self.folder / f"xgboost-checkpoint.{epoch}"))
        stale = self.folder / f"xgboost-checkpoint.{epoch - 5}"
        if stale.exists():
            stale.unlink()
        return False
