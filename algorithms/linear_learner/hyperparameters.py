"""Linear Learner's hyperparameters as SageMaker documents them (Developer Guide,
"Linear learner hyperparameters"; the SDK's ``LinearLearner``), and the concrete settings the
``auto`` values become.

Everything here is checked before any data is read, so a bad job fails at once with
``ClientError: …``: unknown names, unparsable values, values out of range, ``num_classes``
missing for ``multiclass_classifier``, a loss that does not fit the predictor type.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from algorithms.common.errors import ClientError
from algorithms.common.hyperparameters import HP, auto_or, boolean, choice, floating, integer

PREDICTORS = ("binary_classifier", "multiclass_classifier", "regressor")
LOSSES = ("logistic", "squared_loss", "absolute_loss", "hinge_loss", "eps_insensitive_squared_loss",
          "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss", "softmax_loss", "auto")
CRITERIA = ("accuracy", "f_beta", "f1", "precision_at_target_recall", "recall_at_target_precision",
            "loss_function", "cross_entropy_loss")
# Which losses each predictor type trains with; the first is what `auto` means.
LOSSES_FOR = {
    "binary_classifier": ("logistic", "hinge_loss"),
    "multiclass_classifier": ("softmax_loss",),
    "regressor": ("squared_loss", "absolute_loss", "eps_insensitive_squared_loss",
                  "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss"),
}
# `auto` learning rates (model 0 first) per optimizer, and `auto` weight decays: the models
# trained side by side explore these, the way SageMaker trains "close parameters".
AUTO_LEARNING_RATES = {"adam": (0.1, 0.01, 0.001), "rmsprop": (0.01, 0.001, 0.1), "sgd": (0.1, 0.01, 0.5)}
AUTO_WDS = (1e-6, 1e-4, 1e-2, 0.0)


def _positive_weight(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("auto", "balanced"):
        return lowered
    value = float(text)
    if value <= 0:
        raise ValueError(f"{text!r} is not greater than 0, 'auto' or 'balanced'")
    return value


def _in_open_unit(v) -> bool:
    return 0 < v < 1


SPECS = [
    HP("predictor_type", choice(*PREDICTORS)),
    HP("feature_dim", integer, check=lambda v: v > 0, expect="an integer greater than 0"),
    HP("num_classes", integer, None, lambda v: 0 < v <= 1_000_000, "an integer from 1 to 1000000"),
    HP("accuracy_top_k", integer, 3, lambda v: v > 0, "a positive integer"),
    HP("balance_multiclass_weights", boolean, False),
    HP("beta_1", auto_or(floating), "auto", lambda v: 0 <= v < 1, "a float in [0, 1)"),
    HP("beta_2", auto_or(floating), "auto", lambda v: 0 <= v < 1, "a float in [0, 1)"),
    HP("bias_lr_mult", auto_or(floating), "auto", lambda v: v > 0, "a positive float"),
    HP("bias_wd_mult", auto_or(floating), "auto", lambda v: v >= 0, "a non-negative float"),
    HP("binary_classifier_model_selection_criteria", choice(*CRITERIA), "accuracy"),
    HP("early_stopping_patience", integer, 3, lambda v: v > 0, "a positive integer"),
    HP("early_stopping_tolerance", floating, 0.001, lambda v: v > 0, "a positive float"),
    HP("epochs", integer, 15, lambda v: v > 0, "a positive integer"),
    HP("f_beta", floating, 1.0, lambda v: v > 0, "a positive float"),
    HP("huber_delta", floating, 1.0, lambda v: v >= 0, "a non-negative float"),
    HP("init_bias", floating, 0.0),
    HP("init_method", choice("uniform", "normal"), "uniform"),
    HP("init_scale", floating, 0.07, lambda v: v > 0, "a positive float"),
    HP("init_sigma", floating, 0.01, lambda v: v > 0, "a positive float"),
    HP("l1", auto_or(floating), "auto", lambda v: v >= 0, "a non-negative float"),
    HP("learning_rate", auto_or(floating), "auto", lambda v: v > 0, "a positive float"),
    HP("loss", choice(*LOSSES), "auto"),
    HP("loss_insensitivity", floating, 0.01, lambda v: v > 0, "a positive float"),
    HP("lr_scheduler_factor", auto_or(floating), "auto", _in_open_unit, "a float in (0, 1)"),
    HP("lr_scheduler_minimum_lr", auto_or(floating), "auto", lambda v: v > 0, "a positive float"),
    HP("lr_scheduler_step", auto_or(integer), "auto", lambda v: v > 0, "a positive integer"),
    HP("margin", floating, 1.0, lambda v: v >= 0, "a non-negative float"),
    HP("mini_batch_size", integer, 1000, lambda v: v > 0, "a positive integer"),
    HP("momentum", auto_or(floating), "auto", lambda v: 0 <= v < 1, "a float in [0, 1)"),
    HP("normalize_data", auto_or(boolean), True),
    HP("normalize_label", auto_or(boolean), "auto"),
    HP("num_calibration_samples", auto_or(integer), "auto", lambda v: v > 0, "a positive integer"),
    HP("num_models", auto_or(integer), "auto", lambda v: v > 0, "a positive integer"),
    HP("num_point_for_scaler", integer, 10000, lambda v: v > 0, "a positive integer"),
    HP("optimizer", choice("sgd", "adam", "rmsprop", "auto"), "auto"),
    HP("positive_example_weight_mult", _positive_weight, 1.0),
    HP("quantile", floating, 0.5, _in_open_unit, "a float in (0, 1)"),
    HP("target_precision", floating, 0.8, _in_open_unit, "a float in (0, 1)"),
    HP("target_recall", floating, 0.8, _in_open_unit, "a float in (0, 1)"),
    HP("unbias_data", auto_or(boolean), "auto"),
    HP("unbias_label", auto_or(boolean), "auto"),
    HP("use_bias", boolean, True),
    HP("use_lr_scheduler", boolean, True),
    HP("wd", auto_or(floating), "auto", lambda v: v >= 0, "a non-negative float"),
]


@dataclass(frozen=True)
class ModelParams:
    """What differs between the models trained side by side."""

    learning_rate: float
    wd: float
    l1: float
    positive_weight: Any  # a float, or "balanced" (resolved once the labels are known)

    def describe(self, settings: "Settings") -> dict:
        return {"optimizer": settings.optimizer, "learning_rate": self.learning_rate, "wd": self.wd,
                "l1": self.l1, "lr_scheduler_step": settings.lr_step, "lr_scheduler_factor": settings.lr_factor,
                "lr_scheduler_minimum_lr": settings.lr_minimum}


@dataclass(frozen=True)
class Settings:
    """The hyperparameters with every `auto` replaced by the value training uses."""

    predictor_type: str
    feature_dim: int
    outputs: int  # 1, or num_classes for multiclass
    loss: str
    optimizer: str
    models: tuple[ModelParams, ...]
    beta_1: float
    beta_2: float
    momentum: float
    bias_lr_mult: float
    bias_wd_mult: float
    normalize_data: bool
    unbias_data: bool
    normalize_label: bool
    unbias_label: bool
    use_lr_scheduler: bool
    lr_step: Any  # int, or "auto" = once per pass over the data
    lr_factor: float
    lr_minimum: float
    calibration_samples: int
    raw: dict  # every parsed hyperparameter, for the rest


def resolve(hp: dict) -> Settings:
    predictor = hp["predictor_type"]
    if predictor == "multiclass_classifier" and hp["num_classes"] is None:
        raise ClientError("No value(s) were specified for 'num_classes' which are required hyperparameter(s) "
                          "when predictor_type is 'multiclass_classifier'")
    if predictor == "multiclass_classifier" and hp["num_classes"] < 3:
        raise ClientError(f"Hyperparameter 'num_classes' must be an integer from 3 to 1000000 for a "
                          f"multiclass_classifier, not {hp['num_classes']} (use binary_classifier for 2 classes)")
    loss = LOSSES_FOR[predictor][0] if hp["loss"] == "auto" else hp["loss"]
    if loss not in LOSSES_FOR[predictor]:
        raise ClientError(f"Loss '{loss}' cannot train a {predictor}; use one of {', '.join(LOSSES_FOR[predictor])} "
                          f"or 'auto'")
    optimizer = "adam" if hp["optimizer"] == "auto" else hp["optimizer"]
    regression = predictor == "regressor"
    return Settings(
        predictor_type=predictor, feature_dim=hp["feature_dim"],
        outputs=hp["num_classes"] if predictor == "multiclass_classifier" else 1,
        loss=loss, optimizer=optimizer, models=_models(hp, optimizer),
        beta_1=_auto(hp["beta_1"], 0.9), beta_2=_auto(hp["beta_2"], 0.999), momentum=_auto(hp["momentum"], 0.0),
        bias_lr_mult=_auto(hp["bias_lr_mult"], 1.0), bias_wd_mult=_auto(hp["bias_wd_mult"], 0.0),
        normalize_data=_auto(hp["normalize_data"], True),
        unbias_data=_auto(hp["unbias_data"], hp["use_bias"]),
        normalize_label=_auto(hp["normalize_label"], regression) and regression,
        unbias_label=_auto(hp["unbias_label"], hp["use_bias"]) and regression,
        use_lr_scheduler=hp["use_lr_scheduler"], lr_step=hp["lr_scheduler_step"],
        lr_factor=_auto(hp["lr_scheduler_factor"], 0.99), lr_minimum=_auto(hp["lr_scheduler_minimum_lr"], 1e-5),
        calibration_samples=_auto(hp["num_calibration_samples"], 100_000),
        raw=hp)


def _auto(value, default):
    return default if value == "auto" else value


def _models(hp: dict, optimizer: str) -> tuple[ModelParams, ...]:
    """The models to train: every combination of the candidate values, nearest to model 0 first
    (model 0 is exactly the given hyperparameters), cut or extended to `num_models`."""
    lrs = AUTO_LEARNING_RATES[optimizer] if hp["learning_rate"] == "auto" else (hp["learning_rate"],)
    wds = AUTO_WDS if hp["wd"] == "auto" else (hp["wd"],)
    l1s = (0.0,) if hp["l1"] == "auto" else (hp["l1"],)
    weights = ((1.0, "balanced") if hp["positive_example_weight_mult"] == "auto"
               else (hp["positive_example_weight_mult"],))
    if hp["predictor_type"] != "binary_classifier":
        weights = (1.0,)
    grid = sorted(itertools.product(*(range(len(v)) for v in (lrs, wds, l1s, weights))), key=sum)
    wanted = len(grid) if hp["num_models"] == "auto" else hp["num_models"]
    models = []
    for n in range(wanted):  # beyond the grid: the same grid again at scaled learning rates
        lr_i, wd_i, l1_i, w_i = grid[n % len(grid)]
        round_ = n // len(grid)  # 0, 1, 2, 3, 4 … → learning rates × 1, 1/2, 2, 1/4, 4 …
        scale = 2.0 ** ((round_ + 1) // 2 * (-1) ** round_)
        models.append(ModelParams(lrs[lr_i] * scale, wds[wd_i], l1s[l1_i], weights[w_i]))
    return tuple(models)
