"""Hyperparameters as SageMaker's built-in algorithms take them: every value a string (the SDK sends
`"True"`, `"10"`, JSON lists such as `'["msd"]'`), required ones checked, defaults filled, internal
keys (`_tuning_objective_metric`, `_kvstore`, `sagemaker_*`) accepted and ignored, and every problem
reported as a ClientError before any data is read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from algorithms.common.errors import ClientError

REQUIRED = object()


def integer(text: str) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def floating(text: str) -> float:
    return float(text)


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"{text!r} is not true or false")


def json_list(text: str) -> list:
    value = json.loads(text) if text.strip().startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ValueError(f"{text!r} is not a list")
    return value


def choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"{text!r} is not one of {', '.join(options)}")
        return text
    return parse


def auto_or(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Values that may be the word `auto` (Linear Learner's learning_rate, K-Means' trials…)."""
    def parsed(text: str) -> Any:
        return "auto" if text.strip().lower() == "auto" else parse(text)
    return parsed


@dataclass(frozen=True)
class HP:
    name: str
    parse: Callable[[str], Any]
    default: Any = REQUIRED
    check: Callable[[Any], bool] | None = None
    expect: str = ""  # words for the check, e.g. "an integer greater than 0"


def parse_hyperparameters(raw: dict[str, str], specs: list[HP]) -> dict[str, Any]:
    known = {spec.name: spec for spec in specs}
    unexpected = sorted(k for k in raw if k not in known and not k.startswith(("_", "sagemaker_")))
    if unexpected:
        raise ClientError(
            "Additional hyperparameters are not allowed (" + ", ".join(repr(k) for k in unexpected)
            + (" was" if len(unexpected) == 1 else " were") + " unexpected)")
    missing = [s.name for s in specs if s.default is REQUIRED and raw.get(s.name) in (None, "")]
    if missing:
        raise ClientError(
            "No value(s) were specified for " + ", ".join(repr(m) for m in missing)
            + " which are required hyperparameter(s)")
    values = {}
    for spec in specs:
        text = raw.get(spec.name)
        if text is None or text == "":
            values[spec.name] = spec.default
            continue
        values[spec.name] = _one(spec, _unquote(str(text)))
    return values


def _one(spec: HP, text: str) -> Any:
    try:
        value = spec.parse(text)
    except (ValueError, TypeError) as exc:
        raise ClientError(f"Unable to parse hyperparameter {spec.name!r}: {exc}") from None
    if spec.check is not None and value != "auto" and not spec.check(value):
        raise ClientError(f"Hyperparameter {spec.name!r} must be {spec.expect or 'valid'}, not {text!r}")
    return value


def _unquote(text: str) -> str:
    """Framework-style estimators JSON-encode every value (`'"10"'`)."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return str(json.loads(text))
        except ValueError:
            pass
    return text
