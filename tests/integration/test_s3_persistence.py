"""S3 state on disk, in-process: what a restart restores, what the data directory holds, damage.

moto's backends are process-global, so a "crash" here is: stop the server, then drop this test's
account from moto's memory (without moto's reset(), which would close every key of every account,
the session server's included) and start a new server on the same data directory. Each test uses
its own account (moto takes it from the x-moto-account-id header), so tests cannot see each other.
"""

from __future__ import annotations

import hashlib
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from moto.core.base_backend import BaseBackend
from moto.s3.models import s3_backends
from moto.s3.utils import compute_checksum

from emulator.aws import s3_hooks
from emulator.aws.s3_assemble import Running
from emulator.aws.s3_blobs import BlobBody, BlobBuffer
from emulator.testing import LocalServer
from tests.integration.helpers import error_of, unique

MiB = 1024 * 1024
CLIENT_CONFIG = BotoConfig(retries={"max_attempts": 1}, max_pool_connections=32)


class Box:
    """One test's account, data directory and running server, restartable."""

    def __init__(self, data_dir: Path):
        self.account = str(random.randrange(10**11, 10**12))
        self.data_dir = data_dir
        self.server = LocalServer(data_dir=data_dir, runtime="fake").start()

    def client(self):
        client = boto3.client("s3", endpoint_url=self.server.url, region_name="us-east-1", config=CLIENT_CONFIG)
        client.meta.events.register("before-sign.s3.*", self._tag_account)
        return client

    def _tag_account(self, request, **_):
        request.headers["x-moto-account-id"] = self.account

    def backend(self):
        return s3_backends[self.account]["aws"]

    def crash_and_restart(self, *other_accounts: str):
        self.stop()
        for account in (self.account, *other_accounts):
            _forget(account)
        self.server = LocalServer(data_dir=self.data_dir, runtime="fake").start()
        return self.client()

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server.app.s3.close()
            self.server = None


def _forget(account: str) -> None:
    """Drop an account's S3 state from moto's memory, as a new process would not know it."""
    backend = s3_backends[account]["aws"]
    for name in list(backend.buckets):
        s3_backends.bucket_accounts.pop(name, None)
    BaseBackend.reset(backend)  # the base reset: S3Backend.reset() disposes every account's keys


@pytest.fixture()
def box(tmp_path):
    b = Box(tmp_path / "data")
    yield b
    b.stop()


def _snapshot(s3, bucket):
    """What a client can observe about every object of a bucket."""
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    state = {}
    for item in listed:
        head = s3.head_object(Bucket=bucket, Key=item["Key"])
        state[item["Key"]] = {
            "list": (item["ETag"], item["Size"], item["LastModified"]),
            "head": (head["ETag"], head["ContentLength"], head["ContentType"], head["Metadata"],
                     head["LastModified"]),
            "body": s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read(),
            "tags": s3.get_object_tagging(Bucket=bucket, Key=item["Key"])["TagSet"],
        }
    return state


def _multipart_etag(payload: bytes, part_size: int) -> str:
    parts = [payload[i:i + part_size] for i in range(0, len(payload), part_size)]
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


def _blob_count(box) -> int:
    root = box.data_dir / "s3" / "blobs"
    return sum(1 for sub in root.iterdir() if sub.name != "tmp" for _ in sub.iterdir())


POLICY = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",'
          ' "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*"}]}')


def _bucket_settings(s3, bucket):
    return {
        "created": [b["CreationDate"] for b in s3.list_buckets()["Buckets"] if b["Name"] == bucket],
        "cors": s3.get_bucket_cors(Bucket=bucket)["CORSRules"],
        "policy": s3.get_bucket_policy(Bucket=bucket)["Policy"],
        "acl": s3.get_object_acl(Bucket=bucket, Key="batch/b")["Grants"],
    }


def test_objects_metadata_tags_copies_and_deletes_survive_a_restart(box):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["https://example.com"]}]})
    s3.put_bucket_policy(Bucket=bucket, Policy=POLICY % bucket)
    s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1,2\n3,4\n", ContentType="text/csv",
                  Metadata={"origin": "unit-test"})
    s3.put_object(Bucket=bucket, Key="data/overwritten", Body=b"first")
    s3.put_object(Bucket=bucket, Key="data/overwritten", Body=b"second, longer")
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="gone")
    for name in ("batch/a", "batch/b", "batch/c"):
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "batch/a"}, {"Key": "batch/c"}]})
    s3.put_object_tagging(Bucket=bucket, Key="data/train.csv",
                          Tagging={"TagSet": [{"Key": "split", "Value": "train"}]})
    s3.copy_object(Bucket=bucket, Key="copies/train.csv", CopySource={"Bucket": bucket, "Key": "data/train.csv"})
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")  # boto3 sends `Expect: 100-continue` with it
    s3.put_object_acl(Bucket=bucket, Key="batch/b", ACL="public-read")
    before = _snapshot(s3, bucket)
    assert set(before) == {"data/train.csv", "data/overwritten", "batch/b", "copies/train.csv", "empty"}
    settings = _bucket_settings(s3, bucket)

    s3 = box.crash_and_restart()
    assert _snapshot(s3, bucket) == before
    assert _bucket_settings(s3, bucket) == settings
    assert len(settings["acl"]) == 2  # the owner and AllUsers READ
    content_type, metadata = before["data/train.csv"]["head"][2:4]
    assert (content_type, {k.lower(): v for k, v in metadata.items()}) == ("text/csv", {"origin": "unit-test"})
    assert before["copies/train.csv"]["tags"] == [{"Key": "split", "Value": "train"}]
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "ml"}]
    assert error_of(s3.head_object, Bucket=bucket, Key="gone").response["Error"]["Code"] == "404"


def test_changes_after_a_restore_are_persisted_too(box):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v1")
    s3 = box.crash_and_restart()
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2")
    s3.put_object(Bucket=bucket, Key="new", Body=b"n")
    s3 = box.crash_and_restart()
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v2"
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"n"
    assert _blob_count(box) == 2  # v1's body was collected


def test_multipart_upload_survives_a_restart_with_its_etag(box, tmp_path):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)
    payload = random.randbytes(30 * MiB + 123)
    source = tmp_path / "model.tar.gz"
    source.write_bytes(payload)
    s3.upload_file(str(source), bucket, "model/model.tar.gz", ExtraArgs={"ContentType": "application/x-tar"},
                   Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                                         max_concurrency=7))  # parts answered while others are flushed
    head = s3.head_object(Bucket=bucket, Key="model/model.tar.gz")
    assert head["ETag"] == f'"{_multipart_etag(payload, 5 * MiB)}"'

    s3 = box.crash_and_restart()
    again = s3.head_object(Bucket=bucket, Key="model/model.tar.gz")
    assert (again["ETag"], again["ContentLength"], again["ContentType"], again["LastModified"]) == \
        (head["ETag"], len(payload), "application/x-tar", head["LastModified"])
    assert s3.get_object(Bucket=bucket, Key="model/model.tar.gz")["Body"].read() == payload
    ranged = s3.get_object(Bucket=bucket, Key="model/model.tar.gz", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")
    assert ranged["ContentRange"] == f"bytes {5 * MiB - 10}-{5 * MiB + 9}/{len(payload)}"
    assert ranged["Body"].read() == payload[5 * MiB - 10:5 * MiB + 10]
    assert _blob_count(box) == 1  # the parts were collected once the upload completed


def test_an_upload_in_progress_can_be_finished_after_a_restart(box):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)
    parts = [random.randbytes(5 * MiB), random.randbytes(5 * MiB), b"tail"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big", Metadata={"stage": "raw"})["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=n, Body=parts[n - 1])["ETag"]
             for n in (1, 2)]

    s3 = box.crash_and_restart()
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    listed = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(1, etags[0], 5 * MiB), (2, etags[1], 5 * MiB)]
    etags.append(s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=3, Body=parts[2])["ETag"])
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})
    assert done["ETag"].endswith('-3"')

    s3 = box.crash_and_restart()
    got = s3.get_object(Bucket=bucket, Key="big")
    assert (got["ETag"], got["Body"].read()) == (done["ETag"], b"".join(parts))
    assert got["Metadata"] == {"stage": "raw"}  # user metadata keeps S3's lower-case names
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_an_aborted_upload_stays_aborted(box):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=b"part")
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload)
    s3 = box.crash_and_restart()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert _blob_count(box) == 0


def test_versions_and_delete_markers_survive_a_restart(box):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    s3.delete_object(Bucket=bucket, Key="k")

    def versions(client):
        listed = client.list_object_versions(Bucket=bucket)
        return ([(v["VersionId"], v["ETag"], v["IsLatest"]) for v in listed["Versions"]],
                [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]])

    before = versions(s3)
    s3 = box.crash_and_restart()
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert versions(s3) == before
    oldest = next(vid for vid, etag, _ in before[0] if etag == f'"{hashlib.md5(b"one").hexdigest()}"')
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=oldest)["Body"].read() == b"one"


def test_a_deleted_bucket_stays_deleted_and_its_bodies_go(box):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    kept = unique("bucket")
    s3.create_bucket(Bucket=kept)
    s3 = box.crash_and_restart()
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [kept]
    assert _blob_count(box) == 0


def test_every_account_is_persisted(box):
    s3, mine = box.client(), unique("bucket")
    s3.create_bucket(Bucket=mine)
    other = Box.__new__(Box)
    other.account, other.server = str(int(box.account) + 1), box.server
    theirs = unique("bucket")
    other.client().create_bucket(Bucket=theirs)
    other.client().put_object(Bucket=theirs, Key="k", Body=b"theirs")
    box.crash_and_restart(other.account)
    other.server = box.server
    assert [b["Name"] for b in box.client().list_buckets()["Buckets"]] == [mine]
    assert [b["Name"] for b in other.client().list_buckets()["Buckets"]] == [theirs]
    assert other.client().get_object(Bucket=theirs, Key="k")["Body"].read() == b"theirs"


def test_concurrent_writes_leave_a_consistent_store(box):
    s3, buckets = box.client(), [unique("bucket"), unique("bucket")]
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)

    def write(i):
        bucket = buckets[i % 2]
        s3.put_object(Bucket=bucket, Key=f"own/{i}", Body=f"own {i}".encode())
        s3.put_object(Bucket=bucket, Key="shared", Body=f"shared {i}".encode())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(200)))
    before = {b: _snapshot(s3, b) for b in buckets}
    assert all(len(state) == 101 for state in before.values())
    s3 = box.crash_and_restart()
    assert {b: _snapshot(s3, b) for b in buckets} == before
    assert _blob_count(box) == 202


def test_get_streams_the_body_from_its_file(box):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)
    payload = random.randbytes(6 * MiB)
    s3.put_object(Bucket=bucket, Key="k", Body=payload)
    key = box.backend().buckets[bucket].keys["k"]
    assert isinstance(key._value_buffer, BlobBuffer)  # moto's in-memory buffer was released
    with s3_hooks.streaming():
        body = key.value
    assert isinstance(body, BlobBody) and len(body) == len(payload) and len(body[10:20]) == 10
    body.close()
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == payload
    assert s3.get_object(Bucket=bucket, Key="k", Range="bytes=-5")["Body"].read() == payload[-5:]
    assert s3.get_object(Bucket=bucket, Key="k", Range="bytes=100-")["Body"].read() == payload[100:]
    assert s3.get_object(Bucket=bucket, Key="k", Range="bytes=7-9")["ContentRange"] == f"bytes 7-9/{len(payload)}"
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]  # moto deep-copies every key for this
    assert [v["Size"] for v in versions] == [len(payload)]


def test_orphan_and_damaged_files_do_not_break_a_restore(box):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)
    for name in ("good", "truncated", "missing"):
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode() * 100)
    blobs = {name: Path(box.backend().buckets[bucket].keys[name].blob_path) for name in ("good", "truncated", "missing")}
    box.stop()
    blobs["truncated"].write_bytes(b"cut")
    blobs["missing"].unlink()
    root = box.data_dir / "s3" / "blobs"
    orphan = root / "ab" / ("ab" + "0" * 30)
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"left by a crash between the body and its row")
    (root / "tmp" / "half-written.tmp").write_bytes(b"left by a crash mid-write")

    s3 = box.crash_and_restart()
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == b"good" * 100
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["good"]
    assert not orphan.exists() and not (root / "tmp" / "half-written.tmp").exists()
    assert _blob_count(box) == 1
    s3.put_object(Bucket=bucket, Key="truncated", Body=b"rewritten")
    s3 = box.crash_and_restart()
    assert s3.get_object(Bucket=bucket, Key="truncated")["Body"].read() == b"rewritten"


def test_an_unwritable_data_directory_fails_the_request_not_silently(box, monkeypatch):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)

    def disk_full(source):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(box.server.app.s3.blobs, "write", disk_full)
    err = error_of(s3.put_object, Bucket=bucket, Key="k", Body=b"v")
    assert err.response["Error"]["Code"] == "InternalError"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_ephemeral_mode_writes_nothing(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with LocalServer(data_dir=data_dir, ephemeral=True, runtime="fake") as server:
        s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", config=CLIENT_CONFIG)
        bucket = unique("bucket")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="k", Body=b"in memory only")
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"in memory only"
        key = s3_backends["123456789012"]["aws"].buckets[bucket].keys["k"]
        assert not isinstance(key, s3_hooks.PersistedKey)
        s3.delete_object(Bucket=bucket, Key="k")
        s3.delete_bucket(Bucket=bucket)
    assert list(data_dir.iterdir()) == []


def test_writes_from_several_threads_to_one_key_end_with_one_body(box):
    s3, bucket = box.client(), unique("bucket")
    s3.create_bucket(Bucket=bucket)
    barrier = threading.Barrier(8)

    def write(i):
        barrier.wait()
        s3.put_object(Bucket=bucket, Key="k", Body=bytes([i]) * 1000)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    last = s3.get_object(Bucket=bucket, Key="k")["Body"].read()
    s3 = box.crash_and_restart()
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == last
    assert _blob_count(box) == 1


# -- CompleteMultipartUpload streams from the part files; the answers must stay moto's ----------

def _complete(s3, bucket, parts, checksum, listed=None):
    """Upload `parts` and complete; what a client can observe about the result (or the error)."""
    s3.create_bucket(Bucket=bucket)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="obj", **checksum)["UploadId"]
    algorithm = {"ChecksumAlgorithm": checksum["ChecksumAlgorithm"]} if checksum else {}
    etags = [s3.upload_part(Bucket=bucket, Key="obj", UploadId=upload, PartNumber=n, Body=body, **algorithm)["ETag"]
             for n, body in enumerate(parts, 1)]
    listed = listed or [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]
    try:
        done = s3.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=upload,
                                            MultipartUpload={"Parts": listed})
    except s3.exceptions.ClientError as err:
        return err.response["Error"]["Code"]
    head = s3.head_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    sums = {k: v for k, v in head.items() if k.startswith("Checksum")}
    body = s3.get_object(Bucket=bucket, Key="obj")["Body"].read()
    return done["ETag"], head["ETag"], head["ContentLength"], sums, hashlib.md5(body).hexdigest()


@pytest.mark.parametrize("checksum", [{}, {"ChecksumAlgorithm": "SHA256"}, {"ChecksumAlgorithm": "CRC32"},
                                      {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}],
                         ids=["default", "sha256", "crc32-composite", "crc32-full-object"])
def test_a_completed_upload_is_what_moto_alone_answers(box, checksum):
    parts = [random.randbytes(5 * MiB), random.randbytes(5 * MiB + 7), b"tail"]
    with LocalServer(ephemeral=True, runtime="fake") as plain:  # moto's own, in-memory complete()
        s3 = boto3.client("s3", endpoint_url=plain.url, region_name="us-east-1", config=CLIENT_CONFIG)
        expected = _complete(s3, unique("bucket"), parts, checksum)
    got = _complete(box.client(), unique("bucket"), parts, checksum)
    assert got == expected
    assert got[0].endswith('-3"') and got[2] == sum(map(len, parts))


def test_a_bad_completion_fails_as_in_moto(box):
    small = [b"small first part", random.randbytes(5 * MiB)]
    with LocalServer(ephemeral=True, runtime="fake") as plain:
        s3 = boto3.client("s3", endpoint_url=plain.url, region_name="us-east-1", config=CLIENT_CONFIG)
        expected = [_complete(s3, unique("bucket"), small, {}),
                    _complete(s3, unique("bucket"), small, {}, listed=[{"PartNumber": 1, "ETag": '"0" '}])]
    s3 = box.client()
    got = [_complete(s3, unique("bucket"), small, {}),
           _complete(s3, unique("bucket"), small, {}, listed=[{"PartNumber": 1, "ETag": '"0" '}])]
    assert got == expected == ["EntityTooSmall", "InvalidPart"]


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_running_checksums_match_moto(algorithm):
    data = random.randbytes(3 * MiB + 11)
    running = Running(algorithm)
    for start in range(0, len(data), 1000003):
        running.update(data[start:start + 1000003])
    assert running.digest() == compute_checksum(data, algorithm, encode_base64=False)
