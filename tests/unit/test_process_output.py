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


def test_a_removed_process_reader_never_reads_a_file_opened_after_it(tmp_path, monkeypatch):
    """`remove()` closes the output pipe while the reader may sit in its pause. The reader must not
    read on from the pipe's old descriptor number: the next file opened anywhere in smlocal gets that
    number, and its bytes would be taken (a restart once failed that way, botocore finding one of its
    JSON files empty)."""
    import os
    import threading

    import emulator.runtime.process

    monkeypatch.setattr(emulator.runtime.process, "READ_PAUSE_SECONDS", 0.5)  # the reader is still pausing below
    popen = subprocess.Popen([sys.executable, "-c", "import sys, time; print('up', flush=True); time.sleep(60)"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
    process = LocalProcess(popen)
    first = threading.Event()
    seen: list[str] = []

    def read():
        for line in process.lines():
            seen.append(line)
            first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert first.wait(10)  # the reader has read once and is pausing
    number = popen.stdout.fileno()
    process.remove()
    victim = tmp_path / "victim.json"
    victim.write_bytes(b'{"intact": true}')
    opened = []  # the next files opened in smlocal: one takes the pipe's number if it is free already
    while len(opened) < 16 and number not in opened:
        opened.append(os.open(victim, os.O_RDONLY))
    try:
        reader.join(5)
        assert not reader.is_alive() and popen.stdout.closed  # the reader ended and closed the pipe
        for fd in opened:
            assert os.read(fd, 1024) == b'{"intact": true}', f"descriptor {fd} (the pipe's old number) was read"
    finally:
        for fd in opened:
            os.close(fd)
    assert seen == ["up"]
