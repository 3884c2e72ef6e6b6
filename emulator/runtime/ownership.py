"""Which processes and containers belong to which smlocal server, so a crash leaves nothing behind.

Several smlocal servers may share one machine and one Docker engine (test suites start many). A
server owns exactly what carries its owner id: the id stored in its data directory (the file
`instance`), so that a server restarted on the same data directory recognises — and removes — what
an earlier run of it left when it was killed; an ephemeral server has a fresh id, hence no
leftovers, and never touches another server's things.

Local processes are recorded as one pid file per child in the work folder (`pids/`), with the
child's start time: a pid the system has since given to an unrelated process is never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path

OWNER_FILE = "instance"
PIDS_FOLDER = "pids"


def owner_id(data_dir: Path | None) -> str:
    """This server's owner id: kept in the data directory, fresh when there is none."""
    if data_dir is None:
        return uuid.uuid4().hex[:12]
    path = Path(data_dir) / OWNER_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = uuid.uuid4().hex[:12]
    path.write_text(owner + "\n")
    return owner


def start_time(pid: int) -> str | None:
    """When the process started (clock ticks since boot, Linux's /proc), or None if it is gone or
    the system cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the command name may hold spaces


class PidFiles:
    """One file per local child, `<pid>.json` holding its start time; the child leads its own process
    group (it was started in a new session), so the group id is its pid."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def record(self, pid: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{pid}.json").write_text(json.dumps({"pid": pid, "started": start_time(pid)}))

    def forget(self, pid: int) -> None:
        (self.folder / f"{pid}.json").unlink(missing_ok=True)

    def kill_all(self) -> list[int]:
        """SIGKILL the process group of every recorded child that is still the same process (or
        whose leader died and left members behind); returns the groups signalled."""
        killed = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
                continue
            if _kill_group(record["pid"], record.get("started")):
                killed.append(record["pid"])
            path.unlink(missing_ok=True)
        return killed


def _kill_group(pid: int, started: str | None) -> bool:
    now = start_time(pid)
    if now is not None and started is not None and now != started:
        return False  # the pid now names another process, which may lead a group of its own
    try:
        os.killpg(pid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False
