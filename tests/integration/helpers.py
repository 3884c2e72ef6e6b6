"""Small helpers the API tests share: unique names, request builders, polling and error capture."""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-image:latest"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_of(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value


def code_and_message(err: ClientError) -> tuple[str, str]:
    return err.response["Error"]["Code"], err.response["Error"]["Message"]


def artifact_json(s3, job: dict, bucket: str, name: str):
    """The JSON file `name` inside a completed training job's model.tar.gz."""
    key = job["ModelArtifacts"]["S3ModelArtifacts"].split(f"{bucket}/", 1)[1]
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        return json.loads(tar.extractfile(name).read())


def wait_for(fetch, predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        time.sleep(interval)


def make_model(sm, name=None, **extra):
    name = name or unique("model")
    sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE, **extra)
    return name


def make_config(sm, model, name=None, variants=None, **extra):
    name = name or unique("config")
    variants = variants or [{"VariantName": "AllTraffic", "ModelName": model,
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}]
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants, **extra)
    return name


def make_endpoint(sm, config, name=None, wait=True):
    name = name or unique("endpoint")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    if wait:
        wait_for(lambda: sm.describe_endpoint(EndpointName=name)["EndpointStatus"], lambda s: s == "InService")
    return name


def training_request(name: str, **overrides) -> dict:
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File",
                                   "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]},
        "RoleArn": ROLE,
        "InputDataConfig": [{
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/train/"}},
            "ContentType": "text/csv",
        }],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {"epochs": "3", "lr": "0.1"},
        "Environment": {"MY_FLAG": "1"},
        "CheckpointConfig": {"S3Uri": "s3://bucket/checkpoints"},
    }
    request.update(overrides)
    return request
