"""The runtime seam: how services ask for training hosts and serving instances.

Services decide *what* runs and when; a runtime only knows *how* (a Docker container, a local
process, or nothing at all for unit tests). Everything here is synchronous; services call it from
their own threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


# How long a log reader pauses after output arrives, so that a server logging every request (as
# access logs do) wakes smlocal's reader a few times a second instead of once a request, taking the
# GIL from the event loop each time. Logs reach CloudWatch in batches every 0.5 s anyway.
READ_PAUSE_SECONDS = 0.05


def split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Lines (decoded, without their end) out of a stream of byte chunks cut anywhere."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", errors="replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", errors="replace")


class RuntimeUnavailable(Exception):
    """This runtime cannot run the requested thing; the message says why and what to do."""


@dataclass
class TrainingHostSpec:
    """One host (algo-N) of one training job."""

    job_name: str
    host: str
    hosts: list[str]
    image: str
    root: Path  # this host's /opt/ml tree on the machine running smlocal
    environment: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] | None = None
    arguments: list[str] | None = None
    network: str | None = None  # the job's network (multi-host on Docker)
    network_isolation: bool = False
    instance_type: str = "ml.m5.large"


class TrainingProcess:
    """A running training host: its merged stdout/stderr lines, its exit, its stop."""

    removed = False  # set by `remove()`: nothing of it is left

    def lines(self) -> Iterator[str]:
        raise NotImplementedError

    def stamped_lines(self) -> Iterator[tuple[float, str]]:
        """(when it was written, line): where the runtime cannot tell, when it was read."""
        for line in self.lines():
            yield time.time(), line

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        raise NotImplementedError

    def terminate(self, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after the grace period (returns once it has exited)."""
        raise NotImplementedError

    def remove(self) -> None:
        """Free whatever the host held (container, process group)."""

    def out_of_memory(self) -> bool:
        """Whether it was killed for using more memory than its instance type has (where the
        runtime can tell; call before `remove`)."""
        return False

    def halt(self, grace_seconds: float) -> None:
        """Stop it (SIGTERM, SIGKILL after the grace) and free what it held."""
        self.terminate(grace_seconds)
        self.remove()


@dataclass
class ServerSpec:
    """One container of one serving instance (a variant has InitialInstanceCount instances; an
    inference pipeline's instance has one container per model container)."""

    endpoint: str
    variant: str
    instance_id: str
    image: str
    root: Path  # this container's /opt/ml tree on the machine running smlocal
    model_dir: Path | None = None  # the extracted model, shared read-only by the variant's instances
    environment: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None


class ServerProcess:
    """A running serving container or process: where it answers, its output, its exit, its stop."""

    url: str = ""
    removed = False  # set once stopped and removed

    def lines(self) -> Iterator[str]:
        raise NotImplementedError

    def exit_code(self) -> int | None:
        raise NotImplementedError

    def stop(self, grace_seconds: float) -> None:
        raise NotImplementedError

    def halt(self, grace_seconds: float) -> None:
        self.stop(grace_seconds)


class Runtime:
    """Besides running things, a runtime keeps what it started (`_track`), so that smlocal's own stop
    halts all of it at once (`halt_everything`), and, once it knows which server it runs for
    (`claim`), removes what an earlier run of that server left behind."""

    name = "base"
    owner = ""
    instance_limits = False  # give training hosts their instance type's vCPUs and memory

    def __init__(self):
        self._handles: list = []
        self._tracking_lock = threading.Lock()

    def claim(self, owner: str, work_dir: Path) -> None:
        """Run for the server `owner` (emulator/runtime/ownership.py), whose local state lives under
        `work_dir`; call before anything starts: what a killed earlier run of it left is removed."""
        self.owner, self.work_dir = owner, Path(work_dir)
        self.remove_leftovers()

    def remove_leftovers(self) -> None:
        """Remove what carries this server's owner id from an earlier run."""

    def _track(self, handle):
        """Remember a started host or server until it is removed; returns it."""
        with self._tracking_lock:
            self._handles = [h for h in self._handles if not h.removed] + [handle]
        return handle

    def halt_everything(self, grace_seconds: float) -> None:
        """Stop and remove everything this runtime started and did not remove, all at once: each
        may take the whole grace, and the stop of smlocal waits for only one grace."""
        with self._tracking_lock:
            handles, self._handles = [h for h in self._handles if not h.removed], []
        threads = [threading.Thread(target=_quietly_halt, args=(h, grace_seconds), daemon=True) for h in handles]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(grace_seconds + 30)

    def run_training(self, spec: TrainingHostSpec) -> TrainingProcess:
        raise RuntimeUnavailable(f"The {self.name} runtime cannot run training jobs.")

    def create_network(self, job_name: str, hosts: list[str]) -> str | None:
        """A network on which the job's hosts resolve each other by name (None if not needed)."""
        return None

    def remove_network(self, network: str | None) -> None:
        return None

    def listen_addresses(self) -> list[str]:
        """Addresses besides 127.0.0.1 where smlocal must listen so that hosts can reach it."""
        return []

    def set_endpoint(self, url: str) -> None:
        """smlocal's own address, once bound (hosts may need it to reach S3)."""
        self.endpoint_url = url

    def container_endpoint_url(self) -> str | None:
        """How code inside a host reaches smlocal (AWS_ENDPOINT_URL), if it can."""
        return getattr(self, "endpoint_url", None)

    def start_server(self, spec: ServerSpec) -> ServerProcess:
        """Start `serve`; returns at once (the hosting service checks /ping)."""
        raise RuntimeUnavailable(f"The {self.name} runtime cannot serve models.")

    def close(self) -> None:
        return None


def _quietly_halt(handle, grace_seconds: float) -> None:
    try:
        handle.halt(grace_seconds)
    except Exception:  # an engine gone away: nothing more to stop
        pass
