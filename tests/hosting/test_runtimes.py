"""Endpoints on real runtimes (local processes always; Docker where an engine answers, always in CI)
serving the example bring-your-own image: weights, TargetVariant, scaling, blue/green under load,
rollback, replacement of a killed instance, errors, restart, and nothing left behind."""

from __future__ import annotations

import collections
import json
import os
import signal
import threading
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.testing import LocalServer
from tests.conftest import NO_RETRY
from tests.training.conftest import BYO_BIN, BYO_IMAGE, runtime_name  # noqa: F401  (shared fixture)

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


class Hosting:
    def __init__(self, server: LocalServer, runtime: str):
        self.server, self.runtime = server, runtime
        session = boto3.session.Session(region_name="us-east-1")
        self.sm = session.client("sagemaker", endpoint_url=server.url, config=NO_RETRY)
        self.smr = session.client("sagemaker-runtime", endpoint_url=server.url, config=NO_RETRY)

    def model(self, image: str = BYO_IMAGE, env: dict | None = None) -> str:
        name = f"m-{uuid.uuid4().hex[:8]}"
        self.sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                             PrimaryContainer={"Image": image, "Environment": env or {}})
        return name

    def config(self, variants: list[tuple[str, str, int, float]]) -> str:
        name = f"c-{uuid.uuid4().hex[:8]}"
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": v, "ModelName": m, "InstanceType": "ml.m5.large", "InitialInstanceCount": n,
             "InitialVariantWeight": w} for v, m, n, w in variants])
        return name

    def endpoint(self, config: str) -> str:
        name = f"e-{uuid.uuid4().hex[:8]}"
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        self.wait(name)
        return name

    def wait(self, name: str, predicate=lambda d: d["EndpointStatus"] != "Creating" and d["EndpointStatus"] != "Updating",
             timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            described = self.sm.describe_endpoint(EndpointName=name)
            if predicate(described):
                return described
            assert time.monotonic() < deadline, described
            time.sleep(0.1)

    def invoke(self, name: str, body: bytes = b"1,2,3", **kwargs) -> dict:
        return self.smr.invoke_endpoint(EndpointName=name, Body=body, ContentType=kwargs.pop("content_type", "text/csv"),
                                        **kwargs)

    def instances(self, name: str) -> dict:
        route = self.server.app.router.find("123456789012", "us-east-1", name)
        return {v: list(r.instances) for v, r in route.variants.items()}


@pytest.fixture(scope="module")
def hosting(runtime_name, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(f"hosting-{runtime_name}")
    server = LocalServer(data_dir=data_dir, runtime=runtime_name, process_images={BYO_IMAGE: str(BYO_BIN)},
                         stop_grace_seconds=2, startup_timeout=60)
    with server:
        yield Hosting(server, runtime_name)


def test_serves_with_weights_and_target_variant(hosting):
    a, b = hosting.model(env={"SERVE_NAME": "a"}), hosting.model(env={"SERVE_NAME": "b"})
    name = hosting.endpoint(hosting.config([("A", a, 1, 9.0), ("B", b, 1, 1.0)]))
    answer = hosting.invoke(name, b"1,2\n3,4,5")
    assert answer["Body"].read() == b"1,2,3\n3,4,5,5\n" and answer["ContentType"] == "text/csv"
    counts = collections.Counter(hosting.invoke(name)["InvokedProductionVariant"] for _ in range(2000))
    assert 0.87 <= counts["A"] / 2000 <= 0.93, counts
    echoed = json.loads(hosting.invoke(name, b"{}", content_type="application/json", TargetVariant="B")["Body"].read())
    assert echoed["env"]["SERVE_NAME"] == "b"
    hosting.sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "A", "DesiredWeight": 0}, {"VariantName": "B", "DesiredWeight": 1}])
    hosting.wait(name)
    assert {hosting.invoke(name)["InvokedProductionVariant"] for _ in range(100)} == {"B"}


def test_model_errors_carry_the_container_status(hosting):
    name = hosting.endpoint(hosting.config([("AllTraffic", hosting.model(), 1, 1.0)]))
    with pytest.raises(ClientError) as info:
        hosting.invoke(name, b"fail")
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert info.value.response["OriginalStatusCode"] == 500
    with pytest.raises(ClientError) as info:
        hosting.invoke(name, b"x", content_type="image/png")
    assert info.value.response["OriginalStatusCode"] == 415
    assert "Received client error (415) from primary" in info.value.response["Error"]["Message"]


def test_scaling_and_a_killed_instance_is_replaced(hosting):
    name = hosting.endpoint(hosting.config([("AllTraffic", hosting.model(), 1, 1.0)]))
    for count in (3, 1):
        hosting.sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": count}])
        described = hosting.wait(name)
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == count
        assert len(hosting.instances(name)["AllTraffic"]) == count
    hosting.sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    hosting.wait(name)
    victim = hosting.instances(name)["AllTraffic"][0]
    _kill(hosting, victim.servers[0])
    for _ in range(30):  # the other instance answers meanwhile
        assert hosting.invoke(name)["Body"].read() == b"1,2,3,5\n"
    deadline = time.monotonic() + 60
    while victim in hosting.instances(name)["AllTraffic"] or len(hosting.instances(name)["AllTraffic"]) != 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def _kill(hosting, server) -> None:
    if hosting.runtime == "docker":
        server.client.api.kill(server.id)
    else:
        os.killpg(server.popen.pid, signal.SIGKILL)


def test_update_endpoint_under_load_and_rollback(hosting):
    name = hosting.endpoint(hosting.config([("AllTraffic", hosting.model(), 1, 1.0)]))
    failures, seen, stop = [], collections.Counter(), threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                seen[hosting.invoke(name)["InvokedProductionVariant"]] += 1
            except Exception as exc:
                failures.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    new_config = hosting.config([("Blue", hosting.model(), 1, 1.0), ("Green", hosting.model(), 1, 1.0)])
    hosting.sm.update_endpoint(EndpointName=name, EndpointConfigName=new_config)
    hosting.wait(name, lambda d: d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == new_config)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == [] and seen["AllTraffic"] and seen["Blue"] and seen["Green"]

    broken = hosting.config([("X", hosting.model(image="smlocal/no-such-image:latest"), 1, 1.0)])
    hosting.sm.update_endpoint(EndpointName=name, EndpointConfigName=broken)
    described = hosting.wait(name, lambda d: d["EndpointStatus"] == "InService" and "FailureReason" in d)
    assert described["EndpointConfigName"] == new_config
    assert "smlocal/no-such-image:latest" in described["FailureReason"]
    assert hosting.invoke(name)["InvokedProductionVariant"] in ("Blue", "Green")


def test_failing_container_fails_the_endpoint_with_its_logs(hosting):
    model = hosting.model(env={"SMLOCAL_SERVE_HOST": "no-such-host.invalid"})  # serve cannot bind and exits
    name = f"e-{uuid.uuid4().hex[:8]}"
    hosting.sm.create_endpoint(EndpointName=name, EndpointConfigName=hosting.config([("AllTraffic", model, 1, 1.0)]))
    described = hosting.wait(name)
    assert described["EndpointStatus"] == "Failed"
    assert "exited with code" in described["FailureReason"]
    assert "Last log lines:" in described["FailureReason"] and "socket.gaierror" in described["FailureReason"]


def test_container_output_reaches_cloudwatch_logs_line_by_line(hosting):
    """Every access-log line of a burst of calls arrives, in order, in the instance's stream (the
    readers batch the container's output; nothing may be lost or reordered on the way)."""
    name = hosting.endpoint(hosting.config([("AllTraffic", hosting.model(), 1, 1.0)]))
    instance = hosting.instances(name)["AllTraffic"][0]
    bodies = [f"{i}".encode() for i in range(300)]
    for body in bodies:
        hosting.invoke(name, body)
    logs = boto3.session.Session(region_name="us-east-1").client("logs", endpoint_url=hosting.server.url)
    deadline = time.monotonic() + 30
    while True:
        events = logs.get_log_events(logGroupName=f"/aws/sagemaker/Endpoints/{name}",
                                     logStreamName=f"AllTraffic/{instance.id}", startFromHead=True)["events"]
        posts = [e["message"] for e in events if '"POST /invocations' in e["message"]]
        if len(posts) >= len(bodies) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(posts) == len(bodies), posts[-3:]
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    assert any("serving" in e["message"] for e in events[:5])  # the start-up line comes first


def test_delete_leaves_nothing_running(hosting):
    name = hosting.endpoint(hosting.config([("AllTraffic", hosting.model(), 2, 1.0)]))
    servers = [s for i in hosting.instances(name)["AllTraffic"] for s in i.servers]
    hosting.sm.delete_endpoint(EndpointName=name)
    deadline = time.monotonic() + 60
    while any(e["EndpointName"] == name for e in hosting.sm.list_endpoints()["Endpoints"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert all(s.exit_code() is not None for s in servers)
    if hosting.runtime == "docker":
        import docker
        left = docker.from_env().containers.list(all=True, filters={"label": f"smlocal.endpoint={name}"})
        assert left == []


def test_endpoints_come_back_after_a_restart(runtime_name, tmp_path):
    images = {BYO_IMAGE: str(BYO_BIN)}
    with LocalServer(data_dir=tmp_path, runtime=runtime_name, process_images=images, stop_grace_seconds=2) as first:
        hosting = Hosting(first, runtime_name)
        name = hosting.endpoint(hosting.config([("AllTraffic", hosting.model(), 1, 1.0)]))
        assert hosting.invoke(name)["Body"].read() == b"1,2,3,5\n"
    with LocalServer(data_dir=tmp_path, runtime=runtime_name, process_images=images, stop_grace_seconds=2) as second:
        hosting = Hosting(second, runtime_name)
        deadline = time.monotonic() + 60
        while True:
            try:
                assert hosting.invoke(name)["Body"].read() == b"1,2,3,5\n"
                break
            except ClientError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert hosting.sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"
