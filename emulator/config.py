"""One frozen configuration, built from command-line flags over SMLOCAL_* environment variables.

Every knob lives here so that the CLI, the tests' in-process fixture and the README name the same
things. Flags win over environment variables, which win over the defaults.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

RUNTIMES = ("auto", "docker", "process", "fake")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "smlocal"


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 4580
    data_dir: Path = field(default_factory=_default_data_dir)
    runtime: str = "auto"
    ephemeral: bool = False
    threads: int = 16
    # Job knobs (AWS's values by default, smaller in tests).
    stop_grace_seconds: float = 120.0
    max_concurrent_jobs: int = 4
    startup_timeout: float = 240.0  # seconds a serving container has to pass /ping
    # image URI (or glob) → local folder holding its `train`/`serve` programs (process runtime)
    process_images: dict = field(default_factory=dict)
    # authentication (emulator/auth/): SigV4 checked against smlocal's IAM and the root key
    auth: bool = False
    auth_root_key: str | None = None  # "AKID:SECRET[:ACCOUNT]"; None with auth on: kept in the data dir
    allow_unauthenticated: bool = False  # serve a non-loopback address without auth, on purpose
    # give each training host the vCPUs and memory of its instance type (emulator/runtime/instance_types.py)
    instance_limits: bool = False
    # seconds without a byte of a request body before the request is given up (connection closed)
    read_timeout: float = 20.0

    @classmethod
    def from_env(cls, **overrides) -> "Config":
        env = os.environ
        values = {}
        if "SMLOCAL_HOST" in env:
            values["host"] = env["SMLOCAL_HOST"]
        if "SMLOCAL_PORT" in env:
            values["port"] = int(env["SMLOCAL_PORT"])
        if "SMLOCAL_DATA_DIR" in env:
            values["data_dir"] = Path(env["SMLOCAL_DATA_DIR"])
        if "SMLOCAL_RUNTIME" in env:
            values["runtime"] = env["SMLOCAL_RUNTIME"]
        if env.get("SMLOCAL_EPHEMERAL", "").lower() in ("1", "true", "yes"):
            values["ephemeral"] = True
        if env.get("SMLOCAL_INSTANCE_LIMITS", "").lower() in ("1", "true", "yes"):
            values["instance_limits"] = True
        if "SMLOCAL_THREADS" in env:
            values["threads"] = int(env["SMLOCAL_THREADS"])
        if "SMLOCAL_STOP_GRACE_SECONDS" in env:
            values["stop_grace_seconds"] = float(env["SMLOCAL_STOP_GRACE_SECONDS"])
        if "SMLOCAL_MAX_CONCURRENT_JOBS" in env:
            values["max_concurrent_jobs"] = int(env["SMLOCAL_MAX_CONCURRENT_JOBS"])
        if "SMLOCAL_STARTUP_TIMEOUT" in env:
            values["startup_timeout"] = float(env["SMLOCAL_STARTUP_TIMEOUT"])
        if "SMLOCAL_READ_TIMEOUT" in env:
            values["read_timeout"] = float(env["SMLOCAL_READ_TIMEOUT"])
        if "SMLOCAL_PROCESS_IMAGES" in env:
            values["process_images"] = json.loads(env["SMLOCAL_PROCESS_IMAGES"])
        if env.get("SMLOCAL_AUTH", "").lower() in ("1", "true", "yes"):
            values["auth"] = True
        if env.get("SMLOCAL_AUTH_ROOT_KEY"):
            values["auth_root_key"] = env["SMLOCAL_AUTH_ROOT_KEY"]
        if env.get("SMLOCAL_ALLOW_UNAUTHENTICATED", "").lower() in ("1", "true", "yes"):
            values["allow_unauthenticated"] = True
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"]).expanduser()
        config = cls(**values)
        if not config.read_timeout > 0:
            raise ValueError(f"the read timeout must be a positive number of seconds, not {config.read_timeout}")
        if config.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {config.runtime!r}")
        return config
