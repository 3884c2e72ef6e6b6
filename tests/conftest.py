"""Shared fixtures: smlocal running in-process on a free port, and boto3 clients pointed at it."""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.config import Config as BotoConfig

from emulator.testing import LocalServer

# Never let a test reach real AWS, whatever the developer's environment holds.
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
})
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)

NO_RETRY = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    with LocalServer(data_dir=tmp_path_factory.mktemp("smlocal"), runtime="fake") as srv:
        yield srv


@pytest.fixture(scope="session")
def endpoint_url(server):
    return server.url


@pytest.fixture(scope="session")
def session():
    return boto3.session.Session(region_name="us-east-1")


@pytest.fixture(scope="session")
def sm(session, endpoint_url):
    return session.client("sagemaker", endpoint_url=endpoint_url, config=NO_RETRY)


@pytest.fixture(scope="session")
def smr(session, endpoint_url):
    return session.client("sagemaker-runtime", endpoint_url=endpoint_url, config=NO_RETRY)


@pytest.fixture(scope="session")
def s3(session, endpoint_url):
    return session.client("s3", endpoint_url=endpoint_url, config=NO_RETRY)
