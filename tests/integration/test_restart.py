"""The real thing: `python -m emulator serve` killed with SIGKILL and started on the same data dir.

SageMaker resources (SQLite) and S3 objects (emulator/aws/s3_persistence.py) must come back as
they were acknowledged; a training job that was running cannot be resumed and ends Failed, saying
why. SIGTERM must stop the server cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig

from tests.integration.helpers import make_config, make_endpoint, make_model, training_request, unique, wait_for

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
CLIENT_CONFIG = BotoConfig(retries={"max_attempts": 1}, read_timeout=30)


class Serve:
    """One `smlocal serve` process on a free port, its output in a log file."""

    def __init__(self, data_dir: Path, log: Path, *extra: str):
        self.data_dir, self.log = data_dir, log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "emulator", "serve", "--port", str(self.port),
                 "--data-dir", str(data_dir), "--runtime", "fake", *extra],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"smlocal exited with {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/_smlocal/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"smlocal did not become healthy in {timeout}s:\n{self.output()}")

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1", config=CLIENT_CONFIG)

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int:
        os.kill(self.process.pid, sig)
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture()
def serve(tmp_path):
    started: list[Serve] = []
    data_dir = tmp_path / "data"

    def start(*extra: str) -> Serve:
        server = Serve(data_dir, tmp_path / f"serve-{len(started)}.log", *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sagemaker_state(sm, model, config, endpoint):
    return {
        "model": _strip(sm.describe_model(ModelName=model)),
        "config": _strip(sm.describe_endpoint_config(EndpointConfigName=config)),
        "tags": sm.list_tags(ResourceArn=sm.describe_model(ModelName=model)["ModelArn"])["Tags"],
        "models": [m["ModelName"] for m in sm.list_models(NameContains=model)["Models"]],
        "endpoint": {k: v for k, v in sm.describe_endpoint(EndpointName=endpoint).items()
                     if k in ("EndpointName", "EndpointArn", "EndpointConfigName", "CreationTime", "EndpointStatus")},
    }


def _strip(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def _s3_state(s3, bucket):
    state = {}
    for item in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        got = s3.get_object(Bucket=bucket, Key=item["Key"])
        state[item["Key"]] = (got["ETag"], got["ContentType"], got["LastModified"], got["Body"].read())
    return state


def test_sagemaker_and_s3_state_survive_sigkill(serve, tmp_path):
    first = serve()
    sm, s3 = first.client("sagemaker"), first.client("s3")
    model = make_model(sm, Tags=[{"Key": "owner", "Value": "restart-test"}])
    config = make_config(sm, model)
    endpoint = make_endpoint(sm, config)
    sm.add_tags(ResourceArn=sm.describe_model(ModelName=model)["ModelArn"], Tags=[{"Key": "stage", "Value": "dev"}])
    job = unique("job")
    sm.create_training_job(**training_request(job))
    bucket = unique("bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=b"1,2\n3,4\n", ContentType="text/csv")
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(os.urandom(12 * MiB))
    s3.upload_file(str(artifact), bucket, "output/model.tar.gz",
                   Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
    before_sm, before_s3 = _sagemaker_state(sm, model, config, endpoint), _s3_state(s3, bucket)
    assert before_s3["output/model.tar.gz"][0].endswith('-3"')
    assert sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "InProgress"

    assert first.kill() == -signal.SIGKILL
    second = serve()
    sm, s3 = second.client("sagemaker"), second.client("s3")
    wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"], lambda s: s == "InService")
    assert _sagemaker_state(sm, model, config, endpoint) == before_sm
    assert _s3_state(s3, bucket) == before_s3
    assert before_s3["output/model.tar.gz"][3] == artifact.read_bytes()
    described = sm.describe_training_job(TrainingJobName=job)
    assert described["TrainingJobStatus"] == "Failed"
    assert "restarted" in described["FailureReason"]


def test_a_moto_reset_is_not_undone_by_a_restart(serve):
    first = serve()
    s3 = first.client("s3")
    bucket = unique("bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert requests.post(f"{first.url}/moto-api/reset", timeout=10).status_code == 200
    first.kill()
    second = serve()
    assert bucket not in [b["Name"] for b in second.client("s3").list_buckets()["Buckets"]]


def test_sigterm_stops_the_server_cleanly(serve):
    server = serve()
    server.client("s3").create_bucket(Bucket=unique("bucket"))
    assert server.kill(signal.SIGTERM) == 0, server.output()
    assert "smlocal stopped" in server.output()


def test_a_bad_read_timeout_is_refused_with_a_message():
    done = subprocess.run([sys.executable, "-m", "emulator", "serve", "--read-timeout", "0"], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "the read timeout must be a positive number of seconds, not 0.0" in done.stderr


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for init to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
