"""Training-job turnaround: CreateTrainingJob → Completed on smlocal (processes, Docker) against the
SageMaker SDK's local mode, for a program that exits at once, in one process and one run.

    python benchmarks/training_bench.py [--jobs 20] [--local-jobs 10] [--skip-docker] [--skip-local]
                                        [--profile process|docker]

What it does (see benchmarks/README.md for the latest figures):

1. Starts smlocal in-process *on disk* twice — ``LocalServer(runtime="process")`` and
   ``LocalServer(runtime="docker")``, each with a temporary data directory — with the example
   bring-your-own image ``smlocal/byo-example:latest`` registered as the local program folder
   ``docker/byo-example/bin`` for the process runtime (its ``train`` is the same script as in the
   image). Each server gets a bucket with one tiny CSV object as the ``train`` channel.
2. Per runtime: 2 warm-up jobs, then ``--jobs`` jobs one after another. Each job's time is the
   client's wall time from the CreateTrainingJob call until DescribeTrainingJob (polled every
   20 ms) shows ``Completed``. The job runs ``train`` of the byo-example with the hyperparameter
   ``dns_timeout=0`` (outside a container ``algo-1`` does not resolve, and the script would retry
   for 2 s): it reads its config, lists the channel, writes a report, and exits. Also printed: the
   p50 of each SecondaryStatus phase, from the job's own SecondaryStatusTransitions.
3. The SageMaker Python SDK v2's local mode on the same image: ``Estimator(image_uri=...,
   instance_type="local").fit({"train": "file://..."})`` with a ``file://`` output path (local
   mode's fastest path: no S3 at all) and telemetry opted out (it would try to reach AWS). The
   time is the wall time of ``fit()`` (which returns when the job is complete). Local mode needs
   ``docker compose`` or ``docker-compose``; where it cannot run, the table says why.
4. Prints the table with the targets: processes p50 <= 1 s, Docker p50 <= 2.5 s, and both faster
   than local mode.

``--profile RUNTIME`` additionally runs 10 jobs on that runtime under cProfile (wall time): the
client thread, and every thread smlocal starts meanwhile (job runs, log pumps and flushers, through
``threading.setprofile``), and prints the top functions by cumulative and internal time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LocalMode, load_average, percentile, prepare, print_profile  # noqa: E402

ROOT = prepare()

import boto3  # noqa: E402
from botocore.config import Config as BotoConfig  # noqa: E402

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "smlocal/byo-example:latest"
BYO_BIN = ROOT / "docker" / "byo-example" / "bin"
BUCKET = "bench-training"
POLL_SECONDS = 0.020
TARGETS = {"process": 1.0, "docker": 2.5}
CLIENT_CONFIG = BotoConfig(region_name=REGION, retries={"total_max_attempts": 1, "mode": "standard"},
                           connect_timeout=10, read_timeout=60)
PHASES = ("Starting", "Downloading", "Training", "Uploading")


# -- smlocal --------------------------------------------------------------------------------

class SmlocalRun:
    """One smlocal server on one runtime, and the jobs it ran."""

    def __init__(self, runtime: str):
        from emulator.testing import LocalServer

        self.runtime = runtime
        self.server = LocalServer(runtime=runtime, process_images={IMAGE: str(BYO_BIN)},
                                  stop_grace_seconds=5, max_concurrent_jobs=4).start()
        session = boto3.session.Session(region_name=REGION)
        self.sm = session.client("sagemaker", endpoint_url=self.server.url, config=CLIENT_CONFIG)
        self.s3 = session.client("s3", endpoint_url=self.server.url, config=CLIENT_CONFIG)
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_object(Bucket=BUCKET, Key="input/train/data.csv", Body=b"1.0,2.0,3.0\n4.0,5.0,6.0\n")
        self.times: list[float] = []
        self.phases: dict[str, list[float]] = {p: [] for p in PHASES}

    def request(self, name: str) -> dict:
        return {
            "TrainingJobName": name,
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "HyperParameters": {"dns_timeout": "0"},
            "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/input/train/",
                "S3DataDistributionType": "FullyReplicated"}}}],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output/"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        }

    def one_job(self, record: bool = True) -> float:
        name = f"bench-{self.runtime}-{uuid.uuid4().hex[:12]}"
        started = time.perf_counter()
        self.sm.create_training_job(**self.request(name))
        while True:
            job = self.sm.describe_training_job(TrainingJobName=name)
            if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
                break
            time.sleep(POLL_SECONDS)
        elapsed = time.perf_counter() - started
        if job["TrainingJobStatus"] != "Completed":
            raise RuntimeError(f"{name} ended {job['TrainingJobStatus']}: {job.get('FailureReason')}")
        if record:
            self.times.append(elapsed)
            for step in job.get("SecondaryStatusTransitions", []):
                if step["Status"] in self.phases and "EndTime" in step:
                    self.phases[step["Status"]].append(
                        (step["EndTime"] - step["StartTime"]).total_seconds())
        return elapsed

    def run(self, jobs: int, warmup: int = 2) -> None:
        for _ in range(warmup):
            self.one_job(record=False)
        for _ in range(jobs):
            self.one_job()

    def stop(self) -> None:
        self.server.stop()


def profile_runtime(runtime: str, jobs: int = 10) -> None:
    """cProfile over `jobs` jobs: the client (this thread) and every thread smlocal starts meanwhile
    (training runs, log pumps and flushers; not the waitress workers, which already run)."""
    import cProfile
    import pstats
    import threading

    run = SmlocalRun(runtime)
    try:
        run.run(0, warmup=2)
        profiler = cProfile.Profile()
        profiles = []  # one per thread smlocal starts meanwhile (training runs, log pumps, flushers)

        def start_thread_profiler(frame, event, arg):
            p = cProfile.Profile()
            profiles.append(p)
            sys.setprofile(None)
            p.enable()

        threading.setprofile(start_thread_profiler)
        profiler.enable()
        run.run(jobs, warmup=0)
        profiler.disable()
        threading.setprofile(None)
        stats = pstats.Stats(profiler)
        for p in profiles:
            stats.add(p)  # each thread's profile (finished threads are complete)
        print_profile(stats, f"cProfile (wall time), {runtime}, {jobs} jobs: the client and the threads smlocal "
                             "started")
        print(f"\np50 over the profiled jobs: {statistics.median(run.times):.3f} s (profiling slows it down)")
    finally:
        run.stop()


# -- the SDK's local mode -------------------------------------------------------------------

class LocalModeRun(LocalMode):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def run(self, jobs: int, warmup: int = 1) -> None:
        if self.error:
            return
        try:
            session = self.session(REGION)
            from sagemaker.estimator import Estimator
        except ImportError as exc:
            self.sdk_missing(exc)
            return
        data = self.scratch / "data"
        data.mkdir()
        (data / "data.csv").write_bytes(b"1.0,2.0,3.0\n4.0,5.0,6.0\n")
        estimator = Estimator(image_uri=IMAGE, role=ROLE, instance_count=1, instance_type="local",
                              sagemaker_session=session, output_path=f"file://{self.scratch}/output",
                              hyperparameters={"dns_timeout": "0"})
        try:
            for i in range(warmup + jobs):
                started = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):  # the SDK echoes docker-compose's output
                    estimator.fit({"train": f"file://{data}"}, wait=True, logs=False)
                elapsed = time.perf_counter() - started
                if i >= warmup:
                    self.times.append(elapsed)
        except Exception as exc:  # report why instead of a number
            self.failed(exc)
        finally:
            self.clean_up()


# -- report ---------------------------------------------------------------------------------

def row(label: str, times: list[float], target: float | None, local_p50: float | None) -> str:
    p50, p90 = percentile(times, 50), percentile(times, 90)
    target_text, verdicts = "", []
    if target is not None:
        target_text = f"p50 <= {target:g} s"
        verdicts.append("met" if p50 <= target else "MISSED")
        if local_p50 is not None:
            target_text += ", < local mode"
            verdicts.append("met" if p50 < local_p50 else "MISSED")
        elif target is not None:
            target_text += ", < local mode"
            verdicts.append("n/a (local mode did not run)")
    else:
        target_text = "(reference)"
    return (f"| {label} | {len(times)} | {p50:.3f} | {p90:.3f} | {min(times):.3f} | {max(times):.3f} | "
            f"{target_text} | {', '.join(verdicts) or '-'} |")


def report(runs: dict[str, SmlocalRun], local: LocalModeRun | None) -> None:
    local_p50 = percentile(local.times, 50) if local and local.times and not local.error else None
    print("\nCreateTrainingJob → Completed (wall time, DescribeTrainingJob polled every 20 ms, seconds):\n")
    print("| runtime | jobs | p50 s | p90 s | min s | max s | target | verdict |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    labels = {"process": "smlocal, process runtime", "docker": "smlocal, Docker runtime"}
    for name, run in runs.items():
        print(row(labels[name], run.times, TARGETS[name], local_p50))
    if local is not None:
        if local.error or not local.times:
            print(f"| SDK v2 local mode (`instance_type=\"local\"`) | 0 | - | - | - | - | (reference) | "
                  f"did not run: {local.error or 'no job finished'} |")
        else:
            print(row("SDK v2 local mode (`instance_type=\"local\"`, fit())", local.times, None, None))
    print("\nWhere a smlocal job's time goes (p50 of each SecondaryStatus phase, from "
          "SecondaryStatusTransitions, seconds; the rest is API calls and polling):\n")
    print("| runtime | " + " | ".join(PHASES) + " | sum of p50s |")
    print("|---|" + "---:|" * (len(PHASES) + 1))
    for name, run in runs.items():
        medians = [statistics.median(run.phases[p]) if run.phases[p] else 0.0 for p in PHASES]
        print(f"| {labels[name]} | " + " | ".join(f"{m:.3f}" for m in medians) + f" | {sum(medians):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs per smlocal runtime (default 20)")
    parser.add_argument("--local-jobs", type=int, default=10, help="local-mode fits (default 10)")
    parser.add_argument("--skip-docker", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--profile", choices=("process", "docker"), help="also cProfile 10 jobs on this runtime")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("waitress").setLevel(logging.CRITICAL)  # a channel closed at shutdown is not news

    import platform

    import botocore

    print(f"training_bench: Python {platform.python_version()}, boto3 {boto3.__version__}, "
          f"botocore {botocore.__version__}, {os.cpu_count()} CPUs, load average at start {load_average()}")
    runtimes = ["process"] + ([] if args.skip_docker else ["docker"])
    from emulator.runtime.select import docker_available

    if "docker" in runtimes and not docker_available():
        print("no Docker engine answers: the Docker runtime is skipped")
        runtimes.remove("docker")
    runs: dict[str, SmlocalRun] = {}
    for name in runtimes:
        run = SmlocalRun(name)
        try:
            started = time.perf_counter()
            run.run(args.jobs)
            print(f"  {name}: {args.jobs} jobs in {time.perf_counter() - started:.1f} s", flush=True)
        finally:
            run.stop()
        runs[name] = run
    local = None
    if not args.skip_local:
        local = LocalModeRun()
        started = time.perf_counter()
        local.run(args.local_jobs)
        print(f"  local mode: {len(local.times)} fits in {time.perf_counter() - started:.1f} s"
              + (f" ({local.error})" if local.error else ""), flush=True)
    report(runs, local)
    print(f"\nload average at the end: {load_average()}")
    if args.profile:
        profile_runtime(args.profile)


if __name__ == "__main__":
    main()
