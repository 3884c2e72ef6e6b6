"""The metric definitions SageMaker attaches to a training job that runs a built-in algorithm.

On AWS a job whose TrainingImage is a built-in algorithm (kmeans, linear-learner, xgboost, …) and
that names no MetricDefinitions gets the algorithm's own list: DescribeTrainingJob then shows it
under AlgorithmSpecification.MetricDefinitions (a real `describe-training-job` of a
`sagemaker-xgboost:1.5-1` job created without any lists `train:rmse`, `validation:rmse`, … there)
and FinalMetricDataList carries the values, which is what the SDK's TrainingJobAnalytics and
tuning objectives such as `validation:rmse` or `test:msd` read. We do the same at
CreateTrainingJob, so the stored job, the log parser and DescribeTrainingJob all agree.

The names and regexes follow AWS's (the `#quality_metric: host=\\S+, test msd <loss>=(\\S+)` family
for the first-party algorithms, the `.*\\[[0-9]+\\].*#011validation-rmse:…` family for XGBoost), and
they match the lines our algorithms/ print (algorithms/common/logs.py, algorithms/xgboost/training.py).
A list never exceeds the API's 40 definitions. A caller's own MetricDefinitions always win.
"""

from __future__ import annotations

import re
import threading

from emulator.runtime.images import resolve

_FLOAT = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
PROGRESS = {"Name": "train:progress", "Regex": r"#progress_metric: host=\S+, completed (\S+) %"}
THROUGHPUT = {"Name": "train:throughput", "Regex": r"#throughput_metric: host=\S+, train throughput=(\S+) records/second"}


def quality(channel: str, name: str, kind: str, pattern: str | None = None, *, epoch: bool = False,
            suffix: str = "") -> dict:
    """`#quality_metric: host=algo-1, [epoch=N, ]<channel> <name> <loss|score>=v` as a definition."""
    where = r"epoch=\S+, " if epoch else ""
    return {"Name": f"{channel}:{name}{suffix}",
            "Regex": rf"#quality_metric: host=\S+, {where}{channel} {pattern or name} <{kind}>=(\S+)"}


def xgboost_metric(channel: str, name: str) -> dict:
    return {"Name": f"{channel}:{name}", "Regex": rf".*\[[0-9]+\].*#011{channel}-{name}:{_FLOAT}.*"}


def _kmeans() -> list[dict]:
    return [quality("test", "msd", "loss"), quality("test", "ssd", "loss"), quality("train", "msd", "loss"),
            PROGRESS, THROUGHPUT]


def _linear_learner() -> list[dict]:
    objective = r"\S+_objective"
    found = [quality("train", "objective_loss", "loss", objective, epoch=True),
             quality("validation", "objective_loss", "loss", objective, epoch=True),
             quality("train", "objective_loss", "loss", objective, suffix=":final"),
             quality("validation", "objective_loss", "loss", objective, suffix=":final"),
             quality("test", "objective_loss", "loss", objective),
             quality("validation", "rmse", "loss")]
    for channel in ("train", "validation", "test"):
        found += [quality(channel, "mse", "loss"), quality(channel, "absolute_loss", "loss"),
                  quality(channel, "binary_classification_accuracy", "score"),
                  quality(channel, "binary_f_beta", "score", r"binary_f_\S+"),
                  quality(channel, "precision", "score"), quality(channel, "recall", "score")]
    for channel in ("validation", "test"):
        found += [quality(channel, "multiclass_accuracy", "score"),
                  quality(channel, "multiclass_top_k_accuracy", "score", r"multiclass_top_k_accuracy_\S+"),
                  quality(channel, "macro_precision", "score"), quality(channel, "macro_recall", "score"),
                  quality(channel, "macro_f_beta", "score", r"macro_f_\S+"), quality(channel, "dcg", "score")]
    return found + [PROGRESS, THROUGHPUT]


# The evaluation metrics of XGBoost and of SageMaker's container (accuracy, f1, r2, …), train and validation.
XGBOOST_METRICS = ("accuracy", "auc", "aucpr", "cox-nloglik", "error", "f1", "gamma-deviance", "gamma-nloglik",
                   "logloss", "mae", "map", "merror", "mlogloss", "mse", "ndcg", "poisson-nloglik", "r2", "rmse",
                   "tweedie-nloglik")


def _xgboost() -> list[dict]:
    return [xgboost_metric(channel, name) for channel in ("train", "validation") for name in XGBOOST_METRICS]


def _factorization_machines() -> list[dict]:
    found = []
    for channel, epoch in (("train", True), ("test", False)):
        found += [quality(channel, "rmse", "loss", epoch=epoch),
                  quality(channel, "binary_classification_accuracy", "score", epoch=epoch),
                  quality(channel, "binary_classification_cross_entropy", "loss", epoch=epoch),
                  quality(channel, "binary_f_beta", "score", r"binary_f_\S+", epoch=epoch)]
    return found + [PROGRESS, THROUGHPUT]


def _knn() -> list[dict]:
    return [quality("test", "accuracy", "score"), quality("test", "mse", "loss")]


def _random_cut_forest() -> list[dict]:
    return [quality("test", name, "score") for name in ("f1", "precision", "recall", "accuracy")] + [PROGRESS]


def _pca() -> list[dict]:
    return [PROGRESS]  # AWS documents no PCA metric to tune on


# algorithms/<package> → its definitions (legacy `xgboost:1` and `sagemaker-xgboost:*` share one).
DEFINITIONS = {
    "kmeans": _kmeans, "linear_learner": _linear_learner, "xgboost": _xgboost,
    "factorization_machines": _factorization_machines, "knn": _knn, "random_cut_forest": _random_cut_forest,
    "pca": _pca,
}


def builtin_metric_definitions(image: str) -> list[dict]:
    """The built-in algorithm's definitions for `image`, or [] for any other image."""
    target = resolve(image or "")
    make = DEFINITIONS.get(target.algorithm or "")
    return make() if make else []


# MetricDefinitions run on each log line with TAB shown as `#011`, as CloudWatch shows it.
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)", re.IGNORECASE)


def _leading_number(text: str) -> float:
    """The number a capture starts with: built-in images' regexes end in (\\S+), which after TAB
    → #011 also swallows the next metric (`0.95#011validation-error:0.1`)."""
    match = _NUMBER.match(text or "")
    if match is None:
        raise ValueError(text)
    return float(match.group(0))


class MetricParser:
    """Keeps the last value each MetricDefinition's regex captured (group 1)."""

    def __init__(self, definitions: list[dict]):
        self.rules = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
        self.latest: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def feed(self, line: str, at: float) -> None:
        if not self.rules:
            return
        shown = line.replace("\t", "#011")
        for name, pattern in self.rules:
            match = pattern.search(shown)
            if match is None:
                continue
            try:
                value = _leading_number(match.group(1))
            except (IndexError, TypeError, ValueError):
                continue
            with self._lock:
                self.latest[name] = (value, at)

    def final(self) -> list[dict]:
        with self._lock:
            return [{"MetricName": name, "Value": value, "Timestamp": at}
                    for name, (value, at) in sorted(self.latest.items())]
