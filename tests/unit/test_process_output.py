"""The process runtime's output reader: a program that writes faster than the reader's pause must
not be throttled to one pipe's worth per pause (its writes would block, slowing a server that logs
every request), and every line still arrives whole and in order."""

from __future__ import annotations

import subprocess
import sys
import time

from emulator.runtime.base import READ_PAUSE_SECONDS
from emulator.runtime.process import LocalProcess

LINES, WIDTH = 1024, 4096  # 4 MB: 64 of Linux's default 64 KB pipes


def test_a_fast_writer_is_read_without_pausing_between_full_pipes():
    writer = ("import sys\n"
              f"for n in range({LINES}):\n"
              f"    sys.stdout.write(str(n).rjust({WIDTH - 1}, '.') + '\\n')\n")
    popen = subprocess.Popen([sys.executable, "-c", writer], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
    process = LocalProcess(popen)
    started = time.monotonic()
    lines = list(process.lines())
    elapsed = time.monotonic() - started
    assert lines == [str(n).rjust(WIDTH - 1, ".") for n in range(LINES)]
    assert process.wait(5) == 0
    # paused after every read of a default pipe, it took 64 pauses or more (3.2 s); now about 0.15 s
    assert elapsed < 32 * READ_PAUSE_SECONDS, f"{elapsed:.2f} s to read {LINES * WIDTH} bytes"
