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
import requests

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


def _xxe_bodies(secret_path: str, root: str, inner: str) -> list[bytes]:
    """A general entity, a parameter entity and an external DTD, each naming the secret file."""
    declarations = [f'<!DOCTYPE {root} [<!ENTITY e SYSTEM "file://{secret_path}">]>',
                    f'<!DOCTYPE {root} [<!ENTITY % p SYSTEM "file://{secret_path}"> %p;]>',
                    f'<!DOCTYPE {root} SYSTEM "file://{secret_path}">']
    return [f'<?xml version="1.0"?>{declaration}<{root}>{inner}</{root}>'.encode() for declaration in declarations]


TAGS = "<TagSet><Tag><Key>k</Key><Value>&e;</Value></Tag></TagSet>"


def test_xxe_never_reads_a_local_file(server, s3, bucket, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    upload = _upload(s3, bucket)
    etag = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload, PartNumber=1, Body=b"part")["ETag"]
    cases = [("PUT", f"/{bucket}?tagging", "Tagging", TAGS), ("PUT", f"/{bucket}/k?tagging", "Tagging", TAGS),
             ("POST", f"/{bucket}?delete", "Delete", "<Object><Key>&e;</Key></Object>"),
             ("POST", f"/{bucket}/mpu?uploadId={upload}", "CompleteMultipartUpload",
              f"<Part><ETag>{etag}</ETag><PartNumber>1</PartNumber></Part>")]
    for method, path, root, inner in cases:
        for body in _xxe_bodies(str(secret), root, inner):
            status, _, text = _send(server, method, path, body)
            assert SECRET not in text
            assert (status, _code(text)) == (400, "MalformedXML"), (method, path, text)
    for method, path in [("GET", f"/{bucket}?tagging"), ("GET", f"/{bucket}/k?tagging"), ("GET", f"/{bucket}"),
                         ("GET", f"/{bucket}/mpu?uploadId={upload}")]:
        assert SECRET not in _send(server, method, path)[2]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="mpu")


def test_xml_nested_too_deep_is_malformed_xml(server, s3, bucket):
    deep = b"<?xml version='1.0'?>" + b"<x>" * 5000 + b"</x>" * 5000
    for method, path in [("PUT", f"/{bucket}?tagging"), ("POST", f"/{bucket}?delete"),
                         ("POST", f"/{bucket}/mpu?uploadId={_upload(s3, bucket)}")]:
        status, _, text = _send(server, method, path, deep)
        assert (status, _code(text)) == (400, "MalformedXML"), (method, path, text)


@pytest.mark.parametrize("policy,message", [
    (b"garbage", "Policies must be valid JSON and the first byte must be '{'"),
    (b"[1, 2]", "Policies must be valid JSON and the first byte must be '{'"),
    (b"{}", "Missing required field Statement"),
])
def test_a_bucket_policy_that_is_no_policy_is_refused_and_the_bucket_still_works(server, s3, bucket, policy, message):
    status, _, text = _send(server, "PUT", f"/{bucket}?policy", policy)
    assert (status, _code(text), ET.fromstring(text).findtext("Message")) == (400, "MalformedPolicy", message)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    s3.create_multipart_upload(Bucket=bucket, Key="after-policy")


def test_an_object_that_looks_like_xml_is_still_an_object(s3, bucket):
    page = b'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY e "x">]><Tagging>&e;</Tagging>'
    s3.put_object(Bucket=bucket, Key="page.xml", Body=page)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts.xml")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="parts.xml", UploadId=upload, PartNumber=1, Body=page)
    assert s3.get_object(Bucket=bucket, Key="page.xml")["Body"].read() == page


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


@pytest.mark.parametrize("query", ["", "?policy", "?tagging"])
def test_a_bucket_post_that_is_no_form_upload_is_invalid_argument(server, bucket, query):
    status, _, text = _send(server, "POST", f"/{bucket}{query}", b"<Foo/>")
    assert (status, _code(text)) == (400, "InvalidArgument"), text


def test_a_browser_form_post_still_uploads(s3, bucket):
    form = s3.generate_presigned_post(Bucket=bucket, Key="from-form")
    answer = requests.post(form["url"], data=form["fields"], files={"file": ("f.txt", b"form body")}, timeout=30)
    assert answer.status_code in (200, 204), answer.text
    assert s3.get_object(Bucket=bucket, Key="from-form")["Body"].read() == b"form body"


BUCKET_SUBRESOURCES = ["tagging", "delete", "lifecycle", "cors", "versioning", "acl", "policy", "notification",
                       "encryption", "website", "logging", "replication", "ownershipControls", "publicAccessBlock",
                       "accelerate", "requestPayment", "object-lock", "intelligent-tiering&id=x", "inventory&id=x",
                       "metrics&id=x", "analytics&id=x"]
OBJECT_SUBRESOURCES = ["tagging", "acl", "retention", "legal-hold", "restore", "select&select-type=2"]
HOSTILE = [b"garbage", b"<Foo/>", b"<a><b><c/></b></a>", b"<x>" * 3000 + b"</x>" * 3000,
           b"<Tagging><TagSet/></Tagging>", b"<Delete><Object/></Delete>", b"{}"]


def test_no_hostile_body_on_any_sub_resource_is_a_5xx(server, s3):
    bucket = unique("hostile")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    targets = [f"/{bucket}?{sub}" for sub in BUCKET_SUBRESOURCES] + [f"/{bucket}/k?{sub}" for sub in OBJECT_SUBRESOURCES]
    failures = [(method, target, body[:12], status) for target in targets for method in ("PUT", "POST")
                for body in HOSTILE for status in [_send(server, method, target, body)[0]] if status >= 500]
    assert not failures
    assert s3.get_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPStatusCode"] == 200  # still serves
