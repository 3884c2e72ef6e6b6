"""Built-in algorithms' own metric definitions, through boto3 on the process runtime: a job that
names no MetricDefinitions gets the algorithm's (shown by DescribeTrainingJob, as AWS shows them),
and FinalMetricDataList carries the values the algorithm logged, under AWS's names."""

from __future__ import annotations

import numpy as np
import pytest

from algorithms.io import encode_records, ndarray
from emulator.testing import LocalServer
from tests.algorithms.conftest import image_uri, model_artifacts, train, upload
from tests.training.conftest import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalServer(data_dir=tmp_path_factory.mktemp("metrics"), runtime="process", stop_grace_seconds=5) as server:
        yield Stack(server, "process")


def final_metrics(job: dict) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}


def csv(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(f"{v:.7g}" for v in row) for row in rows).encode()


def regression(seed: int, rows: int = 600, features: int = 5) -> np.ndarray:
    """Label first (the CSV layout of the built-ins): y = X·w + 0.1 noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    y = X @ np.arange(1, features + 1) + 0.1 * rng.normal(size=rows)
    return np.column_stack([y, X]).astype(np.float32)


def test_kmeans_reports_test_msd_under_its_aws_name(stack):
    rng = np.random.default_rng(3)
    centres = rng.uniform(-10, 10, (4, 6))
    points = np.concatenate([rng.normal(c, 1.0, (200, 6)) for c in centres]).astype(np.float32)
    test = points[::4]
    job = train(stack, "kmeans", {"k": 4, "feature_dim": 6, "mini_batch_size": 200},
                {"train": (upload(stack, {"train.pbr": encode_records(features=points)}), "application/x-recordio-protobuf"),
                 "test": (upload(stack, {"test.csv": csv(test)}), "text/csv;label_size=0")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    definitions = {d["Name"]: d["Regex"] for d in job["AlgorithmSpecification"]["MetricDefinitions"]}
    assert definitions["test:msd"] == r"#quality_metric: host=\S+, test msd <loss>=(\S+)"
    metrics = final_metrics(job)
    assert {"test:msd", "train:msd", "train:progress"} <= set(metrics)
    centroids = ndarray.loads(model_artifacts(stack, job)["model_algo-1"])[0]
    expected = ((test[:, None, :] - centroids[None]) ** 2).sum(-1).min(1).mean()
    assert metrics["test:msd"] == pytest.approx(expected, rel=1e-3)
    assert metrics["train:progress"] == 100.0


def test_linear_learner_reports_validation_and_test_losses(stack):
    channels = {name: (upload(stack, {f"{name}.csv": csv(regression(seed))}), "text/csv")
                for name, seed in (("train", 1), ("validation", 2), ("test", 3))}
    job = train(stack, "linear-learner", {"predictor_type": "regressor", "feature_dim": 5, "epochs": 5,
                                          "num_models": 2, "mini_batch_size": 100}, channels)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    metrics = final_metrics(job)
    names = {"train:objective_loss", "validation:objective_loss", "validation:objective_loss:final",
             "validation:rmse", "validation:mse", "test:objective_loss", "test:mse", "test:absolute_loss",
             "train:progress"}
    assert names <= set(metrics), sorted(metrics)
    # y has variance 55 around a linear fit with noise 0.01: a trained model's errors are tiny.
    assert 0 <= metrics["test:mse"] < 1.0
    assert metrics["validation:rmse"] == pytest.approx(np.sqrt(metrics["validation:mse"]), rel=1e-4)


@pytest.mark.parametrize("repository,tag", [("sagemaker-xgboost", "1.7-1"), ("xgboost", "1")])
def test_xgboost_reports_train_and_validation_rmse(stack, repository, tag, monkeypatch):
    import tests.algorithms.conftest as helpers

    monkeypatch.setattr(helpers, "image_uri", lambda repo, _tag="1", region="us-east-1": image_uri(repo, tag, region))
    channels = {name: (upload(stack, {f"{name}.csv": csv(regression(seed))}), "text/csv")
                for name, seed in (("train", 4), ("validation", 5))}
    job = helpers.train(stack, repository, {"num_round": 30, "max_depth": 3, "eval_metric": "rmse"}, channels)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    names = [d["Name"] for d in job["AlgorithmSpecification"]["MetricDefinitions"]]
    assert "validation:rmse" in names and len(names) <= 40
    metrics = final_metrics(job)
    assert {"train:rmse", "validation:rmse"} <= set(metrics)
    spread = float(regression(5)[:, 0].std())  # predicting the mean would score about this
    assert 0 < metrics["train:rmse"] < metrics["validation:rmse"] < spread


def test_callers_own_definitions_win(stack):
    uri = upload(stack, {"train.csv": csv(regression(6)[:, 1:])})
    own = [{"Name": "mine:msd", "Regex": r"train msd <loss>=(\S+)"}]
    stack.sm.create_training_job(
        TrainingJobName="kmeans-own-metrics", RoleArn="arn:aws:iam::123456789012:role/R",
        AlgorithmSpecification={"TrainingImage": image_uri("kmeans"), "TrainingInputMode": "File",
                                "MetricDefinitions": own},
        HyperParameters={"k": "2", "feature_dim": "5"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv;label_size=0", "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{uri.split('/')[2]}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1})
    waiter = stack.sm.get_waiter("training_job_completed_or_stopped")
    waiter.wait(TrainingJobName="kmeans-own-metrics", WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    job = stack.sm.describe_training_job(TrainingJobName="kmeans-own-metrics")
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == own
    assert set(final_metrics(job)) == {"mine:msd"}


def test_user_images_get_no_definitions():
    from emulator.services.training.metrics import builtin_metric_definitions

    assert builtin_metric_definitions("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-image:latest") == []
    for repository in ("kmeans", "linear-learner", "pca", "knn", "factorization-machines", "randomcutforest",
                       "xgboost", "sagemaker-xgboost"):
        definitions = builtin_metric_definitions(image_uri(repository))
        assert 0 < len(definitions) <= 40 and len({d["Name"] for d in definitions}) == len(definitions)
