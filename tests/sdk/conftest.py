"""The real SageMaker Python SDK (v2) against smlocal: the training fixtures, plus a Session."""

from __future__ import annotations

import os
import time

import pytest

from tests.algorithms.conftest import algo_runtime, algo_stack  # noqa: F401  (shared fixtures)
from tests.training.conftest import runtime_name, stack  # noqa: F401  (shared fixtures)

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")


class _QuickPolls:
    """The SDK sleeps 5 to 30 s between its status polls; smlocal's answers are ready sooner.
    Only the SDK's session module sees this clock, so what the tests prove is unchanged."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        time.sleep(min(seconds, 0.2))


@pytest.fixture(autouse=True)
def quick_sdk_polls(monkeypatch):
    try:
        import sagemaker.session
    except ImportError:
        return
    monkeypatch.setattr(sagemaker.session, "time", _QuickPolls())


def _session_on(url: str, monkeypatch):
    """A sagemaker.Session whose every boto3 client (SageMaker, Runtime, S3, STS, Logs) is smlocal."""
    sagemaker = pytest.importorskip("sagemaker", reason="the SageMaker SDK v2 is a test extra: pip install -e '.[test]'")
    import boto3
    import sdk_shim

    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    sdk_shim.use_smlocal(url)
    try:
        yield sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"))
    finally:
        sdk_shim.stop_using_smlocal()


@pytest.fixture()
def sdk_session(stack, monkeypatch):
    """On the example-image stack (process runtime, and Docker with smlocal/byo-example)."""
    yield from _session_on(stack.url, monkeypatch)


@pytest.fixture()
def algo_sdk_session(algo_stack, monkeypatch):
    """On the built-in algorithms' stack (process runtime, and Docker with smlocal/algorithms)."""
    yield from _session_on(algo_stack.url, monkeypatch)
