"""Who is calling and where: region from the SigV4 credential scope, account as moto derives it.

Using moto's own derivation keeps ARNs consistent across services: STS GetCallerIdentity, S3 and
SageMaker all name the same account for the same access key (default 123456789012).
"""

from __future__ import annotations

import functools
import os
import re

DEFAULT_REGION = "us-east-1"
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def credential_scope(authorization: str) -> tuple[str | None, str | None, str | None]:
    """(access key, region, signing service) from a SigV4 Authorization header."""
    match = _SCOPE.search(authorization or "")
    if not match:
        return None, None, None
    return match.group(1), match.group(2), match.group(3)


def account_for(access_key: str | None, headers: dict[str, str]) -> str:
    fixed = _environment()[0]
    if fixed:
        return fixed
    if headers.get("x-moto-account-id"):
        return headers["x-moto-account-id"]
    key = access_key or "AKIAEXAMPLE"
    account = _accounts.get(key)
    if account is None:  # remembered until IAM or STS is called again (which may issue keys)
        account = _accounts[key] = _moto_lookup(key)
    return account


def _moto_lookup(key: str) -> str:
    from moto.iam.models import get_account_id_from  # the same rule moto applies to its services

    return get_account_id_from(key)  # searches every account's IAM keys in every partition


def forget_accounts() -> None:
    """IAM or STS may have issued or deleted access keys: look accounts up afresh (and read the
    environment's MOTO_ACCOUNT_ID and default region again)."""
    _accounts.clear()
    _environment.cache_clear()


_accounts: dict[str, str] = {}


def region_for(region: str | None) -> str:
    return region or _environment()[1]


@functools.lru_cache(maxsize=1)
def _environment() -> tuple[str | None, str]:
    """(MOTO_ACCOUNT_ID, default region) as the server's environment sets them: read once, not on
    every request (os.environ encodes each key it is asked for)."""
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or DEFAULT_REGION
    return os.environ.get("MOTO_ACCOUNT_ID") or None, region
