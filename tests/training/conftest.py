"""Training-contract fixtures: smlocal on the process runtime and (where an engine answers) on Docker,
with the example bring-your-own image under docker/byo-example registered for both."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest

from emulator.runtime.select import docker_available
from emulator.testing import LocalServer
from tests.conftest import NO_RETRY

REPO = Path(__file__).resolve().parents[2]
BYO_BIN = REPO / "docker" / "byo-example" / "bin"
BYO_IMAGE = "smlocal/byo-example:latest"


def _docker_ready() -> str | None:
    """None when Docker tests can run, else why not."""
    if not docker_available():
        return "no Docker engine answers (start one with `bash docker/engine.sh`)"
    import docker

    try:
        docker.from_env().images.get(BYO_IMAGE)
    except Exception:
        return f"the image {BYO_IMAGE} is not built (run `bash docker/build-images.sh`)"
    return None


@pytest.fixture(scope="session", params=["process", "docker"])
def runtime_name(request):
    if request.param == "docker":
        why = _docker_ready()
        if why:
            if os.environ.get("CI"):
                pytest.fail(f"Docker contract tests cannot run in CI: {why}")
            pytest.skip(f"Docker contract tests skipped: {why}")
    return request.param


class Stack:
    """A running smlocal plus the clients a test needs."""

    def __init__(self, server: LocalServer, runtime: str):
        self.server = server
        self.runtime = runtime
        self.url = server.url
        session = boto3.session.Session(region_name="us-east-1")
        self.sm = session.client("sagemaker", endpoint_url=server.url, config=NO_RETRY)
        self.s3 = session.client("s3", endpoint_url=server.url, config=NO_RETRY)
        self.logs = session.client("logs", endpoint_url=server.url, config=NO_RETRY)
        self.image = BYO_IMAGE

    @property
    def work_dir(self) -> Path:
        return Path(self.server.app.services.training.work_dir)


@pytest.fixture(scope="session")
def stack(runtime_name, tmp_path_factory):
    server = LocalServer(data_dir=tmp_path_factory.mktemp(f"smlocal-{runtime_name}"), runtime=runtime_name,
                         process_images={BYO_IMAGE: str(BYO_BIN)}, stop_grace_seconds=5, max_concurrent_jobs=4)
    with server:
        yield Stack(server, runtime_name)
