"""Runs contract programs as local processes, their /opt/ml re-rooted in the job's folder.

Built-in algorithms run as `python -m algorithms.<name> train|serve`; a user image runs only if it
was registered as a local program folder (`--process-image IMAGE=DIR`, the folder holding its
`train`/`serve` executables); anything else needs Docker, and the error says so.

A child gets the contract's environment and a few variables a program needs to run (`PASSED_ON`),
never the server's own: its AWS secret or session token must not reach a user's program. Every
child is recorded in a pid file and watched by the reaper (emulator/runtime/reaper.py), so that it
dies with the server, even a killed one.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from emulator.runtime import contract, reaper
from emulator.runtime.ownership import PIDS_FOLDER, PidFiles
from emulator.runtime.base import (READ_PAUSE_SECONDS, Runtime, RuntimeUnavailable, ServerProcess, ServerSpec,
                                   TrainingHostSpec, TrainingProcess, split_lines)
from emulator.runtime.images import ImageTarget, resolve
from emulator.runtime.instance_types import resources

_SPEC = importlib.util.find_spec("algorithms")
_ALGORITHMS_HOME = str(Path(_SPEC.origin).parent.parent) if _SPEC and _SPEC.origin else ""

NO_DOCKER = (
    "The image {image} is not a SageMaker built-in algorithm, so it needs a Docker engine, and none is "
    "reachable. Start one (for example `bash docker/engine.sh`, or `dockerd &`) and restart smlocal with "
    "--runtime docker or auto, or register a local program folder for it with --process-image {image}=DIR."
)


# What a child takes from the server's environment: where programs, libraries and the home folder are,
# and the locale. Everything else it gets is the contract's (the job's or the model's variables).
PASSED_ON = ("PATH", "HOME", "TMPDIR", "TZ", "LANG", "LANGUAGE", "LD_LIBRARY_PATH")
PASSED_ON_PREFIXES = ("LC_",)

PIPE_BYTES = 1024 * 1024  # asked of the output pipe (Linux's default for unprivileged processes' maximum)


def _widen(fd: int) -> int:
    """Make the pipe hold PIPE_BYTES where the system allows; returns its capacity (64 KB, the
    default, where it cannot tell). Between two reads a program can write a pipe's worth before it
    blocks: 1 MB per READ_PAUSE_SECONDS is 20 MB/s of output, where 64 KB would hold a server that
    logs every request to about a thousand requests a second."""
    try:
        import fcntl

        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # above the system's limit: keep the default
            pass
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    except (ImportError, AttributeError, OSError):
        return 64 * 1024


class LocalProcess(TrainingProcess):
    def __init__(self, popen: subprocess.Popen, pid_files: PidFiles | None = None):
        self.popen = popen
        self.pid_files = pid_files
        self._pipe_bytes = _widen(popen.stdout.fileno()) if popen.stdout else 0  # what one read takes
        self._reading = False  # a reader has started on the output (`_chunks`)
        # A thread blocks in waitpid, so an exit is seen at once (Popen.wait(timeout) polls with
        # sleeps of up to 50 ms, which every job and every supervision loop would pay).
        self._exited = threading.Event()
        threading.Thread(target=self._reap, name=f"reap-{popen.pid}", daemon=True).start()

    def _reap(self) -> None:
        try:
            self.popen.wait()
        finally:
            self._exited.set()

    def lines(self) -> Iterator[str]:
        return split_lines(self._chunks())

    def _chunks(self) -> Iterator[bytes]:
        """What the process wrote, read in batches: after a read the reader pauses a moment
        (READ_PAUSE_SECONDS) — unless the read emptied a full pipe, whose writer may be blocked on
        it (see `_widen`).

        Read through the pipe's file object, never its descriptor number: once the pipe is closed
        the number is free, and the next file opened anywhere in smlocal gets it, so a read by
        number after a pause would take that file's bytes. The reader closes the pipe at its end;
        `remove()` leaves it to a reader that has started."""
        stdout = self.popen.stdout
        self._reading = True
        try:
            while True:
                chunk = stdout.read1(self._pipe_bytes)  # one read of the pipe at most
                if not chunk:
                    return
                yield chunk
                if len(chunk) < self._pipe_bytes:
                    time.sleep(READ_PAUSE_SECONDS)
        except (ValueError, OSError):
            return  # the pipe was closed under us: the process was removed
        finally:
            stdout.close()

    def wait(self, timeout=None):
        if self._exited.wait(timeout):
            return self.popen.returncode
        return None

    def terminate(self, grace_seconds: float) -> None:
        self._signal(signal.SIGTERM)
        if self.wait(grace_seconds) is None:
            self._signal(signal.SIGKILL)
            self.popen.wait()

    def remove(self) -> None:
        self._signal(signal.SIGKILL)  # the group: what the program started dies with it
        self.popen.wait()
        if self.popen.stdout and not self._reading:  # a reader closes the pipe itself (`_chunks`)
            self.popen.stdout.close()
        if self.pid_files is not None:
            self.pid_files.forget(self.popen.pid)
        self.removed = True

    def _signal(self, sig) -> None:
        try:
            os.killpg(self.popen.pid, sig)  # the whole group: scripts often fork workers
        except ProcessLookupError:
            pass


class ProcessServer(LocalProcess, ServerProcess):
    def __init__(self, popen: subprocess.Popen, url: str, pid_files: PidFiles | None = None):
        super().__init__(popen, pid_files)
        self.url = url

    def exit_code(self) -> int | None:
        return self.popen.returncode if self._exited.is_set() else None

    def stop(self, grace_seconds: float) -> None:
        self.terminate(grace_seconds)
        self.remove()


class ProcessRuntime(Runtime):
    name = "process"

    def __init__(self, process_images: dict[str, str] | None = None, endpoint_url: str | None = None):
        super().__init__()
        self.process_images = process_images or {}
        self.endpoint_url = endpoint_url
        self.pid_files: PidFiles | None = None  # once claimed (`claim`)
        self._reaper: subprocess.Popen | None = None
        self._reaper_lock = threading.Lock()

    def claim(self, owner: str, work_dir: Path) -> None:
        self.pid_files = PidFiles(Path(work_dir) / PIDS_FOLDER)
        super().claim(owner, work_dir)

    def remove_leftovers(self) -> None:
        if self.pid_files is not None:
            self.pid_files.kill_all()

    @staticmethod
    def _environment(contract_env: dict, target: ImageTarget) -> dict:
        env = {k: v for k, v in os.environ.items() if k in PASSED_ON or k.startswith(PASSED_ON_PREFIXES)}
        env.update(contract_env)
        if target.builtin:  # the algorithms package must import from the job's folder too
            env["PYTHONPATH"] = os.pathsep.join(p for p in (_ALGORITHMS_HOME, env.get("PYTHONPATH")) if p)
            env[contract.IMAGE_ENV] = target.uri
        if target.program_dir is not None:
            env["PATH"] = f"{target.program_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def command(self, target: ImageTarget, mode: str, entrypoint=None, arguments=None) -> list[str]:
        if target.builtin:
            return [sys.executable, "-m", f"algorithms.{target.algorithm}", mode]
        if target.program_dir is not None:
            if entrypoint:
                return list(entrypoint) + list(arguments or [])
            return [str(target.program_dir / mode)] + list(arguments or [])
        raise RuntimeUnavailable(NO_DOCKER.format(image=target.uri))

    def run_training(self, spec: TrainingHostSpec) -> TrainingProcess:
        target = resolve(spec.image, self.process_images)
        command = self.command(target, contract.TRAIN, spec.entrypoint, spec.arguments)
        env = self._environment({**spec.environment, contract.ROOT_ENV: str(spec.root)}, target)
        if len(spec.hosts) > 1:
            env[contract.HOSTS_ENV] = "{" + ",".join(f'"{h}": "127.0.0.1"' for h in spec.hosts) + "}"
        popen = self._spawn(command, spec.root, env)
        self._limit_memory(popen.pid, spec.instance_type)
        return self._track(LocalProcess(popen, self.pid_files))

    def _limit_memory(self, pid: int, instance_type: str) -> None:
        """With --instance-limits, the instance type's memory as the process's address-space limit
        (its children inherit it). Processes get no CPU limit: that needs Docker."""
        given = resources(instance_type) if self.instance_limits else None
        if given is not None:
            try:
                resource.prlimit(pid, resource.RLIMIT_AS, (given.memory_bytes, given.memory_bytes))
            except (OSError, ValueError):  # it exited already
                pass

    def start_server(self, spec: ServerSpec) -> ServerProcess:
        target = resolve(spec.image, self.process_images)
        command = self.command(target, contract.SERVE)
        port = free_port()
        env = self._environment({**spec.environment, contract.ROOT_ENV: str(spec.root),
                                 contract.BIND_TO_PORT_ENV: str(port)}, target)
        spec.root.mkdir(parents=True, exist_ok=True)
        if spec.model_dir is not None and not (spec.root / "model").exists():
            (spec.root / "model").symlink_to(spec.model_dir, target_is_directory=True)
        return self._track(ProcessServer(self._spawn(command, spec.root, env), f"http://127.0.0.1:{port}",
                                         self.pid_files))

    def _spawn(self, command: list[str], cwd, env) -> subprocess.Popen:
        """Start a child in a process group of its own, recorded before anything else happens."""
        self._ensure_reaper()
        try:
            popen = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise RuntimeUnavailable(f"Could not start {' '.join(command)}: {exc.strerror or exc}") from None
        if self.pid_files is not None:
            self.pid_files.record(popen.pid)
        return popen

    def _ensure_reaper(self) -> None:
        with self._reaper_lock:
            if self._reaper is None and self.pid_files is not None:
                self._reaper = reaper.start(self.pid_files.folder)

    def close(self) -> None:
        """After `halt_everything`: the reaper, which finds nothing left, ends with its pipe."""
        with self._reaper_lock:
            if self._reaper is not None:
                self._reaper.stdin.close()
                self._reaper.wait(10)
                self._reaper = None



def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
