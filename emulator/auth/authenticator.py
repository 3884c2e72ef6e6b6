"""Who is calling, proved: the one entry point a request pipeline calls when `--auth` is on.

`Authenticator.authenticate(...)` takes the request as it arrived and answers the verified
`Principal` (account, key, region, signing service) or raises `AuthError`, in the order AWS checks:
a signature at all, a well-formed one, a key someone issued, a clock within 15 minutes (or a
presigned URL not yet expired), the session token of a temporary key, the signature itself, then
the body it covers. The account is the key's; a caller's `x-moto-account-id` header naming another account is refused (only
smlocal's internal key may name the account it acts for), because ignoring it would still let moto
read it further down, and a client that sends it expects that account's data.
"""

from __future__ import annotations

import datetime
import hmac
import time
from dataclasses import dataclass

from emulator.auth.errors import AuthError
from emulator.auth.keys import KeyRecord, KeyRing
from emulator.auth.sigv2 import verify_presigned_v2
from emulator.auth.payload import PayloadCheck
from emulator.auth.request import HttpRequest
from emulator.auth.sigv4 import SIGV4_TIMESTAMP, Signature, parse_timestamp, read_signature, verify

MAX_SKEW_SECONDS = 15 * 60
DEFAULT_REGION = "us-east-1"  # a version 2 presigned URL names no region
ACCOUNT_HEADER = "x-moto-account-id"


@dataclass(frozen=True)
class Principal:
    account: str
    access_key: str
    region: str
    service: str
    arn: str
    internal: bool = False  # smlocal's own clients, acting for the account they name


class Authenticator:
    def __init__(self, keys: KeyRing, clock=time.time, max_skew: float = MAX_SKEW_SECONDS):
        self.keys = keys
        self._clock = clock
        self._max_skew = max_skew

    @property
    def internal_credentials(self) -> tuple[str, str]:
        """(access key, secret) for smlocal's own clients; they name the account with x-moto-account-id."""
        return self.keys.internal.access_key, self.keys.internal.secret

    def authenticate(self, method, raw_path, query_string, headers, body: bytes = b"") -> Principal:
        """The verified caller of this request, or AuthError. `headers`: ASGI's list of (bytes,
        bytes) pairs or a dict; `raw_path` and `query_string` exactly as on the wire."""
        principal, payload = self._verify(HttpRequest.of(method, raw_path, query_string, headers, body or b""))
        payload.feed(body or b"")
        payload.finish()
        return principal

    def authenticate_streaming(self, method, raw_path, query_string, headers) -> tuple[Principal, PayloadCheck]:
        """`authenticate` before the body is read, for a pipeline that streams a large upload: the
        signature is checked now against the payload hash the request declares (x-amz-content-sha256,
        which S3 requires); feed the body to the PayloadCheck as it arrives and call its finish()
        before acknowledging the write. A request whose signature covers an undeclared body is refused."""
        return self._verify(HttpRequest.of(method, raw_path, query_string, headers, None))

    def _verify(self, request: HttpRequest) -> tuple[Principal, PayloadCheck]:
        claim = read_signature(request)
        if claim is None:
            raise AuthError("missing")
        record = self.keys.find(claim.access_key)
        if record is None:
            raise AuthError("unknown-key", extra={"AWSAccessKeyId": claim.access_key})
        self._check_time(claim)
        self._check_token(claim, record)
        declared = request.header("x-amz-content-sha256")
        if claim.version == 2:
            verify_presigned_v2(record.secret, claim.token, request)
            payload = PayloadCheck()
        elif request.body is None and declared is None and not claim.presigned:
            raise AuthError("unsupported", "Missing required header for this request: x-amz-content-sha256")
        else:
            payload = verify(record.secret, claim, request).payload_check(claim, declared)
        principal = Principal(self._account(record, request), claim.access_key, claim.region or DEFAULT_REGION,
                              claim.service, record.arn, record.internal)
        return principal, payload

    def _check_time(self, claim: Signature) -> None:
        if claim.version == 2:
            if self._clock() > claim.expires:
                raise AuthError("presign-expired", "Request has expired",
                                extra={"Expires": _iso(_utc(claim.expires)), "ServerTime": _iso(_utc(self._clock()))})
            return
        signed_at = parse_timestamp(claim.timestamp)
        now = datetime.datetime.fromtimestamp(self._clock(), datetime.timezone.utc)
        skew = datetime.timedelta(seconds=self._max_skew)
        if claim.presigned and now > signed_at + datetime.timedelta(seconds=claim.expires):
            raise AuthError("presign-expired", f"Signature expired: {claim.timestamp} is now earlier than "
                                               f"{_stamp(now - datetime.timedelta(seconds=claim.expires))}",
                            extra={"X-Amz-Expires": claim.expires, "Expires": _iso(signed_at + datetime.timedelta(
                                seconds=claim.expires)), "ServerTime": _iso(now)})
        minutes = int(self._max_skew // 60)
        if not claim.presigned and signed_at < now - skew:
            raise self._skewed(claim, f"Signature expired: {claim.timestamp} is now earlier than "
                                      f"{_stamp(now - skew)} ({_stamp(now)} - {minutes} min.)", now)
        if signed_at > now + skew:
            raise self._skewed(claim, f"Signature not yet current: {claim.timestamp} is still later than "
                                      f"{_stamp(now + skew)} ({_stamp(now)} + {minutes} min.)", now)

    def _skewed(self, claim: Signature, message: str, now: datetime.datetime) -> AuthError:
        return AuthError("skewed", message, extra={"RequestTime": claim.timestamp, "ServerTime": _iso(now),
                                                   "MaxAllowedSkewMilliseconds": int(self._max_skew * 1000)})

    def _check_token(self, claim: Signature, record: KeyRecord) -> None:
        if record.session_token is None:
            if claim.token:  # a long-term key with a token: AWS answers the token is invalid
                raise AuthError("bad-token")
            return
        if not claim.token or not hmac.compare_digest(claim.token, record.session_token):
            raise AuthError("bad-token")
        if record.expires_at is not None and self._clock() >= record.expires_at:
            raise AuthError("expired-token")

    @staticmethod
    def _account(record: KeyRecord, request: HttpRequest) -> str:
        named = request.header(ACCOUNT_HEADER)
        if named is None or named == record.account:  # naming one's own account changes nothing
            return record.account
        if not record.internal:
            raise AuthError("denied", f"smlocal checks signatures, so the account comes from the access key "
                                      f"({record.account} for {record.access_key}); remove the {ACCOUNT_HEADER} "
                                      f"header and sign with a key of the account you mean.")
        if not (named.isdigit() and len(named) == 12):
            raise AuthError("denied", f"{ACCOUNT_HEADER} must be a 12-digit account id, not {named[:40]!r}")
        return named


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime(SIGV4_TIMESTAMP)


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
