"""Choose the runtime from `--runtime auto|docker|process|fake`.

`auto` uses Docker when an engine answers (DOCKER_HOST or the default socket), else processes.
"""

from __future__ import annotations

import logging

from emulator.runtime.base import Runtime

log = logging.getLogger("smlocal.runtime")


def docker_available(timeout: float = 2.0) -> bool:
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        client.ping()
        client.close()
        return True
    except Exception:  # no engine, no socket, no permission: all mean "not here"
        return False


def resolve_name(requested: str) -> str:
    if requested != "auto":
        return requested
    return "docker" if docker_available() else "process"


def create_runtime(config) -> Runtime:
    name = resolve_name(config.runtime)
    if name == "fake":
        from emulator.runtime.fake import FakeRuntime

        return FakeRuntime()
    if name == "docker":
        from emulator.runtime.docker import DockerRuntime

        runtime = DockerRuntime(process_images=config.process_images)
    else:
        from emulator.runtime.process import ProcessRuntime

        runtime = ProcessRuntime(process_images=config.process_images)
    runtime.instance_limits = config.instance_limits
    return runtime
