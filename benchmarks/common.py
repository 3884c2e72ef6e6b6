"""What the benchmark scripts share: the repository on sys.path, an environment that can never
reach real AWS, nearest-rank percentiles, the load average printed next to every table (this
project's machines are shared, so a figure means little without it), and the set-up of the
SageMaker SDK's local mode that the training and hosting benchmarks measure smlocal against."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare() -> Path:
    """Put the repository first on sys.path and pin dummy credentials; returns the repository."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    })
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    return ROOT


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def print_profile(stats, title: str, rows: int = 40) -> None:
    """A pstats.Stats' top functions by cumulative and by internal time, each a fenced block under
    a `### <title>, sorted by <key>` heading (the form benchmarks/README.md quotes)."""
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats(key).print_stats(rows)
        print(f"\n### {title}, sorted by {key}\n")
        print("```\n" + out.getvalue().strip() + "\n```")


# -- processes, seen from /proc (the benchmarks measure smlocal from outside as well) ----------

def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system, all threads) a process has used so far; 0 if unknown."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (of any of its threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int, exclude: tuple = ()) -> list[int]:
    """`pid` and its descendants, leaving out the processes in `exclude` and theirs."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current in exclude:
            continue
        tree.append(current)
        todo += children(current)
    return tree


def tree_cpu(pid: int | None, exclude: tuple = ()) -> float:
    """CPU seconds used so far by `pid` and its descendants but `exclude`'s subtrees."""
    return sum(map(process_cpu, process_tree(pid, exclude))) if pid else 0.0


def process_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# -- the SageMaker SDK v2's local mode ------------------------------------------------------

SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def compose_available() -> str | None:
    """None when local mode can run, else why not."""
    try:
        ok = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok and shutil.which("docker-compose") is None:
        return ("neither `docker compose` nor `docker-compose` is installed "
                "(apt-get install -y docker-compose)")
    from emulator.runtime.select import docker_available

    if not docker_available():
        return "no Docker engine answers"
    return None


def remove_local_mode_containers(scratch: Path) -> None:
    """Local mode runs `docker-compose up` and never `down`: remove the containers it left (those
    whose compose file lay under this run's scratch folder)."""
    try:
        import docker

        client = docker.from_env()
        label = "com.docker.compose.project.working_dir"
        for container in client.containers.list(all=True, filters={"label": label}):
            if container.labels.get(label, "").startswith(str(scratch)):
                container.remove(force=True)
        client.close()
    except Exception as exc:  # cleanup is best effort; say what was left
        print(f"  could not remove local mode's containers: {exc}")


class LocalMode:
    """One local-mode measurement: why it cannot run (`error`, None when it can, later why it
    failed) and the scratch folder its containers work in, removed with the containers it left."""

    def __init__(self):
        self.error: str | None = compose_available()
        self.scratch = Path(tempfile.mkdtemp(prefix="smlocal-bench-localmode-"))

    def session(self, region: str, **local):
        """The SDK's LocalSession with telemetry opted out (it would try to reach AWS) and its
        containers' files under the scratch folder; ImportError without the SDK v2."""
        for name in ("sagemaker", "sagemaker.config"):
            logging.getLogger(name).setLevel(logging.WARNING)
        import boto3
        from sagemaker.local import LocalSession

        session = LocalSession(boto_session=boto3.Session(region_name=region), sagemaker_config=SDK_CONFIG)
        session.config = {"local": {"local_code": True, "container_root": str(self.scratch), **local}}
        return session

    def sdk_missing(self, exc: ImportError) -> None:
        self.error = f"the SageMaker SDK v2 is not installed ({exc})"

    def failed(self, exc: Exception) -> None:
        self.error = f"local mode failed: {type(exc).__name__}: {str(exc)[:200]}"

    def clean_up(self) -> None:
        remove_local_mode_containers(self.scratch)
        shutil.rmtree(self.scratch, ignore_errors=True)
