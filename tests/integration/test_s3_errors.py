"""S3 requests moto cannot read answer S3's errors, never a 500, and an XML entity reads nothing.

Raw HTTP against the session server (with an Authorization header naming S3, which smlocal does
not verify): malformed and hostile XML bodies for the operations that take one, and methods on the
service root.
"""

from __future__ import annotations

import http.client
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from tests.integration.helpers import unique

SECRET = "smlocal-xxe-canary-7f3a9c"
AUTHORIZATION = ("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
                 "SignedHeaders=host, Signature=0")


def _send(server, method: str, path: str, body: bytes = b"") -> tuple[int, dict, str]:
    url = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/xml",
                                                                   "Authorization": AUTHORIZATION})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read().decode("utf-8", "replace")
    finally:
        connection.close()


def _code(text: str) -> str:
    return ET.fromstring(text).findtext("Code")


@pytest.fixture
def bucket(s3):
    name = unique("xml")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    return name


def _upload(s3, bucket: str) -> str:
    return s3.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]


GARBAGE = [b"garbage", b"<Tagging><TagSet><Tag>", b"<?xml version='1.0'?><Tagging>&undefined;</Tagging>",
           b"\xff\xfe<\x00", b"<Tagging><TagSet><Tag><Key>k</Key></TagSet></Tagging>"]


@pytest.mark.parametrize("body", GARBAGE, ids=["text", "truncated", "undefined-entity", "bad-encoding",
                                               "mismatched"])
@pytest.mark.parametrize("operation", ["PutBucketTagging", "DeleteObjects", "CompleteMultipartUpload",
                                       "PutObjectTagging", "PutBucketLifecycle"])
def test_malformed_xml_is_malformed_xml_400(server, s3, bucket, operation, body):
    method, path = _target(s3, bucket, operation)
    status, _, text = _send(server, method, path, body)
    assert (status, _code(text)) == (400, "MalformedXML"), text


TARGETS = {"PutBucketTagging": ("PUT", "/{bucket}?tagging"), "DeleteObjects": ("POST", "/{bucket}?delete"),
           "PutObjectTagging": ("PUT", "/{bucket}/k?tagging"), "PutBucketLifecycle": ("PUT", "/{bucket}?lifecycle")}


def _target(s3, bucket: str, operation: str) -> tuple[str, str]:
    if operation == "CompleteMultipartUpload":
        return "POST", f"/{bucket}/mpu?uploadId={_upload(s3, bucket)}"
    method, path = TARGETS[operation]
    return method, path.format(bucket=bucket)


def _xxe_bodies(secret_path: str) -> list[tuple[bytes, bool]]:
    """(body, whether S3 refuses it): entities are refused; a DOCTYPE that only names an external
    DTD declares nothing, and is never fetched."""
    entity = f'<!DOCTYPE Tagging [<!ENTITY e SYSTEM "file://{secret_path}">]>'
    parameter = f'<!DOCTYPE Tagging [<!ENTITY % p SYSTEM "file://{secret_path}"> %p;]>'
    external = f'<!DOCTYPE Tagging SYSTEM "file://{secret_path}">'
    tag = "<Tagging><TagSet><Tag><Key>k</Key><Value>{}</Value></Tag></TagSet></Tagging>"
    return [(f'<?xml version="1.0"?>{entity}{tag.format("&e;")}'.encode(), True),
            (f'<?xml version="1.0"?>{parameter}{tag.format("v")}'.encode(), True),
            (f'<?xml version="1.0"?>{external}{tag.format("v")}'.encode(), False)]


def test_xxe_never_reads_a_local_file(server, s3, bucket, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    for body, refused in _xxe_bodies(str(secret)):
        for method, path in [("PUT", f"/{bucket}?tagging"), ("PUT", f"/{bucket}/k?tagging"),
                             ("POST", f"/{bucket}?delete")]:
            status, _, text = _send(server, method, path, body)
            assert SECRET not in text
            assert status < 500, text
            if refused or path.endswith("delete"):  # a Tagging document is no Delete request
                assert status == 400 and _code(text) == "MalformedXML", (method, path, text)
    for method, path in [("GET", f"/{bucket}?tagging"), ("GET", f"/{bucket}/k?tagging"), ("GET", f"/{bucket}")]:
        assert SECRET not in _send(server, method, path)[2]


@pytest.mark.parametrize("method", ["DELETE", "PUT", "POST"])
def test_changing_the_service_root_is_method_not_allowed(server, method):
    status, headers, text = _send(server, method, "/")
    assert status == 405, text
    document = ET.fromstring(text)
    assert document.findtext("Code") == "MethodNotAllowed"
    assert (document.findtext("Method"), document.findtext("ResourceType")) == (method, "SERVICE")
    assert headers.get("allow") == "GET"


def test_listing_buckets_at_the_root_still_works(server, s3, bucket):
    status, _, text = _send(server, "GET", "/")
    assert status == 200 and bucket in text


def test_valid_xml_bodies_still_work(s3, bucket):
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "a", "Value": "b"}]
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]})
    assert [d["Key"] for d in deleted["Deleted"]] == ["k"]
