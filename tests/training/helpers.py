"""Building and reading training jobs for the contract tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
import uuid

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
TERMINAL = ("Completed", "Failed", "Stopped")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def bucket(stack) -> str:
    name = unique("bucket")
    stack.s3.create_bucket(Bucket=name)
    return name


def put(stack, bucket_name: str, key: str, body: bytes) -> str:
    stack.s3.put_object(Bucket=bucket_name, Key=key, Body=body)
    return hashlib.sha256(body).hexdigest()


def channel(name: str, uri: str, **extra) -> dict:
    distribution = extra.pop("distribution", "FullyReplicated")
    data_type = extra.pop("data_type", "S3Prefix")
    source = {"S3DataType": data_type, "S3Uri": uri, "S3DataDistributionType": distribution}
    source.update(extra.pop("source", {}))
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}, **extra}


def start_job(stack, bucket_name: str, channels: list[dict], hyperparameters: dict | None = None,
              instances: int = 1, **extra) -> str:
    name = unique("job")
    algorithm = {"TrainingImage": stack.image, "TrainingInputMode": extra.pop("mode", "File"),
                 "MetricDefinitions": [{"Name": "train:loss", "Regex": "loss=([0-9.]+)"},
                                       {"Name": "train:rmse", "Regex": "#011train-rmse:([0-9.]+)"}]}
    stack.sm.create_training_job(
        TrainingJobName=name, AlgorithmSpecification=algorithm, RoleArn=ROLE, InputDataConfig=channels,
        HyperParameters=hyperparameters or {}, OutputDataConfig={"S3OutputPath": f"s3://{bucket_name}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": instances, "VolumeSizeInGB": 1},
        StoppingCondition=extra.pop("stopping", {"MaxRuntimeInSeconds": 600}),
        Environment=extra.pop("environment", {"USER_FLAG": "on"}), **extra)
    return name


def wait(stack, name: str, statuses=TERMINAL, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = stack.sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in statuses or job.get("SecondaryStatus") in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} still {job['TrainingJobStatus']}/{job['SecondaryStatus']}")
        time.sleep(0.1)


def tarball(stack, uri: str) -> dict[str, bytes]:
    bucket_name, key = uri[5:].split("/", 1)
    data = stack.s3.get_object(Bucket=bucket_name, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def model_files(stack, job: dict) -> dict[str, bytes]:
    return tarball(stack, job["ModelArtifacts"]["S3ModelArtifacts"])


def report(stack, job: dict, host: str = "algo-1") -> dict:
    return json.loads(model_files(stack, job)[f"report-{host}.json"])


def log_lines(stack, name: str) -> dict[str, list[str]]:
    streams = stack.logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                              logStreamNamePrefix=f"{name}/")["logStreams"]
    return {s["logStreamName"]: [e["message"] for e in stack.logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"])["events"]]
        for s in streams}


def gz(data: bytes) -> bytes:
    return gzip.compress(data)
