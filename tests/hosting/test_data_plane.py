"""Data-plane workers (emulator/data_plane.py) on the process runtime: InvokeEndpoint connections
handed to a worker are answered there, what the worker does not serve reaches the main process
unchanged, its calls are counted in CloudWatch, a killed worker is replaced while the main process
serves, and no worker outlives the server."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.testing import LocalServer
from tests.conftest import NO_RETRY
from tests.hosting.test_runtimes import Hosting
from tests.training.conftest import BYO_BIN, BYO_IMAGE


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    server = LocalServer(data_dir=tmp_path_factory.mktemp("data-plane"), runtime="process",
                         process_images={BYO_IMAGE: str(BYO_BIN)}, stop_grace_seconds=2, data_plane_workers=1)
    with server:
        server.wait_for_workers(every_invocation=True)
        hosting = Hosting(server, "process")
        hosting.name = hosting.endpoint(hosting.config([("AllTraffic", hosting.model(), 1, 1.0)]))
        yield hosting


def _runtime(hosting) -> object:
    """A client of its own: its connections are new, so the server hands them over afresh."""
    return boto3.session.Session(region_name="us-east-1").client(
        "sagemaker-runtime", endpoint_url=hosting.server.url, config=NO_RETRY)


def _health(hosting) -> dict:
    with urllib.request.urlopen(hosting.server.url + "/_smlocal/health") as answer:
        return json.loads(answer.read())["data_plane_workers"][0]


def test_a_worker_answers_handed_over_connections_and_its_calls_are_counted(workers):
    before = _health(workers)
    clients = [_runtime(workers) for _ in range(3)]
    for i in range(60):
        answer = clients[i % 3].invoke_endpoint(EndpointName=workers.name, Body=f"{i},1".encode(),
                                                ContentType="text/csv")
        line = f"{i},1"
        assert answer["Body"].read() == f"{line},{len(line)}\n".encode()
        assert answer["InvokedProductionVariant"] == "AllTraffic"
    time.sleep(1.5)  # the worker reports its calls once a second
    after = _health(workers)
    assert after["connections"] - before["connections"] == 3
    # all but the calls that came before the worker knew the caller's account (the main process answered those)
    assert after["invocations"] - before["invocations"] >= 57

    cloudwatch = boto3.session.Session(region_name="us-east-1").client("cloudwatch", endpoint_url=workers.server.url)
    deadline = time.monotonic() + 30
    while True:
        workers.server.app.metrics.flush()
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName="Invocations", StartTime=time.time() - 600, EndTime=time.time() + 60,
            Period=60, Statistics=["Sum"], Dimensions=[{"Name": "EndpointName", "Value": workers.name},
                                                       {"Name": "VariantName", "Value": "AllTraffic"}])["Datapoints"]
        total = sum(p["Sum"] for p in points)
        if total >= 60 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert total == 60


def test_what_a_worker_does_not_serve_reaches_the_main_process(workers):
    client = _runtime(workers)
    assert client.invoke_endpoint(EndpointName=workers.name, Body=b"1", ContentType="text/csv")["Body"].read() == b"1,1\n"
    with pytest.raises(ClientError) as info:  # an endpoint no route names
        client.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"1", ContentType="text/csv")
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert info.value.response["Error"]["Message"] == "Endpoint no-such-endpoint of account 123456789012 not found."
    streamed = client.invoke_endpoint_with_response_stream(EndpointName=workers.name, Body=b"4,5",
                                                           ContentType="text/csv")
    assert b"".join(e["PayloadPart"]["Bytes"] for e in streamed["Body"] if "PayloadPart" in e) == b"4,5,3\n"
    with pytest.raises(ClientError) as info:  # the container's own error, from the worker
        client.invoke_endpoint(EndpointName=workers.name, Body=b"fail", ContentType="text/csv")
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert info.value.response["OriginalStatusCode"] == 500
    assert f"log-group:/aws/sagemaker/Endpoints/{workers.name}:log-stream:AllTraffic/" in info.value.response["LogStreamArn"]


def test_a_killed_worker_is_replaced_while_the_main_process_serves(workers):
    old = _health(workers)["pid"]
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:  # meanwhile every call is answered, by the main process
        answer = _runtime(workers).invoke_endpoint(EndpointName=workers.name, Body=b"2", ContentType="text/csv")
        assert answer["Body"].read() == b"2,1\n"
        health = _health(workers)
        if health["pid"] != old and health["ready"]:
            break
        assert time.monotonic() < deadline, health
        time.sleep(0.1)
    before = health["connections"]
    client = _runtime(workers)
    for _ in range(5):
        assert client.invoke_endpoint(EndpointName=workers.name, Body=b"3", ContentType="text/csv")["Body"].read() == b"3,1\n"
    assert _health(workers)["connections"] == before + 1  # the new worker has the new connection


def test_no_worker_outlives_the_server(tmp_path):
    with LocalServer(data_dir=tmp_path, runtime="fake", data_plane_workers=2) as server:
        server.wait_for_workers()
        pids = [w.popen.pid for w in server.app.data_plane.workers]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
