"""The runtime seam: how services ask for training hosts and serving instances.

Services decide *what* runs and when; a runtime only knows *how* (a Docker container, a local
process, or nothing at all for unit tests). Everything here is synchronous; services call it from
their background workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class RuntimeUnavailable(Exception):
    """This runtime cannot run the requested thing; the message says why and what to do."""


@dataclass
class ServerSpec:
    """One serving instance of one model (a production variant has InitialInstanceCount of them)."""

    endpoint: str
    variant: str
    instance_id: str
    image: str
    model_data_url: str | None = None
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class ServerHandle:
    spec: ServerSpec
    url: str  # where /ping and /invocations answer
    ref: object = None  # the runtime's own handle (container id, Popen, ...)


class Runtime:
    name = "base"

    def start_server(self, spec: ServerSpec) -> ServerHandle:
        raise RuntimeUnavailable(
            f"The {self.name} runtime of this smlocal version cannot serve models yet."
        )

    def stop_server(self, handle: ServerHandle) -> None:
        return None

    def close(self) -> None:
        return None
