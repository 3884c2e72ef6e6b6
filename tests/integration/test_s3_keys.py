"""S3 keys reach moto exactly as the client sent them, and S3's key limit holds.

Each group of keys below collided before (the ASGI-to-WSGI bridge decoded the path, moto decoded
it again), so one PutObject silently overwrote another: every key must come back on its own, with
its own bytes, from ListObjectsV2 and GetObject, through boto3 and the AWS CLI, in persistent and
ephemeral mode, and after a restart.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.parse

import boto3
import pytest
import requests

from emulator.testing import LocalServer
from tests.conftest import NO_RETRY
from tests.integration.test_s3_errors import AUTHORIZATION
from tests.integration.helpers import error_of, unique

# Keys that are distinct on S3 but were mangled into one another.
TRICKY_KEYS = [
    "a b", "a%20b", "a+b", "a%2Bb", "A", "%41", "a/b", "a%2Fb", "x%y", "x%25y", "x%2525y",
    "k?q=1", "k%3Fq%3D1", "semi;colon=1", "hash#frag", "tilde~", "ü/ß €", "%C3%BC", "dir/", "dir//x",
    "back\\slash", "quote\"'", "<amp&>",
]


def _bodies(keys):
    return {key: f"body of {key!r}".encode() for key in keys}


def _put_all(s3, bucket, bodies):
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def _assert_all_exact(s3, bucket, bodies):
    listed = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in page.get("Contents", [])]
    assert sorted(listed) == sorted(bodies)
    for key, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body), key


def test_distinct_keys_stay_distinct(s3):
    bucket = unique("keys")
    s3.create_bucket(Bucket=bucket)
    bodies = _bodies(TRICKY_KEYS)
    _put_all(s3, bucket, bodies)
    _assert_all_exact(s3, bucket, bodies)


def test_copy_and_delete_name_the_exact_key(s3):
    bucket = unique("keys-copy")
    s3.create_bucket(Bucket=bucket)
    bodies = _bodies(["a b", "a%20b", "a/b", "a%2Fb"])
    _put_all(s3, bucket, bodies)
    s3.copy_object(Bucket=bucket, Key="copy%20of", CopySource={"Bucket": bucket, "Key": "a%20b"})
    assert s3.get_object(Bucket=bucket, Key="copy%20of")["Body"].read() == bodies["a%20b"]
    s3.delete_object(Bucket=bucket, Key="a%2Fb")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a b"}]})
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert left == {"a%20b", "a/b", "copy%20of"}


def test_multipart_upload_keeps_the_exact_key(s3):
    bucket = unique("keys-mpu")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="big file", Body=b"other")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big%20file")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="big%20file", UploadId=upload, PartNumber=1, Body=b"multipart")
    s3.complete_multipart_upload(Bucket=bucket, Key="big%20file", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="big%20file")["Body"].read() == b"multipart"
    assert s3.get_object(Bucket=bucket, Key="big file")["Body"].read() == b"other"


def test_presigned_urls_name_the_exact_key(s3):
    bucket = unique("keys-presigned")
    s3.create_bucket(Bucket=bucket)
    bodies = _bodies(["a b", "a%20b", "a+b"])
    for key, body in bodies.items():
        url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
        assert requests.put(url, data=body, timeout=30).status_code == 200
    for key, body in bodies.items():
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
        assert requests.get(url, timeout=30).content == body
    _assert_all_exact(s3, bucket, bodies)


def test_unencoded_octets_in_the_path_are_kept(server, s3):
    """Clients other than botocore may send `;` in a path unencoded: it is no URL parameter."""
    bucket = unique("keys-raw")
    s3.create_bucket(Bucket=bucket)
    raw = {b"a;b=c": "a;b=c", b"semi;x;y/z;w": "semi;x;y/z;w"}  # (raw UTF-8: the HTTP parser's 400)
    for path in raw:
        assert _raw(server, "PUT", f"/{bucket}/{path.decode()}", path)[0] == 200
    for path, key in raw.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == path


def test_keys_survive_a_restart_exactly(tmp_path):
    bodies = _bodies(TRICKY_KEYS)
    bucket = unique("keys-restart")
    with LocalServer(data_dir=tmp_path) as server:
        s3 = _client(server)
        s3.create_bucket(Bucket=bucket)
        _put_all(s3, bucket, bodies)
    with LocalServer(data_dir=tmp_path) as server:
        _assert_all_exact(_client(server), bucket, bodies)


def test_ephemeral_mode_keeps_keys_exact_too():
    bodies = _bodies(["a b", "a%20b", "%41", "A"])
    with LocalServer(ephemeral=True) as server:
        s3 = _client(server)
        bucket = unique("keys-eph")
        s3.create_bucket(Bucket=bucket)
        _put_all(s3, bucket, bodies)
        _assert_all_exact(s3, bucket, bodies)


def test_aws_cli_cp_and_ls_keep_keys_exact(server, tmp_path):
    bucket = unique("keys-cli")
    assert _aws(server, "s3", "mb", f"s3://{bucket}").returncode == 0
    names = ["a b.txt", "a%20b.txt", "a+b.txt", "%41.txt", "A.txt"]
    for name in names:
        source = tmp_path / f"{abs(hash(name))}.src"
        source.write_bytes(f"cli {name}".encode())
        copied = _aws(server, "s3", "cp", str(source), f"s3://{bucket}/{name}")
        assert copied.returncode == 0, copied.stderr
    listed = _aws(server, "s3", "ls", f"s3://{bucket}/")
    assert sorted(line.split(None, 3)[3] for line in listed.stdout.splitlines()) == sorted(names)
    for name in names:
        target = tmp_path / "got"
        fetched = _aws(server, "s3", "cp", f"s3://{bucket}/{name}", str(target))
        assert fetched.returncode == 0, fetched.stderr
        assert target.read_bytes() == f"cli {name}".encode()


@pytest.mark.parametrize("key", ["k" * 1025, "€" * 342, "d/" * 512 + "x"], ids=["ascii", "utf8", "slashes"])
def test_keys_over_1024_bytes_are_refused(s3, key):
    bucket = unique("keys-long")
    s3.create_bucket(Bucket=bucket)
    err = error_of(s3.put_object, Bucket=bucket, Key=key, Body=b"x")
    assert err.response["Error"]["Code"] == "KeyTooLongError"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    err = error_of(s3.create_multipart_upload, Bucket=bucket, Key=key)
    assert err.response["Error"]["Code"] == "KeyTooLongError"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD", "DELETE"])
def test_keys_that_are_not_utf8_are_invalid_uri(server, s3, method):
    bucket = unique("keys-utf8")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="\ufffd", Body=b"replacement character")
    for target in (f"/{bucket}/%FF", f"/{bucket}/a%C3", f"/{bucket}/%ED%A0%80"):
        status, text = _raw(server, method, target, b"x" if method == "PUT" else b"")
        assert status == 400, (target, text)
        if method != "HEAD":
            assert "<Code>InvalidURI</Code>" in text
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["\ufffd"]
    assert s3.get_object(Bucket=bucket, Key="\ufffd")["Body"].read() == b"replacement character"


def _raw(server, method: str, target: str, body: bytes) -> tuple[int, str]:
    url = urllib.parse.urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: {AUTHORIZATION}\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        answer = sock.makefile("rb").read().decode("utf-8", "replace")
    return int(answer.split()[1]), answer


def test_a_key_of_exactly_1024_bytes_is_kept(s3):
    bucket = unique("keys-max")
    s3.create_bucket(Bucket=bucket)
    key = "€" * 341 + "k"  # 1,024 bytes of UTF-8
    s3.put_object(Bucket=bucket, Key=key, Body=b"max")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"max"


def _client(server):
    return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", config=NO_RETRY)


def _aws(server, *args):
    env = {**os.environ, **server.client_env()}
    return subprocess.run([sys.executable, "-m", "awscli", *args], capture_output=True, text=True, env=env,
                          timeout=120)
