"""The port itself, spoken to byte by byte: one keep-alive connection carrying the control plane, S3
and InvokeEndpoint in turn;
pipelined requests answered in order; `Connection: close` and HTTP/1.0; `Expect: 100-continue`
with an empty body and on an invocation; chunked request bodies; a body too large refused before it
is read; a client that leaves mid-call; HEAD without a body."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import socket
import time
import urllib.parse

import boto3
import pytest

from emulator.testing import LocalServer
from tests.conftest import NO_RETRY
from tests.integration.helpers import make_config, make_endpoint, make_model, unique


@pytest.fixture(scope="module")
def endpoint_url(tmp_path_factory):
    with LocalServer(data_dir=tmp_path_factory.mktemp("port"), runtime="fake") as server:
        yield server.url


@pytest.fixture(scope="module")
def sm(endpoint_url):
    return boto3.session.Session(region_name="us-east-1").client("sagemaker", endpoint_url=endpoint_url,
                                                                 config=NO_RETRY)


@pytest.fixture(scope="module")
def s3(endpoint_url):
    return boto3.session.Session(region_name="us-east-1").client("s3", endpoint_url=endpoint_url, config=NO_RETRY)


def connect(endpoint_url: str) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(endpoint_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.connect()
    return connection


def presigned(s3, method: str, bucket: str, key: str) -> str:
    """The path and query of a presigned URL (moto refuses anonymous reads of a private bucket)."""
    url = s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key})
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}"


def call(connection, method, path, body=b"", headers=None):
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_one_connection_carries_every_kind_of_call(sm, s3, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    bucket = unique("http")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"stored")
    connection = connect(endpoint_url)
    local_port = connection.sock.getsockname()[1]
    for _ in range(3):
        status, headers, body = call(connection, "POST", f"/endpoints/{name}/invocations", b"1,2",
                                     {"Content-Type": "text/csv"})
        assert (status, body, headers["x-amzn-invoked-production-variant"]) == (200, b"1,2", "AllTraffic")
        status, _, body = call(connection, "POST", "/", json.dumps({"EndpointName": name}).encode(), {
            "X-Amz-Target": "SageMaker.DescribeEndpoint", "Content-Type": "application/x-amz-json-1.1"})
        assert status == 200 and json.loads(body)["EndpointName"] == name
        status, _, body = call(connection, "GET", presigned(s3, "get_object", bucket, "k"))
        assert (status, body) == (200, b"stored")
    assert connection.sock.getsockname()[1] == local_port  # still the first connection


def test_empty_put_with_expect_continue_completes_at_once(s3, endpoint_url):
    bucket = unique("http")
    s3.create_bucket(Bucket=bucket)
    connection = connect(endpoint_url)
    started = time.monotonic()
    status, _, _ = call(connection, "PUT", f"/{bucket}/empty", b"",
                        {"Expect": "100-continue", "Content-Length": "0"})
    assert status == 200 and time.monotonic() - started < 1.0
    assert s3.get_object(Bucket=bucket, Key="empty")["ContentLength"] == 0


def test_chunked_invocation_body(sm, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    parts = urllib.parse.urlsplit(endpoint_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"POST /endpoints/{name}/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n3\r\n1,2\r\n2\r\n,3\r\n0\r\n\r\n".encode())
        answer = b""
        while not answer.endswith(b"1,2,3"):
            piece = sock.recv(65536)
            assert piece, answer
            answer += piece
    assert answer.startswith(b"HTTP/1.1 200")


def test_too_large_invocation_is_refused_before_it_is_read(sm, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    connection = connect(endpoint_url)
    connection.putrequest("POST", f"/endpoints/{name}/invocations")
    connection.putheader("Content-Type", "text/csv")
    connection.putheader("Content-Length", str(50 * 1024 * 1024))
    connection.endheaders()  # no body follows: the answer must not wait for it
    response = connection.getresponse()
    assert response.status == 400
    assert response.getheader("X-Amzn-ErrorType") == "ValidationError"
    assert "exceeds" in json.loads(response.read())["message"]


def test_head_answers_without_a_body(s3, endpoint_url):
    bucket = unique("http")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"12345")
    connection = connect(endpoint_url)
    status, headers, body = call(connection, "HEAD", presigned(s3, "head_object", bucket, "k"))
    assert (status, headers["content-length"], body) == (200, "5", b"")
    status, _, body = call(connection, "GET", presigned(s3, "get_object", bucket, "k"))  # still in step
    assert (status, body) == (200, b"12345")


def raw_exchange(endpoint_url: str, data: bytes) -> bytes:
    """Send `data` in one write and read until the server closes the connection."""
    parts = urllib.parse.urlsplit(endpoint_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while piece := sock.recv(65536):
            answer += piece
    return answer


def read_answers(data: bytes) -> list[tuple[int, dict, bytes]]:
    """Every HTTP answer in `data`, in order."""

    class Unclosed(io.BytesIO):
        def close(self):  # HTTPResponse closes its file after each answer: the next one follows
            pass

    class Replay:
        def __init__(self):
            self.file = Unclosed(data)

        def makefile(self, mode):
            return self.file

    replay, answers = Replay(), []
    while replay.file.tell() < len(data):
        response = http.client.HTTPResponse(replay)
        response.begin()
        answers.append((response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()))
    return answers


def invocation(name: str, body: bytes, extra: str = "", version: str = "1.1") -> bytes:
    return (f"POST /endpoints/{name}/invocations HTTP/{version}\r\nHost: x\r\nContent-Type: text/csv\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def test_pipelined_requests_are_answered_in_order(sm, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    describe = json.dumps({"EndpointName": name}).encode()
    answers = read_answers(raw_exchange(endpoint_url, b"".join([
        invocation(name, b"first"),
        (f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: SageMaker.DescribeEndpoint\r\n"
         f"Content-Type: application/x-amz-json-1.1\r\nContent-Length: {len(describe)}\r\n\r\n").encode() + describe,
        invocation(name, b"second"),
        invocation(name, b"third"),
        invocation(name, b"last", "Connection: close\r\n"),
    ])))
    assert [status for status, _, _ in answers] == [200] * 5
    assert [answers[i][2] for i in (0, 2, 3, 4)] == [b"first", b"second", b"third", b"last"]
    assert json.loads(answers[1][2])["EndpointName"] == name
    assert answers[4][1]["connection"] == "close"


def test_http_1_0_invocation_closes_the_connection(sm, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    [(status, headers, body)] = read_answers(raw_exchange(endpoint_url, invocation(name, b"1,2", version="1.0")))
    assert (status, body, headers["connection"]) == (200, b"1,2", "close")
    assert headers["x-amzn-invoked-production-variant"] == "AllTraffic"


def test_invocation_with_expect_continue(sm, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    parts = urllib.parse.urlsplit(endpoint_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head, _, _ = invocation(name, b"", "Expect: 100-continue\r\nConnection: close\r\n").partition(b"\r\n\r\n")
        sock.sendall(head.replace(b"Content-Length: 0", b"Content-Length: 3") + b"\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 100")  # asked for the body before the answer
        sock.sendall(b"4,5")
        answer = b""
        while piece := sock.recv(65536):
            answer += piece
    [(status, _, body)] = read_answers(answer)
    assert (status, body) == (200, b"4,5")


def test_a_client_leaving_mid_call_does_not_disturb_the_others(sm, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    parts = urllib.parse.urlsplit(endpoint_url)
    for _ in range(5):
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            sock.sendall(invocation(name, b"gone"))  # and closed before the answer
    connection = connect(endpoint_url)
    status, _, body = call(connection, "POST", f"/endpoints/{name}/invocations", b"still", {"Content-Type": "text/csv"})
    assert (status, body) == (200, b"still")


# -- what changes from call to call on one connection is honoured and checked on every call ---------

def signed_by(region: str, service: str = "sagemaker") -> str:
    return (f"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/{region}/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0123")


def test_a_value_that_changes_between_calls_is_honoured(sm, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    connection = connect(endpoint_url)
    for attributes, content_type in [("a=1", "text/csv"), ("a=2", "text/csv"), ("a=2", "application/json"),
                                     ("a=1", "text/csv")]:
        for body in (b"1,2", b"3,4,5"):  # another length, the same shape
            status, headers, answer = call(connection, "POST", f"/endpoints/{name}/invocations", body, {
                "Content-Type": content_type, "X-Amzn-SageMaker-Custom-Attributes": attributes})
            assert (status, answer, headers["content-type"]) == (200, body, content_type)
            assert headers["x-amzn-sagemaker-custom-attributes"] == attributes


def test_a_bad_value_is_refused_every_time_beside_good_calls(sm, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    connection = connect(endpoint_url)
    path = f"/endpoints/{name}/invocations"
    for _ in range(2):
        status, _, _ = call(connection, "POST", path, b"1", {"Content-Type": "text/csv"})
        assert status == 200
        status, headers, body = call(connection, "POST", path, b"1", {
            "Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "a" * 1025})
        assert (status, headers["x-amzn-errortype"]) == (400, "ValidationException")
        assert "at 'customAttributes' failed to satisfy constraint" in json.loads(body)["message"]
        status, headers, body = call(connection, "POST", path, b"1", {
            "Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Variant": "Nope"})  # the router's check
        assert (status, json.loads(body)["message"]) == (400, f"Variant Nope not found for endpoint {name}.")


def test_the_signature_is_read_on_every_call(sm, endpoint_url):
    """The Authorization header stays out of the shape, so its region (and its service) count per call."""
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    connection = connect(endpoint_url)
    path = f"/endpoints/{name}/invocations"
    for _ in range(2):
        for region, expected in [("us-east-1", 200), ("eu-west-1", 400), (None, 200)]:
            headers = {"Content-Type": "text/csv", "X-Amz-Date": "20260101T000000Z"}
            if region:
                headers["Authorization"] = signed_by(region)
            status, _, body = call(connection, "POST", path, b"1", headers)
            assert status == expected, body
            if expected == 400:
                assert json.loads(body)["message"] == f"Endpoint {name} of account 123456789012 not found."
    status, headers, _ = call(connection, "POST", path, b"1", {"Content-Type": "text/csv",
                                                               "Authorization": signed_by("us-east-1", "s3")})
    assert "x-amzn-invoked-production-variant" not in headers  # signed for S3: not SageMaker Runtime's


def test_one_access_log_line_per_request(sm, s3, endpoint_url, caplog):
    """(smlocal's own calls, such as CloudWatch metrics it publishes, may log lines in between.)"""
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    smr = boto3.session.Session(region_name="us-east-1").client("sagemaker-runtime", endpoint_url=endpoint_url,
                                                                config=NO_RETRY)
    caplog.set_level(logging.INFO, logger="smlocal.access")
    ids = [sm.describe_endpoint(EndpointName=name)["ResponseMetadata"]["RequestId"],
           smr.invoke_endpoint(EndpointName=name, Body=b"1,2", ContentType="text/csv")["ResponseMetadata"]["RequestId"]]
    with pytest.raises(sm.exceptions.ClientError) as info:
        sm.describe_model(ModelName=unique("missing"))
    ids.append(info.value.response["ResponseMetadata"]["RequestId"])
    s3.list_buckets()
    time.sleep(0.3)  # a line is written once the answer is sent, so it may follow the client's return
    lines = [record.getMessage() for record in caplog.records if record.name == "smlocal.access"]
    described, invoked, missing = ([line for line in lines if line.endswith(" " + i)] for i in ids)
    assert len(described) == 1 and "POST / sagemaker.DescribeEndpoint 200" in described[0], lines
    assert len(invoked) == 1 and f"POST /endpoints/{name}/invocations sagemaker-runtime.InvokeEndpoint 200" in \
        invoked[0], lines
    assert len(missing) == 1 and "POST / sagemaker.DescribeModel 400" in missing[0], lines
    assert sum("GET / moto 200" in line for line in lines) == 1, lines


def test_a_chunked_invocation_past_6_mb_is_refused(sm, endpoint_url):
    """A chunked body declares no length: the limit holds as it is read."""
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    parts = urllib.parse.urlsplit(endpoint_url)
    chunk = b"x" * (1024 * 1024)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"POST /endpoints/{name}/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode())
        with contextlib.suppress(OSError):  # the answer may come (and the connection close) before the rest
            for _ in range(7):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        answer = b""
        with contextlib.suppress(OSError):
            while piece := sock.recv(65536):
                answer += piece
    [(status, headers, body)] = read_answers(answer)
    assert (status, headers["x-amzn-errortype"]) == (400, "ValidationError")
    assert "exceeds the maximum of 6291456 bytes (6 MB) for a real-time endpoint" in json.loads(body)["message"]
