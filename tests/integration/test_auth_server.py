"""`--auth` enforced by a real server: refusals with AWS's codes, a key made in smlocal's IAM working
with boto3, the AWS CLI and the SageMaker SDK, and a training job whose program calls S3 with the
credentials of its role (and cannot read another account's bucket)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from emulator.testing import LocalServer
from tests.conftest import NO_RETRY
from tests.integration.helpers import (ROLE, artifact_json, make_config, make_endpoint, training_request, unique,
                                       wait_for)

ROOT_KEY, ROOT_SECRET = "AKIAAUTHSERVERROOT01", "authServerRootSecret0123456789abcdefghij"
ACCOUNT, OTHER = "123456789012", "444455556666"
PROBE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/s3-probe:latest"
SERVE_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/env-probe:latest"
PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
UNSIGNED_CONFIG = BotoConfig(signature_version=UNSIGNED, retries={"max_attempts": 1})


@pytest.fixture(scope="module")
def server():
    with LocalServer(ephemeral=True, runtime="process", auth=True, auth_root_key=f"{ROOT_KEY}:{ROOT_SECRET}",
                     stop_grace_seconds=2, process_images={PROBE_IMAGE: str(PROGRAMS / "s3probe"),
                                                           SERVE_IMAGE: str(PROGRAMS / "probe")}) as running:
        yield running


def client(server, service, key=ROOT_KEY, secret=ROOT_SECRET, token=None, account_header=None):
    made = boto3.client(service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token, config=NO_RETRY)
    if account_header:
        made.meta.events.register("before-sign", lambda request, **_: request.headers.__setitem__(
            "x-moto-account-id", account_header))
    return made


def in_other_account(server, service):
    """A client of the other account: smlocal's internal key, the one key that may name an account."""
    key, secret = server.app.authenticator.internal_credentials
    return client(server, service, key, secret, account_header=OTHER)


def error(call) -> tuple[int, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["ResponseMetadata"]["HTTPStatusCode"], info.value.response["Error"]["Code"]


CALLS = {
    "sagemaker": lambda c: c.list_models(),
    "sagemaker-runtime": lambda c: c.invoke_endpoint(EndpointName="any", Body=b"{}"),
    "s3": lambda c: c.list_buckets(),
    "sts": lambda c: c.get_caller_identity(),
    "iam": lambda c: c.list_users(),
    "logs": lambda c: c.describe_log_groups(),
    "cloudwatch": lambda c: c.list_metrics(),
}
REFUSALS = {  # service → (unsigned, wrong secret, unknown key): AWS's status and code
    "sagemaker": ((400, "MissingAuthenticationTokenException"), (400, "InvalidSignatureException"),
                  (400, "UnrecognizedClientException")),
    "sagemaker-runtime": ((403, "MissingAuthenticationTokenException"), (403, "InvalidSignatureException"),
                          (403, "UnrecognizedClientException")),
    "s3": ((403, "AccessDenied"), (403, "SignatureDoesNotMatch"), (403, "InvalidAccessKeyId")),
    "sts": ((403, "MissingAuthenticationToken"), (403, "SignatureDoesNotMatch"), (403, "InvalidClientTokenId")),
    "iam": ((403, "MissingAuthenticationToken"), (403, "SignatureDoesNotMatch"), (403, "InvalidClientTokenId")),
    "logs": ((400, "MissingAuthenticationTokenException"), (400, "InvalidSignatureException"),
             (400, "UnrecognizedClientException")),
    "cloudwatch": ((403, "MissingAuthenticationToken"), (403, "SignatureDoesNotMatch"),
                   (403, "InvalidClientTokenId")),
}


@pytest.mark.parametrize("service", sorted(CALLS))
def test_unsigned_wrongly_signed_and_unknown_key_requests_are_refused(server, service):
    call, (unsigned, wrong, unknown) = CALLS[service], REFUSALS[service]
    bare = boto3.client(service, endpoint_url=server.url, region_name="us-east-1", config=UNSIGNED_CONFIG)
    assert error(lambda: call(bare)) == unsigned
    assert error(lambda: call(client(server, service, secret="not-the-secret"))) == wrong
    assert error(lambda: call(client(server, service, key="AKIANOBODYISSUEDTHIS"))) == unknown


@pytest.mark.parametrize("service", sorted(CALLS))
def test_naming_another_account_in_moto_header_is_refused(server, service):
    status, code = error(lambda: CALLS[service](client(server, service, account_header=OTHER)))
    assert code in ("AccessDeniedException", "AccessDenied") and status in (400, 403)


def test_the_health_probe_stays_open(server):
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/_smlocal/health") as answer:
        assert answer.status == 200


def test_another_accounts_bucket_and_role_are_refused(server):
    other_s3, bucket = in_other_account(server, "s3"), unique("other-bucket")
    other_s3.create_bucket(Bucket=bucket)
    other_s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"theirs")
    assert error(lambda: client(server, "s3").get_object(Bucket=bucket, Key="secret.txt")) == (403, "AccessDenied")
    role = f"arn:aws:iam::{OTHER}:role/NotTrustingYou"
    assert error(lambda: client(server, "sts").assume_role(RoleArn=role, RoleSessionName="session")) == (403, "AccessDenied")
    arn = f"arn:aws:sagemaker:us-east-1:{OTHER}:model/theirs"
    assert error(lambda: client(server, "sagemaker").list_tags(ResourceArn=arn)) == (400, "AccessDeniedException")


def test_smlocal_serve_auth_starts_prints_its_root_key_and_enforces_it():
    import re
    import sys

    process = subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--auth", "--ephemeral", "--port", "0",
                                "--runtime", "fake"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    try:
        printed = ""
        while "listening on" not in printed:
            line = process.stdout.readline()
            assert line, f"smlocal serve --auth ended: {printed}"
            printed += line
        key, secret = re.search(r"AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", printed).groups()
        url = re.search(r"listening on (http://\S+)", printed).group(1)
        bare = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", config=UNSIGNED_CONFIG)
        assert error(bare.list_models) == (400, "MissingAuthenticationTokenException")
        signed = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                              aws_secret_access_key=secret, config=NO_RETRY)
        assert signed.list_models()["Models"] == []
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def user_key(server):
    """An access key made in smlocal's IAM with the root key."""
    iam, name = client(server, "iam"), unique("user")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_an_iam_users_key_works_with_boto3(server, user_key):
    sm, s3, bucket = client(server, "sagemaker", *user_key), client(server, "s3", *user_key), unique("bucket")
    assert sm.list_models()["Models"] == []
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="big", Body=b"x" * (3 * 1024 * 1024))  # spooled to a file, fed in pieces
    assert len(s3.get_object(Bucket=bucket, Key="big")["Body"].read()) == 3 * 1024 * 1024
    assert client(server, "sts", *user_key).get_caller_identity()["Account"] == ACCOUNT


def test_presigned_urls_of_a_known_key_work_and_tampered_ones_are_refused(server, user_key):
    import urllib.error
    import urllib.request

    s3, bucket = client(server, "s3", *user_key), unique("presigned")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="object.txt", Body=b"shared")
    for version in ("s3", "s3v4"):
        signer = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=user_key[0],
                              aws_secret_access_key=user_key[1], config=BotoConfig(signature_version=version))
        url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "object.txt"})
        with urllib.request.urlopen(url) as answer:
            assert answer.read() == b"shared"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url.replace("object.txt", "other.txt"))
        assert refused.value.code == 403 and b"SignatureDoesNotMatch" in refused.value.read()


def _aws_cli(server, key, secret, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1")
    return subprocess.run(["aws", "--endpoint-url", server.url, *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_an_iam_users_key_works_with_the_aws_cli(server, user_key, tmp_path):
    listed = _aws_cli(server, *user_key, "sagemaker", "list-models")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["Models"] == []
    bucket, local = unique("cli-bucket"), tmp_path / "file.txt"
    local.write_text("from the cli")
    assert _aws_cli(server, *user_key, "s3", "mb", f"s3://{bucket}").returncode == 0
    copied = _aws_cli(server, *user_key, "s3", "cp", str(local), f"s3://{bucket}/file.txt")
    assert copied.returncode == 0, copied.stderr
    back = _aws_cli(server, *user_key, "s3", "cp", f"s3://{bucket}/file.txt", "-")
    assert back.returncode == 0 and back.stdout == "from the cli", back.stderr
    refused = _aws_cli(server, user_key[0], "wrong-secret", "sagemaker", "list-models")
    assert refused.returncode != 0 and "InvalidSignatureException" in refused.stderr


def test_an_iam_users_key_works_with_the_sagemaker_sdk(server, user_key, tmp_path, monkeypatch):
    sagemaker = pytest.importorskip("sagemaker")
    import sdk_shim

    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    sdk_shim.use_smlocal(server.url)
    try:
        boto_session = boto3.Session(aws_access_key_id=user_key[0], aws_secret_access_key=user_key[1],
                                     region_name="us-east-1")
        session = sagemaker.Session(boto_session=boto_session)
        bucket = unique("sdk-bucket")
        boto_session.client("s3").create_bucket(Bucket=bucket)
        (tmp_path / "data.csv").write_text("1,2\n")
        uri = session.upload_data(str(tmp_path / "data.csv"), bucket=bucket, key_prefix="sdk")
        assert uri == f"s3://{bucket}/sdk/data.csv"
        assert session.sagemaker_client.list_models()["Models"] == []
    finally:
        sdk_shim.stop_using_smlocal()


def run_job(sm, name: str, image: str, bucket: str, **overrides) -> dict:
    """A training job of `image` with no input channel, its model to `bucket`; its description once it ends."""
    request = training_request(name, OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"}, **overrides)
    request["AlgorithmSpecification"]["TrainingImage"] = image
    for absent in ("InputDataConfig", "CheckpointConfig"):
        request.pop(absent, None)
    sm.create_training_job(**request)
    return wait_for(lambda: sm.describe_training_job(TrainingJobName=name),
                    lambda j: j["TrainingJobStatus"] in ("Completed", "Failed"), timeout=120)


def test_a_training_program_calls_s3_with_its_roles_credentials_and_not_another_account(server):
    s3, sm = client(server, "s3"), client(server, "sagemaker")
    bucket, other, name = unique("job-bucket"), unique("their-bucket"), unique("job")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="input/data.txt", Body=b"hello")
    theirs = in_other_account(server, "s3")
    theirs.create_bucket(Bucket=other)
    theirs.put_object(Bucket=other, Key="secret.txt", Body=b"theirs")
    job = run_job(sm, name, PROBE_IMAGE, bucket, HyperParameters={"bucket": bucket, "other_bucket": other})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert s3.get_object(Bucket=bucket, Key="written/by-job.txt")["Body"].read() == b"HELLO"
    result = artifact_json(s3, job, bucket, "result.json")
    assert result["other"] == "AccessDenied"
    assert result["access_key"] != ROOT_KEY and result["token"]  # the role's temporary key
    revoked = client(server, "s3", result["access_key"], result["secret"], token=result["token"])
    assert error(lambda: revoked.list_buckets())[0] in (400, 403)  # taken back when the job ended


def test_a_training_job_with_another_accounts_role_fails(server):
    s3, sm = client(server, "s3"), client(server, "sagemaker")
    bucket, name = unique("job-bucket"), unique("job")
    s3.create_bucket(Bucket=bucket)
    job = run_job(sm, name, PROBE_IMAGE, bucket, HyperParameters={"bucket": bucket, "other_bucket": bucket},
                  RoleArn=f"arn:aws:iam::{OTHER}:role/SageMakerRole")
    assert job["TrainingJobStatus"] == "Failed" and "Could not assume role" in job["FailureReason"]
    assert ROLE.split(":")[4] == ACCOUNT


def test_an_endpoints_containers_get_their_models_role_credentials_until_it_is_deleted(server):
    sm, model = client(server, "sagemaker"), unique("model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": SERVE_IMAGE})
    endpoint = make_endpoint(sm, make_config(sm, model))
    wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"], lambda s: s == "InService",
             timeout=60)
    answer = client(server, "sagemaker-runtime").invoke_endpoint(EndpointName=endpoint, Body=b"{}",
                                                                 ContentType="application/json")
    env = json.loads(answer["Body"].read())
    key, secret, token = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]
    role_s3 = client(server, "s3", key, secret, token=token)
    role_s3.list_buckets()  # the container's key verifies
    assert client(server, "sts", key, secret, token=token).get_caller_identity()["Arn"].startswith(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/SageMakerRole/")
    sm.delete_endpoint(EndpointName=endpoint)
    wait_for(lambda: _status(role_s3.list_buckets), lambda status: status == 403, timeout=30)


def _status(call) -> int:
    try:
        return call()["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as refused:
        return refused.response["ResponseMetadata"]["HTTPStatusCode"]


# -- the Docker bridge: verified even without --auth ------------------------------------------------

@pytest.fixture(scope="module")
def docker_server():
    from tests.training.conftest import BYO_IMAGE, byo_image_with_train, runtime_or_skip

    runtime_or_skip("docker", BYO_IMAGE, "bridge authentication")
    image = byo_image_with_train(PROGRAMS / "bridgeprobe" / "train", "smlocal-test/bridgeprobe")
    with LocalServer(ephemeral=True, runtime="docker", stop_grace_seconds=5) as running:  # no --auth
        running.image = image
        yield running


@pytest.mark.docker
def test_without_auth_loopback_stays_open_and_the_docker_bridge_verifies(docker_server):
    bare = boto3.client("sagemaker", endpoint_url=docker_server.url, region_name="us-east-1", config=UNSIGNED_CONFIG)
    assert bare.list_models()["Models"] == []  # loopback: trusted, as before
    sm, s3 = (boto3.client(name, endpoint_url=docker_server.url, region_name="us-east-1", config=NO_RETRY)
              for name in ("sagemaker", "s3"))
    bucket, name = unique("bridge-bucket"), unique("job")
    s3.create_bucket(Bucket=bucket)
    job = run_job(sm, name, docker_server.image, bucket)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    result = artifact_json(s3, job, bucket, "result.json")
    assert result["unsigned"][0] == 400 and "MissingAuthenticationTokenException" in result["unsigned"][1]
    assert result["wrong"][0] == 403 and "SignatureDoesNotMatch" in result["wrong"][1]
    assert result["own"][0] == 200 and f"assumed-role/SageMakerRole/{name}" in result["own"][1], result["own"]


def test_an_endpoint_whose_model_names_another_accounts_role_fails(server):
    sm, model = client(server, "sagemaker"), unique("model")
    sm.create_model(ModelName=model, ExecutionRoleArn=f"arn:aws:iam::{OTHER}:role/SageMakerRole",
                    PrimaryContainer={"Image": SERVE_IMAGE})
    endpoint = make_endpoint(sm, make_config(sm, model), wait=False)
    described = wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint), lambda e: e["EndpointStatus"] != "Creating",
                         timeout=60)
    assert described["EndpointStatus"] == "Failed" and "Could not assume role" in described["FailureReason"]
