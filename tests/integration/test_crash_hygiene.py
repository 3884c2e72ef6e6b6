"""A crash leaves nothing behind, and what comes back says the truth.

`smlocal serve` runs as its own process on the process runtime, with the probe programs of
tests/programs/probe registered as an image: a training program that starts a child and lingers, a
serving program that ignores SIGTERM (as werkzeug's server does as PID 1 of a container) and takes a
moment before it listens. Killed with SIGKILL, the server's children die with it; started again on
the same data directory, the server removes what an earlier run left before it restores anything,
an endpoint says InService only once it answers and calls meanwhile wait for it, and the job that
ran is Failed, saying why, with no work folder left. Stopped with SIGTERM, the server stops
everything at once with a short grace.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from pathlib import Path

import pytest
import requests

from tests.integration.helpers import IMAGE, ROLE, make_config, training_request, unique, wait_for
from tests.integration.test_restart import _alive, serve  # noqa: F401  (a fixture)

PROBE = Path(__file__).resolve().parents[1] / "programs" / "probe"


@pytest.fixture()
def probe_serve(serve):  # noqa: F811  (the fixture imported above)
    """Start `smlocal serve` on the process runtime (the probe registered as IMAGE) on one data dir."""
    return functools.partial(serve, "--runtime", "process", "--process-image", f"{IMAGE}={PROBE}")


def pids(log: Path, *kinds: str) -> list[int]:
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [record[kind] for record in records for kind in kinds if kind in record]


def probe_endpoint(sm, pid_log: Path, instances: int = 1, delay: float = 0.0) -> str:
    model = unique("model")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE, "Environment": {
        "PID_LOG": str(pid_log), "SERVE_DELAY": str(delay)}})
    config = make_config(sm, model, variants=[{"VariantName": "AllTraffic", "ModelName": model,
                                               "InstanceType": "ml.m5.large", "InitialInstanceCount": instances}])
    name = unique("endpoint")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    wait_for(lambda: sm.describe_endpoint(EndpointName=name)["EndpointStatus"], lambda s: s == "InService",
             timeout=60)
    return name


def lingering_job(sm, s3, pid_log: Path) -> str:
    bucket, name = unique("bucket"), unique("job")
    s3.create_bucket(Bucket=bucket)
    request = training_request(name, OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
                               Environment={"PROBE_MODE": "linger", "PID_LOG": str(pid_log)})
    for absent in ("InputDataConfig", "CheckpointConfig"):
        del request[absent]
    sm.create_training_job(**request)
    wait_for(lambda: pids(pid_log, "child"), bool, timeout=60)
    return name


def wait_gone(pid_list: list[int], timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    for pid in pid_list:
        while _alive(pid):
            assert time.monotonic() < deadline, f"process {pid} is still alive {timeout}s after {why}"
            time.sleep(0.05)


def invoke(runtime, endpoint: str) -> dict:
    answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=b"{}", ContentType="application/json")
    return json.loads(answer["Body"].read())


def test_after_sigkill_nothing_lives_on_and_the_restart_restores_honestly(probe_serve, tmp_path):
    first = probe_serve()
    sm, s3 = first.client("sagemaker"), first.client("s3")
    serve_log, train_log = tmp_path / "serve-pids", tmp_path / "train-pids"
    endpoint = probe_endpoint(sm, serve_log, instances=2, delay=1.5)
    job = lingering_job(sm, s3, train_log)
    children = pids(serve_log, "serve") + pids(train_log, "train", "child")
    assert len(children) == 4 and all(_alive(pid) for pid in children)

    first.kill(signal.SIGKILL)
    wait_gone(children, 5.0, "smlocal was killed")

    second = probe_serve()
    sm, runtime = second.client("sagemaker"), second.client("sagemaker-runtime")
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "Updating"  # its servers sleep 1.5 s
    assert invoke(runtime, endpoint)["PID_LOG"] == str(serve_log)  # waited for it instead of "not found"
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    described = sm.describe_training_job(TrainingJobName=job)
    assert described["TrainingJobStatus"] == "Failed"
    assert "smlocal was restarted while this job ran" in described["FailureReason"]
    work = tmp_path / "data" / "work"
    assert not [p for p in work.iterdir() if p.name.startswith(job)]
    assert len(list((work / "endpoints").iterdir())) == 1  # the restored fleet's folder, no other


def test_leftovers_of_a_run_whose_reaper_died_too_are_removed_before_the_restart_restores(probe_serve, tmp_path):
    """The pid files: if even the reaper was killed, the next start on the data directory kills the
    earlier run's children (and only those) before it restores anything."""
    first = probe_serve()
    train_log = tmp_path / "train-pids"
    lingering_job(first.client("sagemaker"), first.client("s3"), train_log)
    children = pids(train_log, "train", "child")
    reaper = _reaper_of(first.process.pid)
    os.kill(reaper, signal.SIGKILL)
    first.kill(signal.SIGKILL)
    time.sleep(1.0)
    assert all(_alive(pid) for pid in children), "the children should have outlived a server and reaper killed"

    probe_serve()  # answers its health check only after the leftovers were removed
    wait_gone(children, 1.0, "the restart on the same data directory")


def test_sigterm_stops_servers_that_ignore_it_at_once_with_a_short_grace(probe_serve, tmp_path):
    server = probe_serve()
    serve_log = tmp_path / "serve-pids"
    probe_endpoint(server.client("sagemaker"), serve_log, instances=3)
    children = pids(serve_log, "serve")
    assert len(children) == 3

    began = time.monotonic()
    assert server.kill(signal.SIGTERM, timeout=60) == 0, server.output()
    took = time.monotonic() - began
    assert not [pid for pid in children if _alive(pid)]
    assert took < 10.0, f"stopping took {took:.1f} s: three 3-second graces in parallel should take about 3 s"


def _reaper_of(server_pid: int) -> int:
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if "emulator.runtime.reaper" in Path(f"/proc/{child}/cmdline").read_text():
                return int(child)
    raise AssertionError("the server started no reaper")


def test_the_health_check_names_the_instance_kept_in_the_data_directory(probe_serve, tmp_path):
    first = probe_serve()
    instance = requests.get(f"{first.url}/_smlocal/health", timeout=5).json()["instance"]
    assert (tmp_path / "data" / "instance").read_text().strip() == instance
    first.kill(signal.SIGTERM)
    second = probe_serve()
    assert requests.get(f"{second.url}/_smlocal/health", timeout=5).json()["instance"] == instance


def test_docker_leftovers_go_at_the_restart_deleted_containers_are_removed_and_a_stop_leaves_none(serve):  # noqa: F811
    """On a Docker engine shared with other servers: a server's containers carry its instance id; a
    restart on the same data directory removes the killed run's containers before restoring;
    DeleteEndpoint and SIGTERM leave no container of it, running or exited."""
    from tests.training.conftest import BYO_IMAGE, runtime_or_skip

    runtime_or_skip("docker", BYO_IMAGE, "crash hygiene")
    import docker

    engine = docker.from_env().api  # lists without inspecting: other servers' containers come and go
    first = serve("--runtime", "docker")
    instance = requests.get(f"{first.url}/_smlocal/health", timeout=5).json()["instance"]
    mine = {"label": f"smlocal.owner={instance}"}
    endpoint = _docker_endpoint(first.client("sagemaker"), BYO_IMAGE, instances=2)
    before = {c["Id"] for c in engine.containers(all=True, filters=mine)}
    assert len(before) == 2
    first.kill(signal.SIGKILL)

    second = serve("--runtime", "docker")
    assert not before & {c["Id"] for c in engine.containers(all=True)}, "the killed run's containers live on"
    sm = second.client("sagemaker")
    wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"], lambda s: s == "InService",
             timeout=120)
    assert len(engine.containers(all=True, filters=mine)) == 2
    sm.delete_endpoint(EndpointName=endpoint)
    wait_for(lambda: engine.containers(all=True, filters=mine), lambda left: not left, timeout=60)
    _docker_endpoint(sm, BYO_IMAGE, instances=2)
    assert second.kill(signal.SIGTERM, timeout=60) == 0, second.output()
    assert engine.containers(all=True, filters=mine) == []


def _docker_endpoint(sm, image: str, instances: int) -> str:
    model, name = unique("model"), unique("endpoint")
    sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
    config = make_config(sm, model, variants=[{"VariantName": "AllTraffic", "ModelName": model,
                                               "InstanceType": "ml.m5.large", "InitialInstanceCount": instances}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    wait_for(lambda: sm.describe_endpoint(EndpointName=name)["EndpointStatus"], lambda s: s == "InService",
             timeout=120)
    return name
