"""The two XGBoost images answer text/csv differently, through boto3 on the process runtime: the
legacy `xgboost:1` one comma-joined line, `sagemaker-xgboost:<version>` one score per line. The
serving program learns which image it stands for from $SMLOCAL_ALGORITHM_IMAGE."""

from __future__ import annotations

import uuid

import pytest

from emulator.testing import LocalServer
from tests.algorithms.conftest import ROLE, image_uri, invoke, upload
from tests.algorithms.test_builtin_metrics import csv, regression
from tests.training.conftest import Stack

LEGACY, CURRENT = image_uri("xgboost", "1"), image_uri("sagemaker-xgboost", "1.7-1")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalServer(data_dir=tmp_path_factory.mktemp("xgb-images"), runtime="process", stop_grace_seconds=5) as server:
        yield Stack(server, "process")


@pytest.fixture(scope="module")
def artifact(stack) -> str:
    """A model trained by the legacy image (the same program trains for both)."""
    name = f"xgb-legacy-{uuid.uuid4().hex[:8]}"
    uri = upload(stack, {"train.csv": csv(regression(7))})
    stack.sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE, AlgorithmSpecification={"TrainingImage": LEGACY, "TrainingInputMode": "File"},
        HyperParameters={"num_round": "20", "max_depth": "3"},
        InputDataConfig=[{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{uri.split('/')[2]}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1})
    stack.sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    job = stack.sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job["ModelArtifacts"]["S3ModelArtifacts"]


def endpoint(stack, image: str, artifact: str) -> str:
    name = f"xgb-{uuid.uuid4().hex[:8]}"
    stack.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image, "ModelDataUrl": artifact})
    stack.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    stack.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    stack.sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return name


def test_legacy_image_answers_one_comma_joined_line_and_the_current_one_a_line_per_record(stack, artifact):
    rows = csv(regression(8, rows=5)[:, 1:])
    old, new = endpoint(stack, LEGACY, artifact), endpoint(stack, CURRENT, artifact)
    legacy_body, legacy_type = invoke(stack, old, rows, "text/csv", "text/csv")
    current_body, current_type = invoke(stack, new, rows, "text/csv", "text/csv")
    assert legacy_type == current_type == "text/csv"
    legacy, current = legacy_body.decode(), current_body.decode()
    assert "\n" not in legacy and legacy.count(",") == 4  # xgboost:1 → "p1,p2,p3,p4,p5"
    assert current.endswith("\n") and len(current.splitlines()) == 5 and "," not in current
    assert [float(v) for v in legacy.split(",")] == [float(v) for v in current.splitlines()]
    # JSON is the same from both images
    as_json = [invoke(stack, name, rows, "text/csv", "application/json")[0] for name in (old, new)]
    assert as_json[0] == as_json[1]


@pytest.mark.parametrize("uri,legacy", [
    (image_uri("xgboost", "1"), True), (image_uri("xgboost", "latest"), True), (image_uri("xgboost", "0.72"), True),
    (image_uri("sagemaker-xgboost", "1.7-1"), False), (image_uri("sagemaker-xgboost", "0.90-2"), False), ("", False),
])
def test_legacy_image_is_told_by_the_repository(monkeypatch, uri, legacy):
    from algorithms.xgboost import serving

    monkeypatch.setenv(serving.IMAGE_ENV, uri)
    assert serving.legacy_image() is legacy
