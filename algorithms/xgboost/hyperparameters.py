"""XGBoost's hyperparameters as SageMaker's XGBoost container takes them.

The container accepts every XGBoost booster parameter plus a few of its own (`num_round`,
`csv_weights`, `early_stopping_rounds`, `_tuning_objective_metric`, …) and rejects anything else
before reading data. Values arrive as strings; numeric ones are checked against the container's
ranges, then every booster parameter goes to `xgboost.train` unchanged in meaning, so a model
trained here equals one trained by calling `xgboost.train` with the same parameters.

Two layers: the table below (types and ranges, checked by the shared parser) and
:func:`check_dependencies` (rules that relate parameters, worded as the container words them),
run at the start of training, still before any data is read. Parameters that today's XGBoost no
longer knows (`silent`, `predictor`, `gpu_id`, …; SageMaker's older images still accept them) are
accepted and left out of the booster parameters; `tree_method=gpu_hist` becomes `hist` (no GPU).
"""

from __future__ import annotations

import json
from typing import Any

from algorithms.common.errors import ClientError
from algorithms.common.hyperparameters import HP, choice, floating, integer

# Metrics XGBoost computes itself, and the ones SageMaker's container adds (see metrics.py).
XGB_METRICS = {
    "rmse", "rmsle", "mae", "mape", "mphe", "logloss", "error", "merror", "mlogloss", "auc",
    "aucpr", "pre", "ndcg", "map", "poisson-nloglik", "gamma-nloglik", "cox-nloglik",
    "gamma-deviance", "tweedie-nloglik", "aft-nloglik", "interval-regression-accuracy",
    "quantile",
}
OBJECTIVES = (
    "reg:squarederror", "reg:squaredlogerror", "reg:logistic", "reg:pseudohubererror",
    "reg:absoluteerror", "reg:quantileerror", "reg:linear", "reg:gamma", "reg:tweedie",
    "binary:logistic", "binary:logitraw", "binary:hinge", "count:poisson", "survival:cox",
    "survival:aft", "multi:softmax", "multi:softprob", "rank:pairwise", "rank:ndcg", "rank:map",
)
# Accepted for compatibility with older images, not passed to today's XGBoost.
RETIRED = {"silent", "predictor", "gpu_id", "sketch_eps", "single_precision_histogram",
           "deterministic_histogram", "lambda_bias", "dsplit", "prob_buffer_row",
           "use_dask_gpu_training", "save_model_on_termination", "_kfold", "_num_cv_round"}
# The container's own parameters: they steer training, they are not booster parameters.
CONTAINER = {"num_round", "csv_weights", "early_stopping_rounds", "_tuning_objective_metric"}


def text(value: str) -> str:
    return value


def _nested_list(value: str) -> Any:
    """`interaction_constraints` ("[[0, 1], [2, 3]]") and `monotone_constraints` ("(1,-1)")."""
    parsed = json.loads(value.replace("(", "[").replace(")", "]"))
    if not isinstance(parsed, list):
        raise ValueError(f"{value!r} is not a list")
    return value


def eval_metric_list(value: str) -> list[str]:
    stripped = value.strip()
    items = json.loads(stripped) if stripped.startswith("[") else stripped.split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _interval(low=None, high=None, low_open=False, high_open=False):
    def check(v) -> bool:
        return not ((low is not None and (v <= low if low_open else v < low))
                    or (high is not None and (v >= high if high_open else v > high)))
    words = (("(" if low_open else "[") + (str(low) if low is not None else "-inf") + ", "
             + (str(high) if high is not None else "+inf") + (")" if high_open else "]"))
    return check, f"in {words}"


def _num(name, parse, low=None, high=None, low_open=False, high_open=False) -> HP:
    check, words = _interval(low, high, low_open, high_open)
    return HP(name, parse, None, check, words)


def _cat(name, *options) -> HP:
    return HP(name, choice(*options), None)


def _flag(name) -> HP:
    """true/false, as XGBoost spells them (the SDK sends Python's "True")."""
    parse = choice("true", "false", "1", "0")
    return HP(name, lambda value: parse(value.strip().lower()), None)


HYPERPARAMETERS: list[HP] = [
    HP("num_round", integer, check=lambda v: v >= 1, expect="an integer of at least 1"),
    _num("csv_weights", integer, 0, 1),
    _num("early_stopping_rounds", integer, 1),
    _cat("booster", "gbtree", "gblinear", "dart"),
    _num("verbosity", integer, 0, 3),
    _num("nthread", integer, 1),
    _cat("device", "cpu", "cuda", "gpu"),
    _num("eta", floating, 0, 1), _num("learning_rate", floating, 0, 1),
    _num("gamma", floating, 0), _num("min_split_loss", floating, 0),
    _num("max_depth", integer, 0),
    _num("min_child_weight", floating, 0),
    _num("max_delta_step", floating, 0),
    _num("subsample", floating, 0, 1, low_open=True),
    _cat("sampling_method", "uniform", "gradient_based"),
    _num("colsample_bytree", floating, 0, 1, low_open=True),
    _num("colsample_bylevel", floating, 0, 1, low_open=True),
    _num("colsample_bynode", floating, 0, 1, low_open=True),
    _num("lambda", floating, 0), _num("reg_lambda", floating, 0),
    _num("alpha", floating, 0), _num("reg_alpha", floating, 0),
    _cat("tree_method", "auto", "exact", "approx", "hist", "gpu_hist"),
    _num("scale_pos_weight", floating, 0, low_open=True),
    HP("updater", text, None),
    _num("refresh_leaf", integer, 0, 1),
    _cat("process_type", "default", "update"),
    _cat("grow_policy", "depthwise", "lossguide"),
    _num("max_leaves", integer, 0),
    _num("max_bin", integer, 2),
    _num("num_parallel_tree", integer, 1),
    HP("monotone_constraints", _nested_list, None),
    HP("interaction_constraints", _nested_list, None),
    _cat("multi_strategy", "one_output_per_tree", "multi_output_tree"),
    _num("max_cached_hist_node", integer, 1),
    _num("max_cat_to_onehot", integer, 1),
    _num("max_cat_threshold", integer, 1),
    _cat("sample_type", "uniform", "weighted"),
    _cat("normalize_type", "tree", "forest"),
    _num("rate_drop", floating, 0, 1), _num("one_drop", integer, 0, 1), _num("skip_drop", floating, 0, 1),
    _cat("feature_selector", "cyclic", "shuffle", "random", "greedy", "thrifty"),
    _num("top_k", integer, 0),
    _num("tweedie_variance_power", floating, 1, 2, low_open=True, high_open=True),
    _num("huber_slope", floating, 0, low_open=True),
    HP("quantile_alpha", text, None),
    _cat("objective", *OBJECTIVES),
    _num("num_class", integer, 2),
    _num("base_score", floating),
    HP("eval_metric", eval_metric_list, None),
    _flag("disable_default_eval_metric"),
    _num("seed", integer, -(2 ** 31), 2 ** 31 - 1, low_open=True, high_open=True),
    _flag("seed_per_iteration"),
    _cat("aft_loss_distribution", "normal", "logistic", "extreme"),
    _num("aft_loss_distribution_scale", floating, 0),
    _cat("lambdarank_pair_method", "mean", "topk"),
    _num("lambdarank_num_pair_per_sample", integer, 1),
    _flag("lambdarank_normalization"),
    _flag("lambdarank_score_normalization"),
    _flag("lambdarank_unbiased"),
    _num("lambdarank_bias_norm", floating, 0),
    _flag("ndcg_exp_gain"),
    HP("_tuning_objective_metric", text, None),
    *[HP(name, text, None) for name in sorted(RETIRED)],
]


def _check_metric(metric: str) -> None:
    from algorithms.xgboost.metrics import CUSTOM_METRICS

    if "@" in metric:
        name, _, threshold = metric.partition("@")
        if name.strip() not in ("error", "ndcg", "map", "pre"):
            raise ClientError(f"Metric '{metric}' is not supported. Parameter 'eval_metric' with customized "
                              "threshold should be one of these options: 'error', 'ndcg', 'map'.")
        try:
            float(threshold.strip().rstrip("-"))
        except ValueError:
            raise ClientError(f"Threshold value 't' in '{name}@t' expects float input.") from None
        return
    if metric.rstrip("-") not in XGB_METRICS and metric not in CUSTOM_METRICS:
        raise ClientError(f"Hyperparameter eval_metric: value {metric!r} not in range "
                          f"{sorted(XGB_METRICS | set(CUSTOM_METRICS))}")


def check_dependencies(hp: dict[str, Any]) -> None:
    """The rules that relate parameters, in the container's words (ClientError)."""
    objective = hp.get("objective") or "reg:squarederror"
    if objective in ("multi:softmax", "multi:softprob") and hp.get("num_class") is None:
        raise ClientError("Require input for parameter 'num_class' for multi-classification")
    for metric in hp.get("eval_metric") or []:
        _check_metric(metric)
    metrics = hp.get("eval_metric") or []
    if "auc" in metrics and not objective.startswith(("binary:", "rank:")):
        raise ClientError("Metric 'auc' can only be applied for classification and ranking problems.")
    if "aft-nloglik" in metrics and objective != "survival:aft":
        raise ClientError("Metric 'aft-nloglik' can only be applied for 'survival:aft' objective.")
    method = hp.get("tree_method")
    if hp.get("monotone_constraints") is not None and method not in ("exact", "hist"):
        raise ClientError("monotone_constraints can be used only when the tree_method parameter is set to "
                          "either 'exact' or 'hist'.")
    if hp.get("interaction_constraints") is not None and method not in ("exact", "hist", "approx"):
        raise ClientError("interaction_constraints can be used only when the tree_method parameter is set to "
                          "either 'exact', 'hist' or 'approx'.")
    _tuning_metric(hp)


def _tuning_metric(hp: dict[str, Any]) -> str | None:
    """`_tuning_objective_metric` is `validation:auc` (or `train:…`): the metric to compute."""
    target = hp.get("_tuning_objective_metric")
    if not target:
        return None
    channel, _, metric = target.partition(":")
    if channel not in ("train", "validation") or not metric:
        raise ClientError(f"Hyperparameter _tuning_objective_metric: {target!r} is not "
                          "'<train|validation>:<metric>'")
    _check_metric(metric)
    return metric


def eval_metrics(hp: dict[str, Any]) -> list[str]:
    """eval_metric plus the tuning objective's metric, in order, without repeats."""
    metrics = list(hp.get("eval_metric") or [])
    tuning = _tuning_metric(hp)
    if tuning and tuning not in metrics:
        metrics.append(tuning)
    return metrics


def booster_params(hp: dict[str, Any]) -> dict[str, Any]:
    """The parameters for `xgboost.train`: every given booster parameter, none of the container's.

    `eval_metric` is left to the caller (metrics.split_metrics), because the container computes
    some metrics (f1, accuracy, …) itself."""
    params = {}
    for name, value in hp.items():
        if value is None or name in CONTAINER or name in RETIRED or name == "eval_metric":
            continue
        params[name] = value
    if params.get("tree_method") == "gpu_hist":
        params["tree_method"] = "hist"  # no GPU here; the CPU histogram method is the same algorithm
    if params.get("device") in ("cuda", "gpu"):
        params["device"] = "cpu"
    return params

