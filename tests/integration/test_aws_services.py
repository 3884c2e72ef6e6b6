"""The other services on the same port, reached with AWS_ENDPOINT_URL alone (no endpoint_url)."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest

from tests.integration.helpers import unique


@pytest.fixture()
def env_session(server, monkeypatch):
    for key, value in server.client_env().items():
        monkeypatch.setenv(key, value)
    return boto3.session.Session()


def test_every_client_reaches_smlocal_through_aws_endpoint_url(env_session):
    s3 = env_session.client("s3")
    bucket = unique("bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1,2,3\n")
    s3.put_object(Bucket=bucket, Key="data/validation.csv", Body=b"4,5,6\n")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="data/")
    assert sorted(o["Key"] for o in listed["Contents"]) == ["data/train.csv", "data/validation.csv"]
    assert s3.get_object(Bucket=bucket, Key="data/train.csv")["Body"].read() == b"1,2,3\n"

    identity = env_session.client("sts").get_caller_identity()
    assert identity["Account"] == "123456789012"

    logs = env_session.client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["arn"].startswith(
        "arn:aws:logs:us-east-1:123456789012:log-group:")

    assert env_session.client("iam").list_roles()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert isinstance(env_session.client("sagemaker").list_models()["Models"], list)


def test_region_comes_from_the_credential_scope(server):
    west = boto3.client("sagemaker", region_name="eu-west-1", endpoint_url=server.url)
    name = unique("regional")
    arn = west.create_model(ModelName=name, PrimaryContainer={"Image": "img"},
                            ExecutionRoleArn="arn:aws:iam::123456789012:role/role-name")["ModelArn"]
    assert arn.startswith("arn:aws:sagemaker:eu-west-1:123456789012:model/")
    east = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=server.url)
    assert name not in [m["ModelName"] for m in east.list_models(NameContains=name)["Models"]]


def test_account_follows_the_access_key_like_moto(server):
    # A 12-digit access key is not special; moto maps keys it issued (STS/IAM) to their accounts.
    iam = boto3.client("iam", endpoint_url=server.url, region_name="us-east-1")
    user = unique("user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sts = boto3.client("sts", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    sm = boto3.client("sagemaker", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    account = sts.get_caller_identity()["Account"]
    arn = sm.create_model(ModelName=unique("acct"), PrimaryContainer={"Image": "img"},
                          ExecutionRoleArn="arn:aws:iam::123456789012:role/role-name")["ModelArn"]
    assert arn.split(":")[4] == account


def aws(server, *args):
    env = {**os.environ, **server.client_env()}
    result = subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"],
                            capture_output=True, text=True, env=env, timeout=120)
    return result


def test_aws_cli_with_aws_endpoint_url(server, tmp_path):
    name = unique("cli-model")
    created = aws(server, "sagemaker", "create-model", "--model-name", name,
                  "--primary-container", "Image=123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
                  "--execution-role-arn", "arn:aws:iam::123456789012:role/role-name")
    assert created.returncode == 0, created.stderr
    described = aws(server, "sagemaker", "describe-model", "--model-name", name)
    assert described.returncode == 0 and f'"ModelName": "{name}"' in described.stdout
    missing = aws(server, "sagemaker", "describe-model", "--model-name", "ghost-model")
    assert missing.returncode != 0
    assert "ValidationException" in missing.stderr and 'Could not find model' in missing.stderr

    bucket = unique("cli-bucket")
    (tmp_path / "f.txt").write_text("hello")
    assert aws(server, "s3", "mb", f"s3://{bucket}").returncode == 0
    assert aws(server, "s3", "cp", str(tmp_path / "f.txt"), f"s3://{bucket}/f.txt").returncode == 0
    listed = aws(server, "s3", "ls", f"s3://{bucket}/")
    assert "f.txt" in listed.stdout


def test_aws_cli_with_endpoint_url_flag(server):
    env = {k: v for k, v in {**os.environ, **server.client_env()}.items() if k != "AWS_ENDPOINT_URL"}
    result = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", server.url, "sagemaker",
                             "list-endpoints", "--output", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"Endpoints"' in result.stdout
    identity = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", server.url, "sts",
                               "get-caller-identity", "--output", "json"], capture_output=True, text=True, env=env,
                              timeout=120)
    assert '"Account": "123456789012"' in identity.stdout
