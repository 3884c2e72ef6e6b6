"""Factorization Machines' hyperparameters as SageMaker documents them (Developer Guide,
"Factorization Machines Hyperparameters"; the SDK's ``FactorizationMachines``), checked before
any data is read so a bad job fails at once with ``ClientError: …``."""

from __future__ import annotations

from algorithms.common.hyperparameters import HP, choice, floating, integer

GROUPS = ("bias", "linear", "factors")
LEARNING_RATES = {"bias": 0.1, "linear": 0.001, "factors": 0.0001}
WEIGHT_DECAYS = {"bias": 0.01, "linear": 0.001, "factors": 0.00001}
INIT_SIGMAS = {"bias": 0.01, "linear": 0.01, "factors": 0.001}


def _non_negative(v) -> bool:
    return v >= 0


def _group(name: str) -> list[HP]:
    return [
        HP(f"{name}_lr", floating, LEARNING_RATES[name], _non_negative, "a non-negative float"),
        HP(f"{name}_wd", floating, WEIGHT_DECAYS[name], _non_negative, "a non-negative float"),
        HP(f"{name}_init_method", choice("normal", "uniform", "constant"), "normal"),
        HP(f"{name}_init_scale", floating, None, _non_negative, "a non-negative float"),
        HP(f"{name}_init_sigma", floating, INIT_SIGMAS[name], _non_negative, "a non-negative float"),
        HP(f"{name}_init_value", floating, None),
    ]


SPECS = [
    HP("feature_dim", integer, check=lambda v: v > 0, expect="a positive integer"),
    HP("num_factors", integer, check=lambda v: v > 0, expect="a positive integer"),
    HP("predictor_type", choice("binary_classifier", "regressor")),
    HP("epochs", integer, 1, lambda v: v > 0, "a positive integer"),
    HP("mini_batch_size", integer, 1000, lambda v: v > 0, "a positive integer"),
    HP("clip_gradient", floating, None, lambda v: v > 0, "a positive float"),
    HP("eps", floating, None, lambda v: v > 0, "a positive float"),
    HP("rescale_grad", floating, None, lambda v: v > 0, "a positive float"),
    *[hp for group in GROUPS for hp in _group(group)],
]
