"""InvokeEndpoint through `smlocal serve` as users run it: its own process, an on-disk data
directory, one sequential boto3 client (a test suite calling `predict` in a loop) and 8 client
processes, against the container called directly — for one or more source trees, side by side.

    python benchmarks/serve_bench.py --tree new=/work/main --tree old=/path/to/previous/checkout
                                     [--seconds 2] [--rounds 3] [--clients 8] [--skip-docker]
                                     [--baseline old] [--profile]

Why from outside: hosting_bench.py runs smlocal inside its own process (`LocalServer`), which is
handy but is not what users run; this script knows nothing of smlocal's insides, so the same
script judges any tree (a rewrite of the request path included). For each runtime (processes;
Docker when an engine and the image answer) and each tree it starts
`python -m emulator serve --port P --data-dir D --runtime R` with PYTHONPATH=<tree> on a fresh
data directory on disk, puts a tiny model.tar.gz in smlocal's S3, creates a model, an endpoint
configuration and an endpoint of the byo-example image, waits for InService and finds the
container's own URL and PID from outside (hosting_bench.serving_container). Then, round by round,
each phase for every tree in turn (the tree that goes first rotates), so the machine's noise hits
all trees alike: boto3 (the judged path), raw unsigned POSTs and raw POSTs to the container
directly (the reference), each with 1 client and with --clients. The targets are issue 13's and
hosting_bench.judge's: added p50 <= 1 ms (raw against direct), smlocal's CPU <= 0.35 ms a call
and >= 90 % of the baseline tree's throughput (boto3).

CPU per call, from /proc, read around each timed phase: the clients' own; smlocal's — the server
process and every descendant that is not the serving container (data-plane workers, where a tree
has them); the container's process tree. Then one sequential client calling as test suites also do — with
50 ms between calls, a new boto3 client each call, a new connection each call — and smlocal's CPU
per second with nobody calling: for such a client smlocal's fixed cost per second, a cold call
and a new connection's cost are most of each call (issue 13's 0.7-1.4 ms, which hosting_bench's
back-to-back load never shows; benchmarks/README.md).

`--profile` then samples every smlocal process with py-spy (`pip install py-spy`) during one more
sequential boto3 phase per runtime and tree, and prints smlocal's CPU per thread (from /proc) and
py-spy's breakdown by module and by frame. benchmarks/README.md explains the figures.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average, prepare, process_cpu, process_tree, tree_cpu
from hosting_bench import (
    BUCKET,
    IMAGE,
    JUDGED,
    LATENCY_HEADER,
    POLL_SECONDS,
    REGION,
    ROLE,
    Load,
    _init_worker,
    add_load_options,
    free_port,
    invocation_modes,
    judge,
    latency_row,
    measure_phase,
    model_tarball,
    reference,
    serving_container,
)

ROOT = prepare()
PATHS = ("smlocal boto3", "smlocal raw", "direct")
# One sequential client calling as test suites do besides back to back on one connection: what
# smlocal costs per call then (issue 13's 0.7-1.4 ms measured from outside; benchmarks/README.md).
WAYS = {"boto3, 50 ms between calls": "boto3-paced", "boto3, a new client each call": "boto3-fresh",
        "raw, a new connection each call": "raw-fresh"}
START_SECONDS = 60.0


class Serve:
    """One tree's `smlocal serve` on one runtime, its endpoint, and where its processes are."""

    def __init__(self, label: str, tree: Path, runtime: str, scratch: Path):
        self.label, self.tree, self.runtime = label, tree, runtime
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"data-{label}-{runtime}-", dir=scratch))
        self.log_path = scratch / f"serve-{label}-{runtime}.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.popen: subprocess.Popen | None = None
        self.endpoint = ""
        self.container_url, self.container_pid = "", None

    def start(self) -> Serve:
        command = [sys.executable, "-m", "emulator", "serve", "--port", str(self.port),
                   "--data-dir", str(self.data_dir), "--runtime", self.runtime,
                   "--process-image", f"{IMAGE}={self.tree / 'docker' / 'byo-example' / 'bin'}"]
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(command, cwd=self.tree, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.label}: smlocal serve exited: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.label}: smlocal serve did not listen within {START_SECONDS:g} s")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def deploy(self) -> None:
        """A model in smlocal's S3, a model, a configuration, an endpoint; waits for InService."""
        sm = self._client("sagemaker")
        s3 = self._client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="model/model.tar.gz", Body=model_tarball())
        sm.create_model(ModelName="echo", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model/model.tar.gz"})
        sm.create_endpoint_config(EndpointConfigName="echo-config", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "echo", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}])
        self.endpoint = f"echo-{self.label}-{uuid.uuid4().hex[:8]}"
        sm.create_endpoint(EndpointName=self.endpoint, EndpointConfigName="echo-config")
        status = sm.describe_endpoint(EndpointName=self.endpoint)
        while status["EndpointStatus"] == "Creating":
            time.sleep(POLL_SECONDS)
            status = sm.describe_endpoint(EndpointName=self.endpoint)
        if status["EndpointStatus"] != "InService":
            raise RuntimeError(f"{self.label}: {status['EndpointStatus']}: {status.get('FailureReason')}")
        self.container_url, self.container_pid = serving_container(self.runtime, self.endpoint, self.popen.pid)

    def _client(self, service: str):
        import boto3
        from botocore.config import Config

        return boto3.session.Session(region_name=REGION).client(
            service, endpoint_url=self.url,
            config=Config(region_name=REGION, retries={"total_max_attempts": 1, "mode": "standard"}))

    def smlocal_pids(self) -> list[int]:
        """The server and its descendants but the serving container."""
        return process_tree(self.popen.pid, exclude=(self.container_pid,))

    def meters(self) -> dict:
        return {"smlocal": lambda: sum(map(process_cpu, self.smlocal_pids())),
                "container": lambda: tree_cpu(self.container_pid)}

    def modes(self) -> dict[str, tuple]:
        modes = invocation_modes(self.url, self.endpoint, self.container_url)
        for label, kind in WAYS.items():
            modes[label] = (kind, modes["smlocal raw" if kind.startswith("raw") else JUDGED][1])
        return modes

    def stop(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if self.endpoint:
                self._client("sagemaker").delete_endpoint(EndpointName=self.endpoint)
                time.sleep(0.5)
        except (BotoCoreError, ClientError) as exc:  # stopping the server removes what is left
            print(f"  {self.label}: could not delete {self.endpoint}: {exc}")
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


# -- measuring --------------------------------------------------------------------------------

def idle_cost(serves: list[Serve], seconds: float) -> dict[str, float]:
    """smlocal's CPU ms per second of each tree while nobody calls (all trees at once)."""
    before = {s.label: s.meters()["smlocal"]() for s in serves}
    time.sleep(seconds)
    return {s.label: (s.meters()["smlocal"]() - before[s.label]) / seconds * 1000 for s in serves}


def measure_runtime(pool, serves: list[Serve], args) -> dict:
    """results[clients][tree label][path] = Load, phases interleaved over the trees round by round."""
    phases = [(path, n) for path in PATHS for n in (1, args.clients)] + [(way, "ways") for way in WAYS]
    results = {n: {s.label: {} for s in serves} for _, n in phases}
    for r in range(args.rounds):
        order = serves[r % len(serves):] + serves[:r % len(serves)]
        for path, n in phases:
            for serve in order:
                mode, target = serve.modes()[path]
                load = results[n][serve.label].setdefault(path, Load(path))
                warm_up = 1.0 + (3.0 if r == 0 else 0.0)  # first round: imports and connections
                measure_phase(pool, 1 if n == "ways" else n, mode, target, args.seconds, load, serve.meters(), warm_up)
        print(f"    round {r + 1}/{args.rounds} done, load average {load_average()}", flush=True)
    return results


def start_all(labels_trees: list[tuple[str, Path]], runtime: str, scratch: Path) -> list[Serve]:
    """Every tree's server first, then the endpoints (a server that clears smlocal's containers
    left from a crash when it starts cannot remove another tree's)."""
    serves = [Serve(label, tree, runtime, scratch) for label, tree in labels_trees]
    try:
        for serve in serves:
            serve.start()
        for serve in serves:
            serve.deploy()
    except Exception:
        stop_all(serves)
        raise
    return serves


def stop_all(serves: list[Serve]) -> None:
    for serve in serves:
        serve.stop()


# -- report -----------------------------------------------------------------------------------

def print_tables(runtime: str, results: dict, idle: dict[str, float], baseline: str | None, args) -> None:
    ways = results.pop("ways")
    for clients, trees in results.items():
        who = "1 sequential client" if clients == 1 else f"{clients} client processes"
        print(f"\n{runtime}, {who}, {args.rounds} rounds of {args.seconds:g} s per path and tree "
              f"(latency per call, ms):\n")
        print(LATENCY_HEADER.format(first="tree"))
        for label, loads in trees.items():
            base = trees[baseline][JUDGED] if baseline and label != baseline else None
            for path, load in loads.items():
                direct = reference(loads)
                print(latency_row(label, path, load, direct, judge(path, load, direct, base)))
    print_ways(runtime, ways, results[1], idle)


def print_ways(runtime: str, ways: dict, single: dict, idle: dict[str, float]) -> None:
    """smlocal's CPU per call by how one sequential client calls (printed, not judged)."""
    print(f"\n{runtime}, 1 sequential client calling smlocal in other ways (smlocal's CPU per call grows "
          "with its fixed cost per second and per connection):\n")
    print("| tree | how | calls | p50 ms | calls/s | smlocal CPU ms/call | smlocal CPU ms/s | "
          "CPU ms/call: client, container |\n|---|---|---:|---:|---:|---:|---:|---:|")
    for label, loads in ways.items():
        rows = {"boto3, back to back on one connection": single[label][JUDGED], **loads}
        for how, load in rows.items():
            per_second = load.cpu["smlocal"] / load.seconds * 1000 if load.seconds else 0.0
            print(f"| {label} | {how} | {len(load.latencies)} | {load.p(50):.2f} | {load.throughput:.0f} | "
                  f"{load.cpu_ms_per_request('smlocal'):.3f} | {per_second:.1f} | "
                  f"{load.cpu_ms_per_request('clients'):.2f}, {load.cpu_ms_per_request('container'):.2f} |")
        print(f"| {label} | nobody calling | - | - | - | - | {idle[label]:.1f} | - |")


def docker_skip_reason() -> str | None:
    """None when the Docker runtime can be measured, else why not."""
    if shutil.which("docker") is None:
        return "no `docker` command"
    try:
        subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=True, timeout=30)
    except subprocess.CalledProcessError:
        return f"no Docker engine answers, or the image {IMAGE} is missing (docker/build.sh)"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker does not answer ({exc})"
    return None


def parse_trees(values: list[str] | None) -> list[tuple[str, Path]]:
    if not values:
        return [("this", ROOT)]
    trees = []
    for value in values:
        label, sep, path = value.rpartition("=")
        if not sep or not label or not Path(path, "emulator").is_dir():
            raise SystemExit(f"--tree takes LABEL=PATH to a source tree (with emulator/), not {value!r}")
        trees.append((label, Path(path).resolve()))
    return trees


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", metavar="LABEL=PATH",
                        help="a source tree to run (repeatable; default: this repository)")
    parser.add_argument("--baseline", help="the tree the others' throughput is judged against "
                                           "(default: the one labelled old, else the last)")
    add_load_options(parser, rounds=3)
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="idle CPU measured over (5)")
    parser.add_argument("--skip-processes", action="store_true")
    parser.add_argument("--profile", action="store_true", help="py-spy every smlocal process (see above)")
    parser.add_argument("--profile-seconds", type=float, default=8.0, help="length of the profiled phase (8)")
    parser.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    return parser.parse_args()


def runtimes(args) -> list[str]:
    chosen = [] if args.skip_processes else ["process"]
    if not args.skip_docker:
        reason = docker_skip_reason()
        if reason:
            print(f"Docker runtime skipped: {reason}")
        else:
            chosen.append("docker")
    return chosen


def main() -> None:
    args = parse_args()
    trees = parse_trees(args.tree)
    labels = [label for label, _ in trees]
    baseline = args.baseline or ("old" if "old" in labels else labels[-1]) if len(trees) > 1 else None
    logging.basicConfig(level=logging.WARNING)
    import platform

    import botocore

    print(f"serve_bench: Python {platform.python_version()}, botocore {botocore.__version__}, "
          f"{os.cpu_count()} CPUs, trees {', '.join(f'{label}={path}' for label, path in trees)}, "
          f"load average at start {load_average()}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="smlocal-serve-bench-"))
    try:
        with multiprocessing.get_context("spawn").Pool(args.clients, initializer=_init_worker) as pool:
            for runtime in runtimes(args):
                run_runtime(pool, trees, runtime, scratch, baseline, args)
    finally:
        if args.keep:
            print(f"data directories and server logs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nload average at the end: {load_average()}", flush=True)


def run_runtime(pool, trees, runtime: str, scratch: Path, baseline: str | None, args) -> None:
    name = {"process": "processes", "docker": "Docker"}[runtime]
    print(f"  {name}: starting {len(trees)} server(s)", flush=True)
    serves = start_all(trees, runtime, scratch)
    try:
        idle = idle_cost(serves, args.idle_seconds)
        results = measure_runtime(pool, serves, args)
        print_tables(name, results, idle, baseline, args)
        if args.profile:
            from serve_profile import profile_serves

            profile_serves(pool, serves, name, args.profile_seconds)
    finally:
        stop_all(serves)


if __name__ == "__main__":
    main()
