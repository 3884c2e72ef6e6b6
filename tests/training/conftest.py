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


def _docker_ready(image: str) -> str | None:
    """None when Docker tests can run with `image`, else why not."""
    if not docker_available():
        return "no Docker engine answers (start one with `bash docker/engine.sh`)"
    import docker

    try:
        docker.from_env().images.get(image)
    except Exception:
        return f"the image {image} is not built (run `bash docker/build-images.sh`)"
    return None


def byo_image_with_train(program: Path, repository: str) -> str:
    """The example image with `program` as its `train`, tagged `repository:<program's hash>` (built once)."""
    import hashlib
    import io
    import tarfile

    import docker

    data = program.read_bytes()
    tag = f"{repository}:{hashlib.sha256(data).hexdigest()[:12]}"
    client = docker.from_env()
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, content, mode in (("Dockerfile", f"FROM {BYO_IMAGE}\nCOPY train /usr/local/bin/train\n".encode(),
                                     0o644), ("train", data, 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            tar.addfile(info, io.BytesIO(content))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    return tag


def runtime_or_skip(runtime: str, image: str, suite: str) -> str:
    """`runtime` for a suite's session fixture. Docker needs the engine and `image`: without them
    the suite's Docker half is skipped here, and fails in CI, where it must run."""
    if runtime == "docker":
        why = _docker_ready(image)
        if why:
            if os.environ.get("CI"):
                pytest.fail(f"Docker {suite} tests cannot run in CI: {why}")
            pytest.skip(f"Docker {suite} tests skipped: {why}")
    return runtime


@pytest.fixture(scope="session", params=["process", "docker"])
def runtime_name(request):
    return runtime_or_skip(request.param, BYO_IMAGE, "contract")


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
