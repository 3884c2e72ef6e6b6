"""Slow, broken and chunked request bodies, spoken to the port over raw sockets: a body is read whole
on the event loop before a thread is taken, so clients that stall cannot starve the control plane or
S3; a body that stops arriving is answered RequestTimeout and its connection closed; a chunked
SageMaker body is read like any other; every request gets exactly one answer."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.parse

import boto3
import pytest

from emulator.testing import LocalServer
from tests.conftest import NO_RETRY
from tests.integration.helpers import make_config, make_endpoint, make_model, unique

READ_TIMEOUT = 1.5
JSON_11 = "application/x-amz-json-1.1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalServer(data_dir=tmp_path_factory.mktemp("slow"), runtime="fake", read_timeout=READ_TIMEOUT) as server:
        yield server


@pytest.fixture(scope="module")
def sm(server):
    return boto3.session.Session(region_name="us-east-1").client("sagemaker", endpoint_url=server.url, config=NO_RETRY)


def address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port


def json_head(target: str, framing: str) -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: SageMaker.{target}\r\nContent-Type: {JSON_11}\r\n"
            f"{framing}\r\n\r\n").encode()


def read_until_closed(sock: socket.socket) -> bytes:
    answer = b""
    while piece := sock.recv(65536):
        answer += piece
    return answer


def test_a_chunked_sagemaker_body_is_read_whole(server, sm):
    keep = unique("chunked-keep")
    make_model(sm, keep)
    make_model(sm, unique("chunked-other"))
    body = json.dumps({"NameContains": keep}).encode()
    with socket.create_connection(address(server.url), timeout=10) as sock:
        sock.sendall(json_head("ListModels", "Transfer-Encoding: chunked\r\nConnection: close"))
        half = len(body) // 2
        for piece in (body[:half], body[half:]):
            time.sleep(0.1)
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        answer = read_until_closed(sock)
    head, _, document = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:300]
    assert [m["ModelName"] for m in json.loads(document)["Models"]] == [keep]


def test_a_broken_chunked_body_gets_one_answer(server):
    """The headers first, then a chunk size that is not hex: one 400, never a 200 before it."""
    with socket.create_connection(address(server.url), timeout=10) as sock:
        sock.sendall(json_head("ListModels", "Transfer-Encoding: chunked"))
        time.sleep(0.3)
        sock.sendall(b"zz\r\n{}\r\n0\r\n\r\n")
        answer = read_until_closed(sock)
    assert answer.count(b"HTTP/1.1 ") == 1, answer[:500]
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]


@pytest.mark.parametrize("framing", [
    json_head("ListModels", "Content-Length: 50"),
    b"PUT /some-bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n",
    b"POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 50\r\n\r\n",
], ids=["sagemaker", "s3", "runtime"])
def test_a_body_shorter_than_declared_times_out_with_a_closed_connection(server, framing):
    with socket.create_connection(address(server.url), timeout=READ_TIMEOUT + 10) as sock:
        sock.sendall(framing + b"{}")  # 2 bytes of 50
        started = time.monotonic()
        answer = read_until_closed(sock)  # returns once the server closes the connection
        waited = time.monotonic() - started
    assert READ_TIMEOUT - 0.2 <= waited < READ_TIMEOUT + 5, waited
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"RequestTimeout" in answer and b"connection: close" in answer.lower(), answer[:500]


def test_stalled_bodies_do_not_starve_the_control_plane_or_s3(tmp_path):
    """20 connections that declare a body and send a part of it (more than the 16 threads), then S3
    and SageMaker answer others at once."""
    with LocalServer(data_dir=tmp_path, runtime="fake", threads=16) as server:
        session = boto3.session.Session(region_name="us-east-1")
        sm = session.client("sagemaker", endpoint_url=server.url, config=NO_RETRY)
        s3 = session.client("s3", endpoint_url=server.url, config=NO_RETRY)
        endpoint = make_endpoint(sm, make_config(sm, make_model(sm)))
        s3.create_bucket(Bucket="stalled")
        with contextlib.ExitStack() as stack:
            for number in range(20):
                sock = stack.enter_context(socket.create_connection(address(server.url), timeout=10))
                if number % 2:
                    sock.sendall(b"PUT /stalled/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
                else:
                    sock.sendall(json_head("DescribeEndpoint", "Content-Length: 1000") + b'{"Endpoint')
            time.sleep(0.5)  # every stalled request has reached the server
            started = time.monotonic()
            assert "stalled" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
            assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
            assert time.monotonic() - started < 2.0
