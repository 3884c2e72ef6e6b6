"""What a program run by the process runtime sees of the world: the contract's environment, the
few variables a program needs to run, and smlocal as its AWS — never the server's own secrets.

The probe programs (tests/programs/probe) report their environment: the training program in its
model artifact, the serving program in its answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from emulator.testing import LocalServer
from tests.conftest import NO_RETRY
from tests.integration.helpers import IMAGE, ROLE, artifact_json, make_config, training_request, unique, wait_for

PROBE = Path(__file__).resolve().parents[1] / "programs" / "probe"
SERVER_ONLY = {"AWS_SECRET_ACCESS_KEY": "the-server-secret", "AWS_SESSION_TOKEN": "the-server-token",
               "AWS_ACCESS_KEY_ID": "the-server-key", "SMLOCAL_TEST_SERVER_ONLY": "private"}


@pytest.fixture()
def server(monkeypatch):
    for name, value in SERVER_ONLY.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    with LocalServer(ephemeral=True, runtime="process", process_images={IMAGE: str(PROBE)}) as running:
        yield running


def clients(server: LocalServer):
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="testing",
                                    aws_secret_access_key="testing")
    return [session.client(name, endpoint_url=server.url, config=NO_RETRY)
            for name in ("sagemaker", "s3", "sagemaker-runtime")]


def assert_contract_only(env: dict, server: LocalServer) -> None:
    assert env["AWS_ENDPOINT_URL"] == server.url  # boto3 inside reaches smlocal, not AWS
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] == "smlocal" and env["AWS_SECRET_ACCESS_KEY"] == "smlocal"
    assert "AWS_SESSION_TOKEN" not in env and "SMLOCAL_TEST_SERVER_ONLY" not in env
    assert not [k for k, v in env.items() if v in SERVER_ONLY.values()]
    assert env["PATH"] and env["LC_ALL"] == "C.UTF-8"


def test_a_training_program_gets_the_contract_environment_and_no_server_secret(server):
    sm, s3, _ = clients(server)
    bucket, name = unique("bucket"), unique("job")
    s3.create_bucket(Bucket=bucket)
    request = training_request(name, OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
                               Environment={"USER_FLAG": "on"})
    for absent in ("InputDataConfig", "CheckpointConfig"):
        del request[absent]
    sm.create_training_job(**request)
    job = wait_for(lambda: sm.describe_training_job(TrainingJobName=name),
                   lambda j: j["TrainingJobStatus"] in ("Completed", "Failed"), timeout=60)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    env = artifact_json(s3, job, bucket, "env.json")
    assert_contract_only(env, server)
    assert env["TRAINING_JOB_NAME"] == name and env["USER_FLAG"] == "on"


def test_a_serving_program_gets_the_contract_environment_and_smlocal_as_its_aws(server):
    sm, _, runtime = clients(server)
    model = unique("model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": IMAGE, "Environment": {"MODEL_FLAG": "on"}})
    endpoint = unique("endpoint")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=make_config(sm, model))
    wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"], lambda s: s == "InService",
             timeout=60)
    answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=b"{}", ContentType="application/json")
    env = json.loads(answer["Body"].read())
    assert_contract_only(env, server)
    assert env["MODEL_FLAG"] == "on" and env["SAGEMAKER_BIND_TO_PORT"]
