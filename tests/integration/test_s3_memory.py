"""Large uploads do not stay resident once answered.

Each upload used to leave its whole request (body included) in a reference cycle until a cyclic
collection happened to run, which the count of new objects triggers, not their size: three more
48 MiB uploads left the server 160 MiB larger. In-process, with the cyclic collector off, nothing
may still refer to an answered upload's body; as a process, `smlocal serve`'s RSS stays level over
several big PutObjects, in persistent and in ephemeral mode.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests

from emulator.testing import LocalServer
from tests.conftest import NO_RETRY
from tests.integration.test_restart import _free_port

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
UPLOAD = 48 * MiB


@pytest.mark.parametrize("ephemeral", [False, True], ids=["on-disk", "ephemeral"])
def test_nothing_refers_to_an_answered_upload(ephemeral):
    with LocalServer(ephemeral=ephemeral) as local:
        s3 = boto3.client("s3", endpoint_url=local.url, region_name="us-east-1", config=NO_RETRY)
        s3.create_bucket(Bucket="memory")
        body = os.urandom(8 * MiB)
        collecting = gc.isenabled()
        gc.disable()  # garbage in a cycle stays until collected: it must not be needed to free the body
        try:
            s3.put_object(Bucket="memory", Key="k", Body=body)
            holders = _holders_of(len(body), body)
            deadline = time.monotonic() + 5
            while holders and time.monotonic() < deadline:  # the server's thread may still be finishing
                time.sleep(0.05)
                holders = _holders_of(len(body), body)
        finally:
            if collecting:
                gc.enable()
        assert not holders, f"still referring to the body: {holders}"


def _holders_of(size: int, ours: bytes) -> list[str]:
    """Objects the collector tracks whose attributes hold a `size`-byte bytes other than `ours`."""
    found = []
    for thing in gc.get_objects():
        if isinstance(thing, dict) and any(
                isinstance(value, (bytes, bytearray)) and len(value) == size and value is not ours
                for value in thing.values()):
            found.append(", ".join(list(map(str, thing))[:8]))
    return found


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


@pytest.fixture(params=["on-disk", "ephemeral"])
def server(request, tmp_path):
    port = _free_port()
    mode = ["--ephemeral"] if request.param == "ephemeral" else ["--data-dir", str(tmp_path)]
    process = subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--port", str(port), "--runtime", "fake",
                                *mode], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/_smlocal/health", timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield process.pid, url
    process.terminate()
    process.wait(30)


def test_big_uploads_do_not_stay_resident(server):
    pid, url = server
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=NO_RETRY)
    s3.create_bucket(Bucket="memory")
    body = os.urandom(UPLOAD)
    for i in range(2):  # the allocator's arenas settle
        s3.put_object(Bucket="memory", Key=f"warm-{i}", Body=body)
    settled = _rss(pid)
    for i in range(4):
        s3.put_object(Bucket="memory", Key=f"object-{i}", Body=body)
    grown = _rss(pid) - settled
    # Uploads that stayed resident would add one body each (four here). The allocator may keep one
    # transient copy's worth of freed pages (a2wsgi and werkzeug each hold the body while it is
    # read), so the bound is two bodies, not one: CI once measured 48.03 MiB against a 48 MiB bound.
    assert grown < 2 * UPLOAD, f"the server grew {grown / MiB:.0f} MiB over four more {UPLOAD // MiB} MiB uploads"
    assert s3.get_object(Bucket="memory", Key="object-3")["Body"].read() == body
