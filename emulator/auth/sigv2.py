"""S3's signature version 2 presigned URLs, verified with botocore's own `HmacV1QueryAuth`.

boto3 still presigns S3 URLs with version 2 unless told `signature_version="s3v4"` (the SageMaker
SDK and the AWS CLI's `s3 presign` do the same in us-east-1), so a verifying smlocal must accept
them to keep those URLs working. Version 2 Authorization headers are refused: no current SDK sends them.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from botocore.auth import HmacV1QueryAuth
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from emulator.auth.errors import AuthError
from emulator.auth.request import HttpRequest, s3_bucket_and_key

_AUTH_PARAMETERS = ("AWSAccessKeyId", "Signature", "Expires")


def is_presigned_v2(params: dict[str, str]) -> bool:
    return "AWSAccessKeyId" in params and "Signature" in params


class _Recomputer(HmacV1QueryAuth):
    """HmacV1QueryAuth with the URL's own expiry in place of "now + expires"."""

    def __init__(self, credentials, expires: str):
        super().__init__(credentials)
        self._expiry = expires

    def _get_date(self):
        return self._expiry


def verify_presigned_v2(secret: str, token: str | None, request: HttpRequest) -> None:
    params = dict(request.query())
    signer = _Recomputer(Credentials(params["AWSAccessKeyId"], secret, token), params.get("Expires", ""))
    headers = HTTPHeaders()
    for name, value in params.items():  # the headers botocore moved into the query when it presigned
        if name.lower().startswith("x-amz-") or name.lower() in ("content-md5", "content-type"):
            headers[name.lower()] = value
    kept = "&".join(pair for pair in request.query_string.split("&") if pair.partition("=")[0] not in _AUTH_PARAMETERS)
    split = urlsplit(f"http://{request.header('host') or 'localhost'}{request.raw_path}" + (f"?{kept}" if kept else ""))
    bucket, _ = s3_bucket_and_key(request)
    auth_path = None if request.raw_path.lstrip("/").startswith(bucket) else f"/{bucket}{request.raw_path}"
    string_to_sign = signer.canonical_string(request.method, split, headers, auth_path=auth_path)
    if not hmac.compare_digest(signer.sign_string(string_to_sign), params["Signature"]):
        raise AuthError("bad-signature", extra={"AWSAccessKeyId": params["AWSAccessKeyId"],
                                                "StringToSign": string_to_sign, "SignatureProvided": params["Signature"]})
