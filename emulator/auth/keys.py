"""The access keys smlocal accepts, and whose account each one is.

Three sources, looked up in this order on every request (no cache: a key deleted or deactivated
in IAM stops working at once):
* the root key pair of the configuration (`--auth-root-key`, or one generated into the data
  directory), acting as the root of one account;
* smlocal's internal key, made fresh for each server process, which its own clients (job and
  endpoint plumbing) sign with; only this key may name an account with `x-moto-account-id`;
* smlocal's IAM, i.e. moto's IAM backends: every account's users' active access keys, and the
  temporary keys STS AssumeRole issued (with their session token and expiry from moto's STS).
"""

from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT_KEY_FILE = "auth-root-key"
_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "/+"


@dataclass(frozen=True)
class KeyRecord:
    access_key: str
    secret: str
    account: str
    arn: str
    session_token: str | None = None
    expires_at: float | None = None  # epoch seconds; None: does not expire
    internal: bool = False


def default_account() -> str:
    from moto.core import DEFAULT_ACCOUNT_ID

    return os.environ.get("MOTO_ACCOUNT_ID") or DEFAULT_ACCOUNT_ID


def new_key_pair(prefix: str = "AKIA") -> tuple[str, str]:
    """A random access key id and secret in AWS's shapes (20 and 40 characters)."""
    key = prefix + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    return key, "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def parse_root_key(text: str) -> KeyRecord:
    """`AKID:SECRET` (or `AKID:SECRET:ACCOUNT`) as `--auth-root-key` takes it."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError("--auth-root-key takes ACCESS_KEY_ID:SECRET (or ACCESS_KEY_ID:SECRET:ACCOUNT_ID)")
    key, secret = parts[0], parts[1]
    account = parts[2] if len(parts) == 3 else default_account()
    if not (16 <= len(key) <= 128 and key.isalnum()):
        raise ValueError(f"--auth-root-key: the access key id must be 16 to 128 letters and digits, not {key!r}")
    if not (account.isdigit() and len(account) == 12):
        raise ValueError(f"--auth-root-key: the account id must be 12 digits, not {account!r}")
    return KeyRecord(key, secret, account, f"arn:aws:iam::{account}:root")


def stored_root_key(data_dir: Path) -> tuple[str, bool]:
    """`AKID:SECRET` kept in the data directory (mode 0600), made on first use; and whether it was
    made just now."""
    path = Path(data_dir) / ROOT_KEY_FILE
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key, secret = new_key_pair()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"{key}:{secret}\n")
    return f"{key}:{secret}", True


def internal_key() -> KeyRecord:
    key, secret = new_key_pair("AKIA")
    return KeyRecord(key, secret, default_account(), "arn:aws:iam::smlocal:internal", internal=True)


class KeyRing:
    """Finds the record of an access key id, or None when nobody issued it (or it is inactive)."""

    def __init__(self, root: KeyRecord | None = None, internal: KeyRecord | None = None, lookup=None):
        self.root = root
        self.internal = internal or internal_key()
        self._fixed = {record.access_key: record for record in (root, self.internal) if record}
        self._lookup = lookup or iam_lookup

    def find(self, access_key: str) -> KeyRecord | None:
        return self._fixed.get(access_key) or self._lookup(access_key)


def iam_lookup(access_key: str) -> KeyRecord | None:
    """The key in moto's IAM, in whichever account and partition holds it."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import PARTITION_NAMES

    for account_id, by_partition in list(iam_backends.items()):
        for partition in PARTITION_NAMES:
            backend = dict.get(by_partition, partition)  # never creates a backend, as [] would
            key = backend.access_keys.get(access_key) if backend is not None else None
            if key is not None and key.status == "Active":
                return _record(account_id, partition, backend, key)
    return None


def _record(account_id: str, partition: str, backend, key) -> KeyRecord:
    if key.role_arn is None:  # a user's long-term key
        user = backend.get_user_from_access_key_id(key.access_key_id)
        arn = user.arn if user else f"arn:{partition}:iam::{account_id}:user/{key.user_name}"
        return KeyRecord(key.access_key_id, key.secret_access_key, account_id, arn)
    role = _assumed_role(account_id, partition, key.access_key_id)
    if role is None:  # a temporary key whose session STS no longer knows: no token can match
        return KeyRecord(key.access_key_id, key.secret_access_key, account_id, key.role_arn, session_token="")
    return KeyRecord(key.access_key_id, key.secret_access_key, account_id, role.arn,
                     session_token=role.session_token, expires_at=_epoch(role.expiration))


def _assumed_role(account_id: str, partition: str, access_key: str):
    from moto.sts.models import sts_backends

    sessions = dict.get(sts_backends.get(account_id) or {}, partition)
    return sessions.get_assumed_role_from_access_key(access_key) if sessions is not None else None


def _epoch(moment: datetime) -> float:
    """moto keeps naive datetimes in UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
