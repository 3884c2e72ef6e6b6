"""serve_bench.py --profile: where `smlocal serve`'s CPU goes while one sequential boto3 client
calls its endpoint, seen from outside, so that it works on any tree.

Two views of the same phase: each smlocal thread's CPU from /proc (exact; py-spy supplies the
names Python gives its threads), and py-spy's samples of every smlocal process (the server and any
descendant that is not the container). py-spy leaves out idle threads, so its shares approximate
CPU — but only without `--native`: with native frames it samples threads blocked in the C library
as well, which drowns everything else. So the frames are Python's, and the time an event loop
spends in compiled code (uvloop, httptools, the system calls they make) shows as the Python frame
that runs the loop (`Runner.run`, asyncio/runners.py).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import process_cpu
from hosting_bench import JUDGED, Load, measure_phase

SAMPLE_RATE = 100
# back to back on one connection (the judged path), a new connection each call, nobody calling
PROFILED = (JUDGED, "raw, a new connection each call", "")
ROWS = 12


def thread_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds so far of every thread of `pids`, by thread id."""
    found = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            found[int(task.name)] = process_cpu(f"{pid}/task/{task.name}")  # type: ignore[arg-type]
    return found


def start_py_spy(pids: list[int], seconds: float, folder: Path) -> list[tuple]:
    runs = []
    for pid in pids:
        out = folder / f"{pid}.txt"
        command = ["py-spy", "record", "-p", str(pid), "-d", str(int(seconds) + 1), "-r", str(SAMPLE_RATE),
                   "-f", "raw", "-o", str(out), "--threads", "--nonblocking"]
        runs.append((pid, out, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
    return runs


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) output: `frame;frame;... count` per line, the thread first."""
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def module_of(frame: str) -> str:
    """`fn (emulator/aws/logs.py:60)` → `emulator/aws/logs.py`; a native frame → its library."""
    where = frame.rpartition(" (")[2].rstrip(")")
    return where.rsplit(":", 1)[0] if where and where != frame else frame


def breakdowns(stacks: list[tuple[list[str], int]]) -> dict[str, Counter]:
    """Samples by thread, by the module running (self) and by our own module on the stack
    (inclusive: every emulator/ file a sample passes through)."""
    threads, modules, ours = Counter(), Counter(), Counter()
    for frames, count in stacks:
        threads[frames[0]] += count
        modules[module_of(frames[-1])] += count
        for module in {module_of(f) for f in frames[1:] if "(emulator/" in f}:
            ours[module] += count
    return {"thread": threads, "module running (self)": modules, "smlocal module on the stack (inclusive)": ours}


def thread_names(stacks, runs, server_pid: int) -> dict[int, str]:
    """Thread id → `process: name`, from py-spy's `thread (tid): name` first frames."""
    names = {}
    for (pid, out, _) in runs:
        process = "server" if pid == server_pid else _module_run(pid)
        for frames, _ in (read_stacks(out) if out.exists() else []):
            tid, _, name = frames[0].removeprefix("thread (").partition("): ")
            if tid.isdigit():
                names[int(tid)] = f"{process}: {name}"
    return names


def _module_run(pid: int) -> str:
    """`python -m emulator.data_plane_worker ...` → `emulator.data_plane_worker`."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return str(pid)
    return args[args.index("-m") + 1] if "-m" in args[:-1] else f"pid {pid}"


def print_threads(before: dict, after: dict, per: float, unit: str, names: dict[int, str]) -> None:
    busy = sorted(((after[t] - before.get(t, 0.0), t) for t in after), reverse=True)
    print(f"| thread (from /proc) | ms of CPU {unit} |\n|---|---:|")
    for cpu, tid in busy[:ROWS]:
        if cpu > 0:
            print(f"| {names.get(tid, tid)} | {cpu / per * 1000:.3f} |")


def print_breakdown(title: str, counts: Counter, total: int, ms: float, unit: str) -> None:
    print(f"\n| {title} | share of smlocal samples | ≈ ms of CPU {unit} |\n|---|---:|---:|")
    for name, count in counts.most_common(ROWS):
        print(f"| `{name[:110]}` | {count / total:.1%} | {count / total * ms:.3f} |")


def profiled_phase(pool, serve, seconds: float, folder: Path, path: str) -> tuple[Load, list, dict, dict]:
    """py-spy and per-thread CPU around one sequential client's phase on `path`, or (empty path)
    `seconds` of nobody calling."""
    pids = serve.smlocal_pids()
    runs = start_py_spy(pids, seconds, folder)
    load, before = Load(path), thread_cpu(pids)
    if path:
        mode, target = serve.modes()[path]
        measure_phase(pool, 1, mode, target, seconds, load, serve.meters(), warm_up=1.0)
    else:
        time.sleep(seconds + 1.0)
        load.seconds = seconds + 1.0
    after = thread_cpu(pids)
    for _, _, popen in runs:
        popen.wait()
    return load, runs, before, after


def profile_serve(pool, serve, runtime: str, seconds: float, folder: Path, path: str) -> None:
    load, runs, before, after = profiled_phase(pool, serve, seconds, folder, path)
    stacks = [s for _, out, _ in runs if out.exists() for s in read_stacks(out)]
    calls = len(load.latencies)
    busy_ms = sum(after[t] - before.get(t, 0.0) for t in after) * 1000
    per, unit = (calls, "per call") if path else (load.seconds, "per second")
    what = f"1 sequential client, {path}, {calls} calls in {seconds:g} s" if path else f"nobody calling, {load.seconds:g} s"
    print(f"\n### {runtime}, tree {serve.label}: {what} under py-spy; smlocal's CPU {busy_ms / per:.3f} ms {unit}\n")
    print_threads(before, after, per, unit, thread_names(stacks, runs, serve.popen.pid))
    total = sum(count for _, count in stacks)
    if not total:
        errors = "; ".join(p.stderr.read().decode(errors="replace")[-200:] for _, _, p in runs if p.stderr)
        print(f"py-spy recorded nothing: {errors or 'is py-spy installed? (pip install py-spy)'}")
        return
    for title, counts in breakdowns(stacks).items():
        print_breakdown(title, counts, total, busy_ms / per, unit)


def profile_serves(pool, serves, runtime: str, seconds: float) -> None:
    if shutil.which("py-spy") is None:
        print("\n--profile needs py-spy on PATH (pip install py-spy)")
        return
    folder = Path(tempfile.mkdtemp(prefix="smlocal-serve-profile-"))
    try:
        for serve in serves:
            for path in PROFILED:
                profile_serve(pool, serve, runtime, seconds, folder, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
