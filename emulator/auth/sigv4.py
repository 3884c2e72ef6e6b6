"""SigV4 verification by recomputing the signature with botocore's own signer.

A request is verified the way it was signed: botocore's `SigV4Auth` (or `S3SigV4Auth`, or the
query-string signers for presigned URLs) builds the canonical request, the string to sign and the
HMAC chain from the very bytes on the wire, limited to the headers the caller says it signed.
Nothing here re-implements the canonical form; what is ours is reading the Authorization header or
the X-Amz-* query parameters (the body's own check is emulator/auth/payload.py).
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime, timezone
from dataclasses import dataclass, replace
from urllib.parse import quote, unquote

from botocore.auth import (
    SIGV4_TIMESTAMP, S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth,
)
from botocore.credentials import Credentials

from emulator.auth.errors import AuthError
from emulator.auth.payload import PayloadCheck, payload_check
from emulator.auth.request import HttpRequest
from emulator.auth.sigv2 import is_presigned_v2

ALGORITHM = "AWS4-HMAC-SHA256"
_TIMESTAMP = re.compile(r"[0-9]{8}T[0-9]{6}Z")


@dataclass(frozen=True)
class Signature:
    """What the caller claims: its key, the scope it signed for, the headers it signed."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    token: str | None
    presigned: bool = False
    expires: int | None = None  # seconds after `timestamp`; a version 2 URL: the epoch second it expires
    version: int = 4


def read_signature(request: HttpRequest) -> Signature | None:
    """The request's SigV4 claim, None when it carries none (an anonymous request)."""
    if request.header("authorization"):
        return _from_header(request)
    params = dict(request.query())
    if "X-Amz-Signature" in params or "X-Amz-Credential" in params:
        return _from_query(params)
    if is_presigned_v2(params):
        return _from_v2_query(params, request.header("x-amz-security-token") or params.get("x-amz-security-token"))
    return None


def _from_v2_query(params: dict[str, str], token: str | None) -> Signature:
    expires = params.get("Expires", "")
    if not expires.isdigit():
        raise AuthError("query-malformed", "Expires must be a number of seconds since the epoch")
    return Signature(params["AWSAccessKeyId"], "", "", "s3", (), params["Signature"], "", token,
                     presigned=True, expires=int(expires), version=2)


def _from_header(request: HttpRequest) -> Signature:
    value = request.header("authorization").strip()
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise AuthError("unsupported", "The authorization mechanism you have provided is not supported. "
                                       f"Please use {ALGORITHM}.")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        raise AuthError("malformed", f"Authorization header requires '{missing[0]}' parameter. "
                                     f"Authorization={value[:200]}")
    timestamp = request.header("x-amz-date") or _from_http_date(request.header("date"))
    if not timestamp:
        raise AuthError("malformed", "Authorization header requires existence of either a 'X-Amz-Date' "
                                     "or a 'Date' header.")
    return _claim(fields["Credential"], fields["SignedHeaders"], fields["Signature"], timestamp,
                  request.header("x-amz-security-token"))


def _from_query(params: dict[str, str]) -> Signature:
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise AuthError("query-malformed", f"X-Amz-Algorithm only supports \"{ALGORITHM}\"")
    for name in ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders"):
        if not params.get(name):
            raise AuthError("query-malformed", "Query-string authentication version 4 requires the "
                                               "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                                               "X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
    expires = params.get("X-Amz-Expires", "")
    if not expires.isdigit():
        raise AuthError("query-malformed", "X-Amz-Expires should be a number")
    if int(expires) > 604800:
        raise AuthError("query-malformed", "X-Amz-Expires must be less than a week (in seconds) that is 604800")
    claim = _claim(params["X-Amz-Credential"], params["X-Amz-SignedHeaders"], params["X-Amz-Signature"],
                   params["X-Amz-Date"], params.get("X-Amz-Security-Token"))
    return replace(claim, presigned=True, expires=int(expires))


def _claim(credential: str, signed: str, signature: str, timestamp: str, token: str | None) -> Signature:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise AuthError("malformed", "Error parsing the X-Amz-Credential parameter; the Credential is "
                                     "mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    if not _is_timestamp(timestamp):
        raise AuthError("malformed", f"X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", "
                                     f"not {timestamp[:40]!r}")
    key, date, region, service, _ = parts
    if "host" not in signed.lower().split(";"):
        raise AuthError("malformed", "The host header must be signed (SignedHeaders lacks 'host').")
    return Signature(key, date, region, service, tuple(signed.lower().split(";")), signature.strip(),
                     timestamp, token)


def _is_timestamp(text: str) -> bool:
    return parse_timestamp(text) is not None


def parse_timestamp(text: str) -> datetime | None:
    """A SigV4 timestamp (20130524T000000Z) as an aware UTC datetime; None if it is not one.
    By hand: strptime costs more than the whole HMAC chain."""
    if len(text) != 16 or not _TIMESTAMP.fullmatch(text):
        return None
    try:
        return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]),
                        int(text[13:15]), tzinfo=timezone.utc)
    except ValueError:  # 20241399T999999Z has the shape and is no time
        return None


def _from_http_date(value: str | None) -> str | None:
    if not value:
        return None
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).strftime(SIGV4_TIMESTAMP)
    except (TypeError, ValueError):
        return None


class _SignedHeadersOnly:
    """A signer that canonicalizes exactly the headers the caller listed, with their values as
    received (botocore's own choice would add every header a proxy or client library set later)."""

    def __init__(self, secret: str, claim: Signature, received: HttpRequest):
        super().__init__(Credentials(claim.access_key, secret, claim.token), claim.service, claim.region)
        self._signed = set(claim.signed_headers)
        self._received = received

    def headers_to_sign(self, request):
        return _Headers((name, value) for name, value in self._received.headers if name in self._signed)


class _Headers:
    """What botocore's canonicalization reads of HTTPHeaders (names, `get_all`, case-insensitive
    lookup), without the email.message machinery behind it, which cost more than the HMACs."""

    def __init__(self, pairs):
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name.lower(), []).append(value)

    def __iter__(self):
        return iter(self._values)

    def __contains__(self, name) -> bool:
        return name.lower() in self._values

    def __getitem__(self, name) -> str:
        return self._values[name.lower()][0]

    def get(self, name, default=None):
        values = self._values.get(name.lower())
        return values[0] if values else default

    def get_all(self, name) -> list[str]:
        return self._values.get(name.lower(), [])


class _Wire:
    """What botocore's signers read of an AWSRequest, for the request as received."""

    def __init__(self, method: str, url: str, headers: _Headers, body: bytes, timestamp: str):
        self.method, self.url, self.headers, self.body = method, url, headers, body
        self.params: dict = {}
        self.context = {"timestamp": timestamp}


class _Signer(_SignedHeadersOnly, SigV4Auth):
    pass


class _S3Signer(_SignedHeadersOnly, S3SigV4Auth):
    pass


class _QuerySigner(_SignedHeadersOnly, SigV4QueryAuth):
    pass


class _S3QuerySigner(_SignedHeadersOnly, S3SigV4QueryAuth):
    pass


_SIGNERS = {(False, False): _Signer, (False, True): _S3Signer, (True, False): _QuerySigner,
            (True, True): _S3QuerySigner}


@dataclass
class Recomputed:
    signature: str
    canonical_request: str
    string_to_sign: str
    signer: SigV4Auth
    request: _Wire

    def payload_check(self, claim: Signature, declared: str | None) -> PayloadCheck:
        """What the body must satisfy, its chunk signatures chained from this signature's key."""
        return payload_check(declared, claim.presigned, claim.signature, claim.timestamp,
                             self.signer.credential_scope(self.request),
                             lambda string_to_sign: self.signer.signature(string_to_sign, self.request))


def recompute(secret: str, claim: Signature, received: HttpRequest, query: str) -> Recomputed:
    """The signature `secret` gives this request, with `query` as the canonical query string source."""
    signer = _SIGNERS[(claim.presigned, claim.service == "s3")](secret, claim, received)
    url = f"http://{received.header('host') or 'localhost'}{received.raw_path}" + (f"?{query}" if query else "")
    request = _Wire(received.method, url, _Headers(received.headers), received.body, claim.timestamp)
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    return Recomputed(signer.signature(string_to_sign, request), canonical, string_to_sign, signer, request)


def verify(secret: str, claim: Signature, received: HttpRequest) -> Recomputed:
    """The recomputation that matches the caller's signature, or AuthError("bad-signature").

    The query string is tried as sent (what botocore signs: its own encoding, in its order) and
    then in SigV4's canonical encoding (what other signers send)."""
    attempts = []
    for query in _query_forms(received.query_string, claim.presigned):
        try:
            result = recompute(secret, claim, received, query)
        except (ValueError, UnicodeError) as error:  # a Host urlsplit refuses, text that cannot be encoded
            raise AuthError("bad-signature", extra={"AWSAccessKeyId": claim.access_key,
                                                    "SignatureProvided": claim.signature}) from error
        if hmac.compare_digest(result.signature, claim.signature):
            return result
        attempts.append(result)
    first = attempts[0]
    raise AuthError("bad-signature", extra={"AWSAccessKeyId": claim.access_key, "StringToSign": first.string_to_sign,
                                            "SignatureProvided": claim.signature,
                                            "CanonicalRequest": first.canonical_request})


def _query_forms(raw: str, presigned: bool) -> list[str]:
    pairs = [pair for pair in raw.split("&") if pair]
    if presigned:
        pairs = [pair for pair in pairs if pair.partition("=")[0] != "X-Amz-Signature"]
    as_sent = "&".join(pairs)
    decoded = [tuple(unquote(part.replace("+", " ")) for part in pair.partition("=")[::2]) for pair in pairs]
    canonical = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in decoded)
    return [as_sent] if canonical == as_sent else [as_sent, canonical]
