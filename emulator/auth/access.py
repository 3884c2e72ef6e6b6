"""May this verified caller touch that resource? Cross-account access refused as AWS refuses it.

moto keeps each account's resources apart, but S3 bucket names are global and moto, by default,
serves any account's bucket to any caller (`MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS`), and its STS lets
anyone assume any role in any account. On AWS both need the other account's consent: a bucket
policy naming the caller, a role trust policy naming it. So:
* `may_access(principal, resource_arn, action)` is the decision: own account yes; another account
  only when the resource's policy (bucket policy, role trust policy) allows the caller and the
  action, and no statement of it denies them;
* `Authorizer.check(principal, request)` finds the resources a request names (S3 bucket, object
  and copy source; STS AssumeRole's role; SageMaker ARNs in a json call) and raises
  AuthError("denied") with AWS's wording when one is refused.
What is not modelled: identity policies inside one account (a verified caller may do anything
in its own account, as the root key or an administrator may) and policy conditions (an Allow
with a Condition is not counted; a Deny with one is).
"""

from __future__ import annotations

import fnmatch
import json
import re
from urllib.parse import parse_qsl, unquote

from emulator.auth.authenticator import Principal
from emulator.auth.errors import AuthError
from emulator.auth.request import HttpRequest, s3_bucket_and_key

_ACCOUNT_ARN = re.compile(r"^arn:aws[\w-]*:(\w[\w-]*):[\w-]*:(\d{12}):")
_OBJECT_ACTIONS = {"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject", "POST": "s3:PutObject",
                   "DELETE": "s3:DeleteObject"}
_BUCKET_ACTIONS = {"GET": "s3:ListBucket", "HEAD": "s3:ListBucket", "PUT": "s3:CreateBucket",
                   "DELETE": "s3:DeleteBucket", "POST": "s3:DeleteObject"}
_VERBS = {"GET": "Get", "HEAD": "Get", "PUT": "Put", "DELETE": "Delete", "POST": "Put"}
_SUBRESOURCES = ("acl", "policy", "tagging", "versioning", "lifecycle", "cors", "encryption", "website",
                 "notification", "replication", "logging", "ownershipControls", "publicAccessBlock")


def may_access(principal: Principal, resource_arn: str, action: str) -> bool:
    if principal.internal:
        return True
    owner = resource_owner(resource_arn)
    if owner is None or owner == principal.account:
        return True
    return policy_allows(resource_policy(resource_arn), principal, action, resource_arn)


def resource_owner(arn: str) -> str | None:
    """The account holding the resource; None when nothing says (an S3 bucket nobody created)."""
    if arn.startswith("arn:aws:s3:::"):
        from moto.s3.models import s3_backends

        bucket = arn[len("arn:aws:s3:::"):].partition("/")[0]
        return (s3_backends.bucket_accounts.get(bucket) or (None, None))[1]
    match = _ACCOUNT_ARN.match(arn)
    return match.group(2) if match else None


def resource_policy(arn: str) -> dict | None:
    """The resource-based policy that may grant another account: a bucket's policy, a role's trust."""
    owner = resource_owner(arn)
    if owner is None:
        return None
    if arn.startswith("arn:aws:s3:::"):
        from moto.s3.models import s3_backends

        bucket = s3_backends[owner]["aws"].buckets.get(arn[len("arn:aws:s3:::"):].partition("/")[0])
        return _json(bucket.policy) if bucket is not None else None
    if ":iam::" in arn and ":role/" in arn:
        role = _role(owner, arn)
        return _json(role.assume_role_policy_document) if role is not None else None
    return None


def _role(account: str, arn: str):
    """The role in moto's IAM, None when the account or the role was never made."""
    from moto.iam.models import iam_backends

    backend = dict.get(iam_backends.get(account) or {}, "aws")  # dict.get: never creates a backend
    return next((role for role in backend.get_roles() if role.arn == arn), None) if backend else None


def _json(document) -> dict | None:
    if not document:
        return None
    try:
        value = json.loads(document) if isinstance(document, (str, bytes)) else document
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def policy_allows(policy: dict | None, principal: Principal, action: str, resource: str) -> bool:
    """Some Allow statement names the caller, the action and the resource, and no Deny does."""
    statements = (policy or {}).get("Statement") or []
    allowed = False
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or not _names(statement, principal, action, resource):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or (statement.get("Effect") == "Allow" and "Condition" not in statement)
    return allowed


def _names(statement: dict, principal: Principal, action: str, resource: str) -> bool:
    return (_principal_matches(statement.get("Principal"), principal)
            and _any_match(statement.get("Action", "*"), action, ignore_case=True)
            and _any_match(statement.get("Resource", "*"), resource, ignore_case=False))


def _principal_matches(named, principal: Principal) -> bool:
    if named == "*":
        return True
    values = named.get("AWS", []) if isinstance(named, dict) else []
    identities = {"*", principal.account, f"arn:aws:iam::{principal.account}:root", principal.arn,
                  _role_of_session(principal.arn)}
    return any(value in identities for value in ([values] if isinstance(values, str) else values))


def _role_of_session(arn: str) -> str:
    """arn:aws:sts::A:assumed-role/R/session → arn:aws:iam::A:role/R (a trust or bucket policy names the role)."""
    match = re.match(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([^/]+)/", arn)
    return f"arn:{match.group(1)}:iam::{match.group(2)}:role/{match.group(3)}" if match else arn


def _any_match(patterns, value: str, ignore_case: bool) -> bool:
    patterns = [patterns] if isinstance(patterns, str) else patterns or []
    if ignore_case:
        return any(fnmatch.fnmatchcase(value.lower(), str(pattern).lower()) for pattern in patterns)
    return any(fnmatch.fnmatchcase(value, str(pattern)) for pattern in patterns)


def denial(principal: Principal, action: str, resource: str) -> AuthError:
    return AuthError("denied", f"User: {principal.arn} is not authorized to perform: {action} on resource: "
                               f"\"{resource}\" because no resource-based policy allows the {action} action")


class Authorizer:
    """Request-level checks, one per service that can name another account's resource."""

    def check(self, principal: Principal, method, raw_path, query_string, headers, body: bytes = b"") -> None:
        request = HttpRequest.of(method, raw_path, query_string, headers, body)
        for action, resource in self.resources(principal, request):
            if not may_access(principal, resource, action):
                raise denial(principal, action, resource)

    def resources(self, principal: Principal, request: HttpRequest) -> list[tuple[str, str]]:
        """(action, resource ARN) pairs the request touches that may belong to another account."""
        if principal.service == "s3":
            return s3_resources(request)
        if principal.service == "sts":
            return _assumed_roles(request)
        target = request.header("x-amz-target") or ""
        if principal.service == "sagemaker" and target.startswith("SageMaker."):
            return _sagemaker_arns(target.partition(".")[2], request.body or b"")
        return []


def s3_resources(request: HttpRequest) -> list[tuple[str, str]]:
    bucket, key = s3_bucket_and_key(request)
    if not bucket:
        return []  # ListBuckets: moto lists the caller's own account
    names = {name for name, _ in request.query()}
    touched = [(_s3_action(request.method, bool(key), names), f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else ""))]
    source = request.header("x-amz-copy-source")
    if source:
        source_bucket, _, source_key = unquote(source.partition("?")[0]).lstrip("/").partition("/")
        touched.append(("s3:GetObject", f"arn:aws:s3:::{source_bucket}/{source_key}"))
    return [(action, arn) for action, arn in touched if action != "s3:CreateBucket"]  # moto: BucketAlreadyExists


def _s3_action(method: str, on_object: bool, query_names: set[str]) -> str:
    subresource = next((name for name in _SUBRESOURCES if name in query_names), None)
    if subresource:
        noun = "Object" if on_object else "Bucket"
        return f"s3:{_VERBS.get(method, 'Get')}{noun}{subresource[0].upper()}{subresource[1:]}"
    return (_OBJECT_ACTIONS if on_object else _BUCKET_ACTIONS).get(method, "s3:GetObject")


def _assumed_roles(request: HttpRequest) -> list[tuple[str, str]]:
    params = dict(parse_qsl((request.body or b"").decode("utf-8", "replace"), keep_blank_values=True))
    params.update(request.query())
    if params.get("Action") in ("AssumeRole", "AssumeRoleWithWebIdentity") and params.get("RoleArn"):
        return [("sts:AssumeRole", params["RoleArn"])]
    return []


def _sagemaker_arns(operation: str, body: bytes) -> list[tuple[str, str]]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return []  # the protocol layer answers SerializationException
    values = document.values() if isinstance(document, dict) else []
    return [(f"sagemaker:{operation}", value) for value in values
            if isinstance(value, str) and _service_of(value) == "sagemaker"]


def _service_of(arn: str) -> str | None:
    match = _ACCOUNT_ARN.match(arn)
    return match.group(1) if match else None
