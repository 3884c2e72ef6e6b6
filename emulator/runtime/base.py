"""The runtime seam: how services ask for training hosts and serving instances.

Services decide *what* runs and when; a runtime only knows *how* (a Docker container, a local
process, or nothing at all for unit tests). Everything here is synchronous; services call it from
their own threads.
"""

from __future__ import annotations

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

    def lines(self) -> Iterator[str]:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        raise NotImplementedError

    def terminate(self, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after the grace period (returns once it has exited)."""
        raise NotImplementedError

    def remove(self) -> None:
        """Free whatever the host held (container, process group)."""


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

    def lines(self) -> Iterator[str]:
        raise NotImplementedError

    def exit_code(self) -> int | None:
        raise NotImplementedError

    def stop(self, grace_seconds: float) -> None:
        raise NotImplementedError


class Runtime:
    name = "base"

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
