"""Built-in algorithm fixtures: smlocal on the process runtime (always) and on Docker (when the
engine and the smlocal/algorithms image exist; always in CI), and helpers to train, deploy and
invoke through boto3 exactly as a user would."""

from __future__ import annotations

import io
import re
import tarfile
import time
import uuid

import numpy as np
import pytest

from tests.training.conftest import Stack, runtime_or_skip
from emulator.testing import LocalServer

ALGORITHMS_IMAGE = "smlocal/algorithms:latest"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
ACCOUNTS = {"xgboost": "811284229777", "sagemaker-xgboost": "683313688378"}


def image_uri(repository: str, tag: str = "1", region: str = "us-east-1") -> str:
    account = ACCOUNTS.get(repository, "382416733822")
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}:{tag}"


@pytest.fixture(scope="session", params=["process", "docker"])
def algo_runtime(request):
    return runtime_or_skip(request.param, ALGORITHMS_IMAGE, "algorithm")


@pytest.fixture(scope="session")
def algo_stack(algo_runtime, tmp_path_factory):
    with LocalServer(data_dir=tmp_path_factory.mktemp(f"algo-{algo_runtime}"), runtime=algo_runtime,
                     stop_grace_seconds=5) as server:
        yield Stack(server, algo_runtime)


def upload(stack, objects: dict[str, bytes]) -> str:
    """Put {relative key: body} under a fresh prefix; returns the s3:// prefix."""
    bucket = f"algo-{uuid.uuid4().hex[:10]}"
    stack.s3.create_bucket(Bucket=bucket)
    for key, body in objects.items():
        stack.s3.put_object(Bucket=bucket, Key=f"data/{key}", Body=body)
    return f"s3://{bucket}/data"


def train(stack, repository: str, hyperparameters: dict, channels: dict[str, tuple[str, str]],
          instances: int = 1, distribution: str = "FullyReplicated", mode: str = "File", timeout: float = 300) -> dict:
    """channels: name → (s3 uri, content type). Waits for the job to end; returns DescribeTrainingJob."""
    name = f"{repository[:20]}-{uuid.uuid4().hex[:8]}"
    bucket = channels[next(iter(channels))][0].split("/")[2]
    stack.sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": image_uri(repository), "TrainingInputMode": mode},
        HyperParameters={k: str(v) for k, v in hyperparameters.items()},
        InputDataConfig=[{"ChannelName": ch, "ContentType": ct, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri,
            "S3DataDistributionType": distribution if ch == "train" else "FullyReplicated"}}}
            for ch, (uri, ct) in channels.items()],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": instances, "VolumeSizeInGB": 1})
    deadline = time.monotonic() + timeout
    while True:
        job = stack.sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job
        assert time.monotonic() < deadline, f"{name} did not finish in {timeout}s"
        time.sleep(0.2)


def model_artifacts(stack, job: dict) -> dict[str, bytes]:
    bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"][5:].split("/", 1)
    data = stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def job_logs(stack, job_name: str) -> list[str]:
    streams = stack.logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                              logStreamNamePrefix=f"{job_name}/")["logStreams"]
    return [e["message"] for s in streams for e in stack.logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"])["events"]]


def deploy(stack, repository: str, job: dict, instances: int = 1, timeout: float = 120, image: str | None = None,
           environment: dict | None = None) -> str:
    """An endpoint serving `job`'s model (in `image`, by default the repository's) once InService."""
    name = f"{repository[:20]}-{uuid.uuid4().hex[:8]}"
    stack.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": image or image_uri(repository), "ModelDataUrl": job["ModelArtifacts"]["S3ModelArtifacts"],
        "Environment": environment or {}})
    stack.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": instances}])
    stack.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    deadline = time.monotonic() + timeout
    while (status := stack.sm.describe_endpoint(EndpointName=name))["EndpointStatus"] == "Creating":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["EndpointStatus"] == "InService", status.get("FailureReason")
    return name


def invoke(stack, endpoint: str, body: bytes, content_type: str, accept: str | None = None):
    import boto3

    runtime = boto3.client("sagemaker-runtime", endpoint_url=stack.url, region_name="us-east-1")
    kwargs = {"Accept": accept} if accept else {}
    answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType=content_type, **kwargs)
    return answer["Body"].read(), answer["ContentType"]


def to_csv(X, y=None, weights=None, exact: bool = False) -> bytes:
    """Label first, then weight, then the features (the built-ins' CSV layout); every line ends with
    a newline (Pipe mode concatenates a channel's objects). Values carry 9 significant digits, which
    float32 data round-trips; `exact` writes each value's repr, for float64 data checked against a
    float64 reference."""
    leading = [column for column in (y, weights) if column is not None]
    table = np.column_stack([*leading, X]) if leading else X
    if exact:
        return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in table).encode()
    buffer = io.StringIO()
    np.savetxt(buffer, table, delimiter=",", fmt="%.9g")
    return buffer.getvalue().encode()


def model_error(stack, endpoint: str, body: bytes, content_type: str, accept: str | None = None) -> int:
    """The OriginalStatusCode of a request the container refuses, which AWS answers as a ModelError."""
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as info:
        invoke(stack, endpoint, body, content_type, accept)
    assert info.value.response["Error"]["Code"] == "ModelError"
    return info.value.response["OriginalStatusCode"]


def bad_requests(width: int) -> list[tuple[bytes, str, str | None, int]]:
    """(body, content type, accept, OriginalStatusCode) of the requests a dense-input container
    refuses: a content type it does not read, a value that is not a number, a row of the wrong
    width, an accept type it does not write."""
    return [(b"1,2", "text/plain", None, 415), (b"1,2,x", "text/csv", None, 400),
            (b"1,2,3", "text/csv", None, 400), (",".join(["1"] * width).encode(), "text/csv", "image/png", 406)]


def assert_metrics_logged(lines: list[str], regexes: dict[str, str]) -> None:
    """Each named regex (an algorithm's documented tuning metrics) matches some log line."""
    for name, regex in regexes.items():
        assert any(re.search(regex, line) for line in lines), f"no log line for {name}: {regex}"
