"""The port itself, spoken to byte by byte: one keep-alive connection carrying the control plane, S3
and InvokeEndpoint (which the event loop answers) in turn; `Expect: 100-continue` with an empty
body; chunked request bodies; a body too large refused before it is read; HEAD without a body."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse

from tests.integration.helpers import make_config, make_endpoint, make_model, unique


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
