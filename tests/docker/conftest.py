"""Fixtures for tests that need a Docker engine and the images docker/build-images.sh builds."""

from __future__ import annotations

import os

import pytest

HOW = "run docker/engine.sh (as root), then docker/build-images.sh"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str):
    """Skip on a developer machine; fail in CI, where a missing engine or image is a defect."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_engine():
    """A docker-py client for a Docker engine that answers."""
    try:
        import docker
    except ImportError:
        unavailable(f"no Docker engine: the 'docker' Python package is not installed ({HOW})")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # DockerException, connection refused, missing socket...
        unavailable(f"no Docker engine: {HOW} ({type(exc).__name__}: {exc})")
    yield client
    client.close()


@pytest.fixture(scope="session")
def byo_image(docker_engine):
    """The smlocal/byo-example image (tests build nothing; CI builds the images first)."""
    import docker

    name = "smlocal/byo-example:latest"
    try:
        return docker_engine.images.get(name)
    except docker.errors.ImageNotFound:
        unavailable(f"image {name} not found: {HOW}")
