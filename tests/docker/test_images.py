"""The smlocal/byo-example image and its `train`/`serve` scripts honour the SageMaker contract.

Builds nothing: CI runs docker/build-images.sh first. The local-process tests need no Docker.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / "docker" / "byo-example" / "bin"
IMAGE = "smlocal/byo-example:latest"
CSV = b"1.0,2.0,3.0\n4.0,5.0,6.0\n"
docker_test = pytest.mark.docker


# --- helpers ---------------------------------------------------------------------------------

def make_opt_ml(root: Path, hyperparameters=None, hosts=("algo-1",), current="algo-1",
                channels=None, checkpoint_files=None) -> Path:
    """A /opt/ml tree as SageMaker lays it out. channels: {name: bytes | "Pipe"}."""
    channels = {"train": CSV} if channels is None else channels
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters or {}))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": current, "hosts": sorted(hosts), "network_interface_name": "eth0"}))
    inputs = {}
    for name, content in channels.items():
        mode = "Pipe" if content == "Pipe" else "File"
        inputs[name] = {"ContentType": "text/csv", "TrainingInputMode": mode,
                        "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        (root / "input" / "data").mkdir(parents=True, exist_ok=True)
        if mode == "File":
            (root / "input" / "data" / name).mkdir()
            (root / "input" / "data" / name / "data.csv").write_bytes(content)
    (config / "inputdataconfig.json").write_text(json.dumps(inputs))
    for name, content in (checkpoint_files or {}).items():
        (root / "checkpoints").mkdir(exist_ok=True)
        (root / "checkpoints" / name).write_bytes(content)
    for sub in ("model", "output/data", "checkpoints"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o777)
    return root


def report(root: Path, host="algo-1") -> dict:
    return json.loads((root / "model" / f"report-{host}.json").read_text())


def run_container(client, command, opt_ml: Path, timeout=90, **kwargs):
    """Run IMAGE command with opt_ml bind-mounted on /opt/ml; return (exit code, logs)."""
    container = client.containers.run(
        IMAGE, command, detach=True, volumes={str(opt_ml): {"bind": "/opt/ml", "mode": "rw"}},
        **kwargs)
    try:
        status = container.wait(timeout=timeout)
        return status["StatusCode"], container.logs().decode()
    finally:
        container.remove(force=True)


def fetch(url, data=None, headers=None, timeout=5):
    """(status, headers, body) of a request; HTTP errors are returned, not raised."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def wait_for_ping(base, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _, _ = fetch(base + "/ping", timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{base}/ping never answered 200")
        time.sleep(0.2)


def check_invocations(base):
    status, headers, body = fetch(base + "/invocations", CSV, {"Content-Type": "text/csv"})
    assert status == 200 and headers["Content-Type"] == "text/csv"
    assert body == b"1.0,2.0,3.0,11\n4.0,5.0,6.0,11\n"

    status, headers, body = fetch(base + "/invocations", b'{"x": [1, 2]}', {
        "Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "trace=1"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "trace=1"
    answer = json.loads(body)
    assert answer["echo"] == {"x": [1, 2]}
    assert answer["env"] == {"SERVE_GREETING": "hello"}
    assert answer["model_files"] == ["model.txt", "sub/weights.bin"]

    status, _, body = fetch(base + "/invocations", b"hi", {"Content-Type": "text/plain"})
    assert status == 415 and b"text/plain" in body
    status, _, _ = fetch(base + "/invocations", b"fail", {"Content-Type": "text/csv"})
    assert status == 500


def model_dir(root: Path) -> Path:
    model = root / "model"
    (model / "sub").mkdir(parents=True)
    (model / "model.txt").write_text("m")
    (model / "sub" / "weights.bin").write_bytes(b"\0\1")
    os.chmod(root, 0o777)
    return model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_kwargs():
    # Files the container writes into the bind mount belong to whoever runs the tests.
    return {"user": f"{os.getuid()}:{os.getgid()}"}


# --- the image -------------------------------------------------------------------------------

@docker_test
def test_image_has_no_entrypoint_and_accepts_bind_to_port(byo_image):
    config = byo_image.attrs["Config"]
    assert not config.get("Entrypoint"), "SageMaker's `docker run IMAGE train` needs no ENTRYPOINT"
    assert config["Labels"]["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"
    assert config["Labels"].get("org.smlocal.inputs-hash")


@docker_test
def test_train_in_a_container_reports_what_it_saw(docker_engine, byo_image, tmp_path):
    root = make_opt_ml(tmp_path / "opt_ml", {"epochs": "2", "lr": "0.1"},
                       checkpoint_files={"old.ckpt": b"previous"})
    code, logs = run_container(
        docker_engine, ["train"], root, hostname="algo-1", **user_kwargs(),
        environment={"TRAINING_JOB_NAME": "job-1", "AWS_REGION": "us-east-1",
                     "USER_COLOUR": "blue", "OTHER": "hidden"})
    assert code == 0, logs
    assert "epoch=1 loss=0.5\n" in logs and "[1]\ttrain-rmse:0.25\n" in logs
    assert "current host: algo-1" in logs and "input train/data.csv 24 bytes" in logs

    seen = report(root)
    assert seen["hyperparameters"] == {"epochs": "2", "lr": "0.1"}
    assert seen["resourceconfig"]["hosts"] == ["algo-1"]
    assert seen["inputdataconfig"]["train"]["TrainingInputMode"] == "File"
    assert seen["env"] == {"AWS_REGION": "us-east-1", "TRAINING_JOB_NAME": "job-1",
                           "USER_COLOUR": "blue"}
    assert seen["files"]["train"] == {
        "data.csv": {"size": len(CSV), "sha256": hashlib.sha256(CSV).hexdigest()}}
    assert list(seen["checkpoints_at_start"]) == ["old.ckpt"]
    assert seen["resolved_hosts"]["algo-1"], "the container's own hostname must resolve"
    assert seen["endpoint"] is None and seen["hostname"] == "algo-1"
    assert "checkpointconfig" not in seen
    assert (root / "output" / "data" / "out-algo-1.txt").read_text().startswith("host=algo-1")
    assert (root / "checkpoints" / "ckpt-algo-1.txt").exists()
    assert not (root / "output" / "failure").exists()


@docker_test
def test_train_failure_writes_the_reason_and_exits_255(docker_engine, byo_image, tmp_path):
    root = make_opt_ml(tmp_path / "opt_ml", {"fail_with_reason": "ClientError: bad input",
                                               "dns_timeout": "0"})
    code, _ = run_container(docker_engine, ["train"], root, network_mode="none",
                            **user_kwargs())
    assert code == 255
    assert (root / "output" / "failure").read_text() == "ClientError: bad input"
    assert (root / "model" / "report-algo-1.json").exists(), "partial artifacts come first"

    root = make_opt_ml(tmp_path / "opt_ml2", {"exit_code": "3", "dns_timeout": "0"})
    code, _ = run_container(docker_engine, ["train"], root, network_mode="none",
                            **user_kwargs())
    assert code == 3 and not (root / "output" / "failure").exists()


@docker_test
def test_train_stops_on_sigterm(docker_engine, byo_image, tmp_path):
    root = make_opt_ml(tmp_path / "opt_ml", {"sleep_seconds": "60", "dns_timeout": "0"})
    container = docker_engine.containers.run(
        IMAGE, ["train"], detach=True, network_mode="none", **user_kwargs(),
        volumes={str(root): {"bind": "/opt/ml", "mode": "rw"}})
    try:
        deadline = time.monotonic() + 30
        while b"slept 1s" not in container.logs():
            assert time.monotonic() < deadline, container.logs().decode()
            time.sleep(0.2)
        started = time.monotonic()
        container.stop(timeout=10)  # SIGTERM, then SIGKILL after 10 s
        assert time.monotonic() - started < 5, "train must exit promptly on SIGTERM"
        assert container.wait(timeout=10)["StatusCode"] == 0
        assert (root / "model" / "sigterm-algo-1.txt").exists()
        assert (root / "model" / "report-algo-1.json").exists()
    finally:
        container.remove(force=True)


@docker_test
def test_train_pipe_mode_reads_each_epochs_fifo(docker_engine, byo_image, tmp_path):
    root = make_opt_ml(tmp_path / "opt_ml", {"epochs": "2", "dns_timeout": "0"},
                       channels={"train": "Pipe"})
    payloads = [b"epoch zero\n" * 1000, b"epoch one\n" * 10]
    feeder = threading.Thread(target=feed_fifos, args=(root, "train", payloads), daemon=True)
    feeder.start()
    code, logs = run_container(docker_engine, ["train"], root, network_mode="none",
                               **user_kwargs())
    feeder.join(10)
    assert code == 0, logs
    assert report(root)["pipes"]["train"] == [
        {"epoch": i, "kind": "fifo", "bytes": len(p), "sha256": hashlib.sha256(p).hexdigest()}
        for i, p in enumerate(payloads)]


def feed_fifos(root: Path, channel: str, payloads):
    """What the platform does in Pipe mode: FIFO <channel>_<epoch>, one after the other."""
    for epoch, payload in enumerate(payloads):
        path = root / "input" / "data" / f"{channel}_{epoch}"
        os.mkfifo(path, 0o666)
        with open(path, "wb") as fifo:  # blocks until train opens it
            fifo.write(payload)


@docker_test
def test_two_hosts_resolve_each_other_and_reach_the_host_on_the_gateway(
        docker_engine, byo_image, tmp_path):
    """What a multi-instance job needs: algo-N names on a bridge network, and the emulator
    listening on that network's gateway address (dockerd runs with --iptables=false here).
    As the Docker runtime does, every host gets fixed addresses in /etc/hosts: Docker's DNS
    forgets a container when it exits, and knows it only once it has started."""
    from docker.types import IPAMConfig, IPAMPool

    name = f"smlocal-test-{uuid.uuid4().hex[:8]}"
    probe = docker_engine.networks.create(name, driver="bridge")
    pool = probe.attrs["IPAM"]["Config"][0]  # a subnet Docker chose, made user-configured for fixed IPs
    probe.remove()
    network = docker_engine.networks.create(name, driver="bridge", ipam=IPAMConfig(
        pool_configs=[IPAMPool(subnet=pool["Subnet"], gateway=pool["Gateway"])]))
    server = None
    containers = []
    try:
        gateway = pool["Gateway"]
        free = (str(a) for a in ipaddress.ip_network(pool["Subnet"]).hosts() if str(a) != gateway)
        server = ThreadingHTTPServer((gateway, 0), BaseHTTPRequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        endpoint = f"http://{gateway}:{server.server_address[1]}"
        hosts = ("algo-1", "algo-2")
        addresses = {h: next(free) for h in hosts}
        roots = {h: make_opt_ml(tmp_path / h, {}, hosts=hosts, current=h) for h in hosts}
        for host in hosts:
            container = docker_engine.containers.create(
                IMAGE, ["train"], hostname=host, **user_kwargs(), extra_hosts=addresses,
                environment={"AWS_ENDPOINT_URL": endpoint},
                volumes={str(roots[host]): {"bind": "/opt/ml", "mode": "rw"}})
            containers.append(container)
            docker_engine.api.disconnect_container_from_network(container.id, "bridge")
            network.connect(container, aliases=[host], ipv4_address=addresses[host])
        for container in containers:
            container.start()
        for container in containers:
            assert container.wait(timeout=90)["StatusCode"] == 0, container.logs().decode()
        for host in hosts:
            seen = report(roots[host], host)
            assert {h: seen["resolved_hosts"][h] for h in hosts} == {h: [a] for h, a in addresses.items()}
            assert seen["endpoint"]["reachable"] is True, seen["endpoint"]
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()
        if server:
            server.shutdown()
            server.server_close()


@docker_test
def test_serve_in_a_container(docker_engine, byo_image, tmp_path):
    root = tmp_path / "opt_ml"
    model_dir(root)
    container = docker_engine.containers.run(
        IMAGE, ["serve"], detach=True, environment={"SERVE_GREETING": "hello"},
        ports={"8080/tcp": ("127.0.0.1", None)},
        volumes={str(root / "model"): {"bind": "/opt/ml/model", "mode": "ro"}})
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        base = f"http://127.0.0.1:{port}"
        wait_for_ping(base)
        check_invocations(base)
        started = time.monotonic()
        container.stop(timeout=10)
        assert time.monotonic() - started < 5, "serve must exit promptly on SIGTERM"
        assert container.wait(timeout=10)["StatusCode"] == 0
    finally:
        container.remove(force=True)


# --- the same scripts as local processes (no Docker) -----------------------------------------

def local_env(root: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("USER_", "SERVE_", "TRAINING_JOB_", "AWS_ENDPOINT_URL"))}
    env.update(SMLOCAL_OPT_ML=str(root), **extra)
    return env


def test_train_as_a_local_process(tmp_path):
    root = make_opt_ml(tmp_path / "opt_ml", {"epochs": "3", "dns_timeout": "0"},
                       hosts=("localhost",), current="localhost",
                       channels={"train": CSV, "validation": CSV})
    done = subprocess.run([sys.executable, str(BIN / "train")], capture_output=True, text=True,
                          timeout=60, env=local_env(root, TRAINING_JOB_NAME="local-1",
                                                    USER_X="1"))
    assert done.returncode == 0, done.stderr
    assert "epoch=3 loss=0.25\n[3]\ttrain-rmse:0.125\tvalidation-rmse:0.166667\n" in done.stdout
    seen = report(root, "localhost")
    assert seen["env"] == {"TRAINING_JOB_NAME": "local-1", "USER_X": "1"}
    assert sorted(seen["files"]) == ["train", "validation"]
    assert seen["resolved_hosts"]["localhost"]
    assert (root / "output" / "data" / "out-localhost.txt").exists()
    assert (root / "checkpoints" / "ckpt-localhost.txt").exists()


def test_train_as_a_local_process_pipe_mode_and_checkpoint_config(tmp_path):
    root = make_opt_ml(tmp_path / "opt_ml", {"epochs": "\"2\"", "dns_timeout": "0"},
                       channels={"train": "Pipe", "extra": CSV})
    (root / "input" / "config" / "checkpointconfig.json").write_text(
        json.dumps({"LocalPath": "/opt/ml/checkpoints/here", "S3Uri": "s3://b/ck"}))
    payloads = [b"a" * 70000, b"b"]
    feeder = threading.Thread(target=feed_fifos, args=(root, "train", payloads), daemon=True)
    feeder.start()
    done = subprocess.run([sys.executable, str(BIN / "train")], capture_output=True, text=True,
                          timeout=60, env=local_env(root))
    feeder.join(10)
    assert done.returncode == 0, done.stderr
    seen = report(root)
    assert [p["bytes"] for p in seen["pipes"]["train"]] == [70000, 1]
    assert seen["checkpointconfig"]["S3Uri"] == "s3://b/ck"
    assert (root / "checkpoints" / "here" / "ckpt-algo-1.txt").exists()
    assert list(seen["resolved_hosts"]) == ["algo-1"]


def test_train_as_a_local_process_fails_and_stops(tmp_path):
    root = make_opt_ml(tmp_path / "a", {"fail_with_reason": "boom", "exit_code": "7",
                                        "dns_timeout": "0"})
    done = subprocess.run([sys.executable, str(BIN / "train")], capture_output=True, timeout=60,
                          env=local_env(root))
    assert done.returncode == 7 and (root / "output" / "failure").read_text() == "boom"

    root = make_opt_ml(tmp_path / "b", {"sleep_seconds": "60", "dns_timeout": "0"})
    proc = subprocess.Popen([sys.executable, str(BIN / "train")], stdout=subprocess.PIPE,
                            text=True, env=local_env(root))
    try:
        for line in proc.stdout:
            if line.startswith("slept 1s"):
                break
        started = time.monotonic()
        proc.terminate()
        assert proc.wait(timeout=5) == 0 and time.monotonic() - started < 2
        assert (root / "model" / "sigterm-algo-1.txt").exists()
    finally:
        proc.kill()
        proc.stdout.close()


def test_serve_as_a_local_process(tmp_path):
    root = tmp_path / "opt_ml"
    model_dir(root)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(BIN / "serve")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=local_env(root, SAGEMAKER_BIND_TO_PORT=str(port), SMLOCAL_SERVE_HOST="127.0.0.1",
                      SERVE_GREETING="hello"))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_ping(base)
        check_invocations(base)
        proc.terminate()
        assert proc.wait(timeout=3) == 0
    finally:
        proc.kill()
