"""What large S3 uploads leave resident in smlocal: its RSS after each PutObject, through boto3.

    python benchmarks/s3_memory_bench.py [--uploads 4] [--mib 64] [--ephemeral]

Starts `smlocal serve` as its own process (so the client's buffers never count), uploads the
same number of distinct objects of --mib MiB each with one PutObject (boto3's put_object, not
the multipart transfer manager), and after each upload prints the server's VmRSS and VmHWM
(peak) from /proc/<pid>/status, with nothing else happening in between. Then one GetObject of the
last object, read and dropped, and the RSS again. Bodies are random, so nothing is compressible.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import load_average, prepare

ROOT = prepare()

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def serve(data_dir: str, ephemeral: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "emulator", "serve", "--port", str(port), "--runtime", "fake"]
    command += ["--ephemeral"] if ephemeral else ["--data-dir", data_dir]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_smlocal/health", timeout=2)
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("smlocal did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--ephemeral", action="store_true", help="moto alone, nothing persisted")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smlocal-membench-") as data_dir:
        process, url = serve(data_dir, args.ephemeral)
        try:
            run(process.pid, url, args)
        finally:
            process.terminate()
            process.wait(30)


def run(pid: int, url: str, args) -> None:
    s3 = boto3.client("s3", endpoint_url=url, config=Config(retries={"max_attempts": 1}, read_timeout=300))
    s3.create_bucket(Bucket="membench")
    body = os.urandom(args.mib * MiB)
    print(f"smlocal {'--ephemeral' if args.ephemeral else 'on disk'}: {args.uploads} x {args.mib} MiB PutObject"
          f" ({load_average()})")
    print(f"{'after':<14}{'RSS MiB':>10}{'peak MiB':>10}{'seconds':>10}")
    print(f"{'start':<14}{memory(pid)[0]:>10.0f}{memory(pid)[1]:>10.0f}")
    for i in range(args.uploads):
        started = time.perf_counter()
        s3.put_object(Bucket="membench", Key=f"object-{i}", Body=body)
        rss, peak = memory(pid)
        print(f"{f'upload {i + 1}':<14}{rss:>10.0f}{peak:>10.0f}{time.perf_counter() - started:>10.2f}")
    started = time.perf_counter()
    got = s3.get_object(Bucket="membench", Key=f"object-{args.uploads - 1}")["Body"].read()
    assert got == body
    del got
    rss, peak = memory(pid)
    print(f"{'one download':<14}{rss:>10.0f}{peak:>10.0f}{time.perf_counter() - started:>10.2f}")


if __name__ == "__main__":
    main()
