"""moto S3 models ⇄ plain records (JSON for keys and uploads, JSON + pickle for bucket settings).

Pinned to moto 5.2.x's attribute names. Objects are the bulk of the state and must restore even
after a moto upgrade renames some private attribute, so they are explicit JSON fields. A bucket's
many optional settings (policy, lifecycle rules, CORS, encryption, notification, ...) are moto
objects with no stable public serialisation; they are pickled as one blob, with the essentials
(creation date, versioning, tags) also in JSON, so an unreadable pickle costs settings, not data.
"""

from __future__ import annotations

import datetime
import logging
import pickle
from typing import Any

from moto.s3.models import (FakeAcl, FakeBucket, FakeDeleteMarker, FakeGrant, FakeGrantee,
                            FakeMultipart, S3Backend)
from moto.utilities.utils import LowercaseDict

log = logging.getLogger("smlocal.s3")

# FakeKey attributes that are plain JSON values, copied verbatim both ways.
KEY_FIELDS = (
    "_version_id", "_is_versioned", "_etag", "_storage_class", "website_redirect_location",
    "checksum_algorithm", "checksum_value", "checksum_type", "checksum_parts", "encryption",
    "kms_key_id", "bucket_key_enabled", "lock_mode", "lock_legal_status", "lock_until", "_status",
)
# FakeBucket attributes that identity or our own rows already carry, never taken from the pickle.
BUCKET_OWN = ("name", "account_id", "region_name", "partition", "keys", "multiparts")
UPLOAD_FIELDS = ("key_name", "storage", "tags", "sse_encryption", "kms_key_id")


# -- small converters ---------------------------------------------------------------------------

def _time(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def parse_time(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def acl_record(acl: FakeAcl | None) -> list | None:
    if acl is None:
        return None
    return [{"grantees": [[g.id, g.uri, g.display_name] for g in grant.grantees],
             "permissions": list(grant.permissions)} for grant in acl.grants]


def acl_from(record: list | None) -> FakeAcl | None:
    if record is None:
        return None
    return FakeAcl([FakeGrant([FakeGrantee(*g) for g in grant["grantees"]], grant["permissions"])
                    for grant in record])


def _metadata_record(metadata) -> dict:
    # set_metadata(replace=True) leaves a plain dict where moto normally keeps a LowercaseDict.
    return {"lower": isinstance(metadata, LowercaseDict), "items": [[k, v] for k, v in metadata.items()]}


def _metadata_from(record: dict):
    metadata = LowercaseDict() if record["lower"] else {}
    for k, v in record["items"]:
        metadata[k] = v
    return metadata


# -- objects (versions and delete markers) ---------------------------------------------------------

def key_record(key, backend: S3Backend) -> dict[str, Any]:
    """Everything GET/HEAD/List answer about one object version, except the body."""
    if isinstance(key, FakeDeleteMarker):
        marks = getattr(key.key, "version_id", None)
        return {"marker": True, "version_id": key.version_id, "marks": marks,
                "last_modified": _time(key.last_modified)}
    key.etag  # computes and caches _etag if moto has not yet
    record = {field: getattr(key, field, None) for field in KEY_FIELDS}
    record.update(
        size=key.contentsize, last_modified=_time(key.last_modified), expiry=_time(key._expiry),
        metadata=_metadata_record(key.metadata), acl=acl_record(key.acl),
        tags=backend.tagger.get_tag_dict_for_resource(key.arn),
    )
    return record


def apply_key_record(key, record: dict[str, Any], backend: S3Backend) -> None:
    for field in KEY_FIELDS:
        if field in record:
            setattr(key, field, record[field])
    key.last_modified = parse_time(record["last_modified"])
    key._expiry = parse_time(record.get("expiry"))
    key._metadata = _metadata_from(record["metadata"])
    key.acl = acl_from(record.get("acl"))
    _set_tags(backend, key.arn, record.get("tags") or {})


def delete_marker_from(record: dict[str, Any], name: str, versions: list) -> FakeDeleteMarker:
    """Rebuild a marker without its constructor (which would stamp a new id and time)."""
    marker = FakeDeleteMarker.__new__(FakeDeleteMarker)
    marker.name = name
    marker._version_id = record["version_id"]
    marker.last_modified = parse_time(record["last_modified"])
    marker.key = next((v for v in versions if v.version_id == record.get("marks")), None)
    return marker


# -- buckets ---------------------------------------------------------------------------------------

def bucket_record(bucket: FakeBucket, backend: S3Backend) -> tuple[dict[str, Any], bytes | None]:
    """(JSON essentials, pickled settings or None when something in them cannot be pickled)."""
    essentials = {
        "region": bucket.region_name, "namespace": getattr(bucket, "bucket_namespace", None),
        "created": _time(bucket.creation_date), "versioning": bucket.versioning_status,
        "tags": backend.tagger.get_tag_dict_for_resource(bucket.arn),
    }
    settings = {k: v for k, v in bucket.__dict__.items() if k not in BUCKET_OWN}
    try:
        return essentials, pickle.dumps(settings, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # a setting moto added that does not pickle: keep the essentials
        log.warning("bucket %s: settings not persisted (%s)", bucket.name, exc)
        return essentials, None


def bucket_from(name: str, account: str, essentials: dict, settings: bytes | None,
                backend: S3Backend) -> FakeBucket:
    bucket = FakeBucket(name=name, account_id=account, region_name=essentials["region"],
                        bucket_namespace=essentials.get("namespace"))
    if settings is not None:
        try:
            restored = pickle.loads(settings)
            bucket.__dict__.update({k: v for k, v in restored.items() if k not in BUCKET_OWN})
        except Exception as exc:
            log.warning("bucket %s: settings not restored (%s); objects are", name, exc)
    bucket.creation_date = parse_time(essentials["created"]) or bucket.creation_date
    bucket.versioning_status = essentials.get("versioning")
    _set_tags(backend, bucket.arn, essentials.get("tags") or {})
    return bucket


# -- multipart uploads in progress ---------------------------------------------------------------------

def upload_record(upload: FakeMultipart) -> dict[str, Any]:
    record = {field: getattr(upload, field, None) for field in UPLOAD_FIELDS}
    record.update(metadata=[[k, v] for k, v in upload.metadata.items()], acl=acl_record(upload.acl))
    return record


def upload_from(upload_id: str, record: dict[str, Any], backend: S3Backend) -> FakeMultipart:
    from moto.s3.utils import CaseInsensitiveDict

    upload = FakeMultipart(record["key_name"], CaseInsensitiveDict(record["metadata"]),
                           account_id=backend.account_id, region_name=backend.region_name,
                           storage=record.get("storage"), tags=record.get("tags"),
                           acl=acl_from(record.get("acl")), sse_encryption=record.get("sse_encryption"),
                           kms_key_id=record.get("kms_key_id"))
    upload.id = upload_id
    return upload


def part_record(part) -> dict[str, Any]:
    part.etag
    return {"etag": part._etag, "size": part.contentsize, "last_modified": _time(part.last_modified)}


def _set_tags(backend: S3Backend, arn: str, tags: dict[str, str]) -> None:
    backend.tagger.delete_all_tags_for_resource(arn)
    if tags:
        backend.tagger.tag_resource(arn, backend.tagger.convert_dict_to_tags_input(tags))
