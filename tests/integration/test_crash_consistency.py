"""Crash consistency: `smlocal serve` killed with SIGKILL at random moments of a mixed workload, 20
times in a row on one data directory, and after each kill started again and checked.

The server runs on the process runtime with the probe programs of tests/programs/probe registered
as an image (as test_crash_hygiene.py does). In round 1 one endpoint is created and kept. Each round,
a few threads write while the server runs: S3 puts of small and ~1 MiB bodies (the key names the
body's SHA-256, the ETag its MD5), CreateModel + CreateEndpointConfig, now and then a training job
(a probe that lingers with a child, or one that finishes at once), deletes of objects of earlier
rounds, InvokeEndpoint. At a random moment 0.3-3 s into the round (seeded; the seed is printed,
SMLOCAL_CRASH_SEED replays it) the server is SIGKILLed, and then:

* every process the killed run had started (its pid files and its descendants in /proc, collected
  just before the kill) is gone within a few seconds of the kill or of the restart;
* started again on the same data directory, no work folder or pid file of the killed run is left;
* the endpoint that was InService answers InvokeEndpoint (the call waits while it comes back), and
  DescribeEndpoint then says InService;
* every acknowledged write is there: each S3 object whose PutObject answered 200 (this round's read
  back and hashed byte for byte, earlier rounds' by listing with ETag and size), each model, endpoint
  config and training job whose Create answered (this round's described, earlier ones listed); each
  object whose DeleteObject answered stays deleted.

A request cut by the kill has no answer, so its effect may or may not be there: it is not checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.integration.helpers import IMAGE, ROLE, training_request, unique
from tests.integration.test_crash_hygiene import invoke, probe_endpoint, probe_serve  # noqa: F401  (a fixture)
from tests.integration.test_restart import serve  # noqa: F401  (the fixture probe_serve uses)
from emulator.runtime.ownership import PIDS_FOLDER, start_time

ROUNDS = int(os.environ.get("SMLOCAL_CRASH_ROUNDS") or 20)  # fewer only to debug: the proof is 20
KIB, MiB = 1024, 1024 * 1024
GONE_AFTER_KILL = 5.0  # seconds the killed run's processes get to die after the kill
GONE_AFTER_RESTART = 5.0  # and again after the restart removed its leftovers
TEST_BUDGET = 240.0  # the whole test's time, printed and asserted


class Ledger:
    """What the server acknowledged, across rounds; filled by the workload threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.objects: dict[str, tuple[int, str, int]] = {}  # key -> (round, md5 hex, size)
        self.deleted: dict[str, int] = {}  # key -> round its DeleteObject answered
        self.uncertain: set[str] = set()  # a delete cut by the kill: either outcome is right
        self.deleting: set[str] = set()
        self.models: dict[str, int] = {}
        self.configs: dict[str, int] = {}
        self.jobs: dict[str, int] = {}
        self.errors: list[str] = []  # failures that came back while the server was alive


class Round:
    def __init__(self, number: int, server, ledger: Ledger, bucket: str, endpoint: str, pid_log: Path,
                 rng: random.Random):
        self.number, self.ledger, self.bucket, self.endpoint, self.pid_log = number, ledger, bucket, endpoint, pid_log
        self.killing = threading.Event()
        self.seeds = [rng.randrange(2**32) for _ in range(4)]
        # boto3 clients are made here, in one thread: making them is not thread-safe, using them is
        self.s3 = [server.client("s3") for _ in range(3)]
        self.sm = server.client("sagemaker")
        self.runtime = server.client("sagemaker-runtime")
        self.threads = [threading.Thread(target=self._guard, args=(name, work, seed), daemon=True)
                        for (name, work), seed in zip(
                            [("small puts", self._small_puts), ("1 MiB puts", self._big_puts),
                             ("creates", self._creates), ("deletes and invocations", self._deletes)], self.seeds)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def join(self):
        for thread in self.threads:
            thread.join(60)
            assert not thread.is_alive(), f"round {self.number}: a workload thread still runs 60 s after the kill"

    def _guard(self, name, work, seed):
        try:
            work(random.Random(seed))
        except Exception as error:  # a call cut by the kill is expected; anything before it is a failure
            if not self.killing.is_set():
                with self.ledger.lock:
                    self.ledger.errors.append(f"round {self.number}, {name}: {type(error).__name__}: {error}")

    def _put(self, s3, rng, size):
        body = rng.randbytes(size)
        key = f"r{self.number:02d}/{hashlib.sha256(body).hexdigest()}"
        s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        with self.ledger.lock:
            self.ledger.objects[key] = (self.number, hashlib.md5(body).hexdigest(), size)

    def _small_puts(self, rng):
        while not self.killing.is_set():
            self._put(self.s3[0], rng, rng.randint(0, 64 * KIB))

    def _big_puts(self, rng):
        while not self.killing.is_set():
            self._put(self.s3[1], rng, MiB + rng.randint(-4 * KIB, 4 * KIB))

    def _creates(self, rng):
        started_job = False
        while not self.killing.is_set():
            model, config = unique(f"cc{self.number:02d}-model"), unique(f"cc{self.number:02d}-config")
            self.sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
            with self.ledger.lock:
                self.ledger.models[model] = self.number
            self.sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1}])
            with self.ledger.lock:
                self.ledger.configs[config] = self.number
            if not started_job and rng.random() < 0.3:
                started_job = True
                self._training_job(rng)
            time.sleep(rng.uniform(0.02, 0.1))

    def _training_job(self, rng):
        name = unique(f"cc{self.number:02d}-job")
        mode = rng.choice(["linger", "env"])  # a job that sleeps with a child, or one that ends at once
        request = training_request(name, OutputDataConfig={"S3OutputPath": f"s3://{self.bucket}/output"},
                                   Environment={"PROBE_MODE": mode, "PID_LOG": str(self.pid_log)},
                                   StoppingCondition={"MaxRuntimeInSeconds": 600})
        for absent in ("InputDataConfig", "CheckpointConfig"):
            del request[absent]
        self.sm.create_training_job(**request)
        with self.ledger.lock:
            self.ledger.jobs[name] = self.number

    def _deletes(self, rng):
        while not self.killing.is_set():
            with self.ledger.lock:
                earlier = sorted(key for key, (number, _, _) in self.ledger.objects.items() if number < self.number)
            if earlier and rng.random() < 0.5:
                key = rng.choice(earlier)
                with self.ledger.lock:
                    self.ledger.deleting.add(key)
                self.s3[2].delete_object(Bucket=self.bucket, Key=key)
                with self.ledger.lock:
                    self.ledger.deleting.discard(key)
                    self.ledger.objects.pop(key, None)
                    self.ledger.deleted[key] = self.number
            else:
                answer = invoke(self.runtime, self.endpoint)
                assert answer.get("SAGEMAKER_BIND_TO_PORT"), f"round {self.number}: the endpoint answered {answer}"
            time.sleep(rng.uniform(0.01, 0.05))


def descendants(pid: int) -> set[int]:
    """Every living descendant of `pid`, from /proc (Linux)."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except FileNotFoundError:
                continue
            for child in children:
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def recorded_pids(pids_dir: Path) -> dict[int, str | None]:
    """The children the server recorded in <data dir>/work/pids/, with the start time it recorded."""
    pids = {}
    for path in pids_dir.glob("*.json") if pids_dir.is_dir() else ():
        try:
            record = json.loads(path.read_text())
            pids[record["pid"]] = record.get("started")
        except (OSError, ValueError, KeyError):
            pass  # a record being written when the server was killed
    return pids


def describe_process(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def still_alive(processes: dict[int, str | None]) -> dict[int, str]:
    """The ones still running as the same process (same start time; a zombie counts as gone)."""
    alive = {}
    for pid, started in processes.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z" and start_time(pid) == started:
            alive[pid] = describe_process(pid)
    return alive


def wait_all_gone(processes: dict[int, str | None], timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while (alive := still_alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def work_entries(work: Path) -> set[str]:
    """The killed run's work folders: entries of work/ and of work/endpoints/, and its pid files."""
    entries = {f"work/{p.name}" for p in work.iterdir() if p.name not in (PIDS_FOLDER, "endpoints")} \
        if work.is_dir() else set()
    for sub in ("endpoints", PIDS_FOLDER):
        if (work / sub).is_dir():
            entries |= {f"work/{sub}/{p.name}" for p in (work / sub).iterdir()}
    return entries


def list_all(call, key: str, name: str, **kwargs) -> set[str]:
    names, token = set(), None
    while True:
        page = call(MaxResults=100, **kwargs, **({"NextToken": token} if token else {}))
        names |= {item[name] for item in page[key]}
        token = page.get("NextToken")
        if not token:
            return names


def listed_objects(s3, bucket: str) -> dict[str, tuple[str, int]]:
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="r"):
        for item in page.get("Contents", []):
            objects[item["Key"]] = (item["ETag"].strip('"'), item["Size"])
    return objects


def check_acknowledged(number: int, server, ledger: Ledger, bucket: str) -> dict[str, int]:
    s3, sm = server.client("s3"), server.client("sagemaker")
    listed = listed_objects(s3, bucket)
    lost, wrong = [], []
    for key, (written, md5, size) in sorted(ledger.objects.items()):
        if key not in listed:
            lost.append(f"s3://{bucket}/{key} (put acknowledged in round {written})")
        elif listed[key] != (md5, size):
            wrong.append(f"s3://{bucket}/{key} (round {written}): listed {listed[key]}, written {(md5, size)}")
        elif written == number:  # this round's: read back whole, the key names the body's SHA-256
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if hashlib.sha256(body).hexdigest() != key.split("/", 1)[1]:
                wrong.append(f"s3://{bucket}/{key} (round {written}): {len(body)} bytes read back differ")
    assert not lost, f"after kill {number}: acknowledged S3 puts lost: {lost}"
    assert not wrong, f"after kill {number}: acknowledged S3 puts changed: {wrong}"
    back = sorted(f"{key} (deleted in round {when})" for key, when in ledger.deleted.items() if key in listed)
    assert not back, f"after kill {number}: acknowledged deletes undone: {back}"

    for kind, names, describe, call, key, field in [
        ("model", ledger.models, lambda n: sm.describe_model(ModelName=n), sm.list_models, "Models", "ModelName"),
        ("endpoint config", ledger.configs, lambda n: sm.describe_endpoint_config(EndpointConfigName=n),
         sm.list_endpoint_configs, "EndpointConfigs", "EndpointConfigName"),
        ("training job", ledger.jobs, lambda n: sm.describe_training_job(TrainingJobName=n),
         sm.list_training_jobs, "TrainingJobSummaries", "TrainingJobName"),
    ]:
        listed_names = list_all(call, key, field, NameContains="cc")
        missing = sorted(f"{name} (created in round {when})" for name, when in names.items() if name not in listed_names)
        assert not missing, f"after kill {number}: acknowledged {kind}s missing from the listing: {missing}"
        for name, when in sorted(names.items()):
            if when == number or kind == "training job":
                try:
                    describe(name)
                except ClientError as error:
                    raise AssertionError(f"after kill {number}: the {kind} {name} created in round {when} "
                                         f"cannot be described: {error}") from None
    return {"objects": len(ledger.objects), "deleted": len(ledger.deleted), "models": len(ledger.models),
            "configs": len(ledger.configs), "jobs": len(ledger.jobs)}


@pytest.mark.slow
def test_twenty_sigkills_at_random_moments_lose_no_acknowledged_write_and_leave_nothing(probe_serve, tmp_path):  # noqa: F811
    seed = int(os.environ.get("SMLOCAL_CRASH_SEED") or random.SystemRandom().randrange(2**31))
    print(f"\ncrash-consistency seed {seed} (replay with SMLOCAL_CRASH_SEED={seed})")
    rng = random.Random(seed)
    began = time.monotonic()
    data, pid_log = tmp_path / "data", tmp_path / "pids.jsonl"
    work = data / "work"

    server = probe_serve()
    bucket = unique("crash")
    server.client("s3").create_bucket(Bucket=bucket)
    endpoint = probe_endpoint(server.client("sagemaker"), pid_log)
    ledger = Ledger()
    passed = 0
    for number in range(1, ROUNDS + 1):
        workload = Round(number, server, ledger, bucket, endpoint, pid_log, rng)
        kill_at = rng.uniform(0.3, 3.0)
        workload.start()
        time.sleep(kill_at)

        processes = {**recorded_pids(work / PIDS_FOLDER), **{pid: start_time(pid) for pid in descendants(server.process.pid)}}
        workload.killing.set()
        assert server.kill(signal.SIGKILL) == -signal.SIGKILL
        killed_at = time.monotonic()
        processes = {**recorded_pids(work / PIDS_FOLDER), **processes}  # and what was recorded meanwhile
        processes = {pid: started for pid, started in processes.items() if started is not None}
        workload.join()
        assert not ledger.errors, f"round {number}: calls failed while the server was alive: {ledger.errors}"
        with ledger.lock:  # a delete cut by the kill may or may not have happened
            for key in ledger.deleting:
                ledger.objects.pop(key, None)
                ledger.uncertain.add(key)
            ledger.deleting.clear()

        outlived_kill = wait_all_gone(processes, GONE_AFTER_KILL)
        left = work_entries(work)
        server = probe_serve()
        restarted_at = time.monotonic()
        alive = wait_all_gone(processes, GONE_AFTER_RESTART)
        assert not alive, (f"round {number}: processes of the run killed {kill_at:.2f} s into the round are alive "
                           f"{GONE_AFTER_KILL:.0f} s after the kill and {GONE_AFTER_RESTART:.0f} s after the "
                           f"restart: {alive}")
        kept = left & work_entries(work)
        assert not kept, f"round {number}: work folders or pid files of the killed run are left after the restart: {sorted(kept)}"

        answer = invoke(server.client("sagemaker-runtime"), endpoint)
        assert answer.get("SAGEMAKER_BIND_TO_PORT"), f"round {number}: the endpoint answered {answer}"
        status = server.client("sagemaker").describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
        assert status == "InService", f"round {number}: the endpoint answered but DescribeEndpoint says {status}"
        counts = check_acknowledged(number, server, ledger, bucket)
        passed += 1
        print(f"round {number:2d}: killed {kill_at:.2f} s in; processes of the killed run: {len(processes)}"
              f"{f' ({len(outlived_kill)} outlived the kill by {GONE_AFTER_KILL:.0f} s: {outlived_kill})' if outlived_kill else ''}"
              f"; restart + checks {time.monotonic() - restarted_at:.1f} s (kill to checked "
              f"{time.monotonic() - killed_at:.1f} s); acknowledged so far {counts}, uncertain deletes "
              f"{len(ledger.uncertain)}", flush=True)

    took = time.monotonic() - began
    print(f"{passed} rounds passed in {took:.0f} s (seed {seed})")
    assert took < TEST_BUDGET * 1.5, f"the test took {took:.0f} s, its budget is about {TEST_BUDGET:.0f} s"
