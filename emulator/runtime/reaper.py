"""The process runtime's reaper: a small process that outlives the server by a moment, to kill the
server's local children (and every process they started) when the server dies without stopping them.

A parent-death signal (Linux's PR_SET_PDEATHSIG) reaches only a direct child, and setting it needs a
preexec_fn, which is unsafe in a threaded server; a training script's own children would survive.
So the server starts this one process, holding the write end of a pipe to its stdin: when the
server dies, however it dies (kill -9 included), the pipe reads end-of-file, and the reaper kills
the process group of every child still recorded in the pid folder (emulator/runtime/ownership.py).
On a clean stop the server has removed its children and their records first, and the reaper finds
nothing to do.

    python -m emulator.runtime.reaper PIDS_FOLDER      (stdin: the server's pipe)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from emulator.runtime.ownership import PidFiles

PACKAGE_HOME = str(Path(__file__).resolve().parents[2])  # where `emulator` imports from


def start(folder: Path) -> subprocess.Popen:
    """Start the reaper for the children recorded in `folder`; it acts when the returned process's
    stdin closes (the server closes it at the end of a clean stop, the system at its death)."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": PACKAGE_HOME}
    return subprocess.Popen([sys.executable, "-m", "emulator.runtime.reaper", str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def main(folder: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the server's to handle
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    PidFiles(Path(folder)).kill_all()


if __name__ == "__main__":
    main(sys.argv[1])
