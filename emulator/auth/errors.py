"""Authentication and authorization failures, answered in each service's own error dialect.

One failure (an unknown key, a wrong signature, a skewed clock) has a different code, status and
wording in each AWS protocol family: SageMaker's json 1.1 answers `UnrecognizedClientException`
with 400, SageMaker Runtime's rest-json the same code with 403, STS and IAM's query protocol
`InvalidClientTokenId`, S3 `InvalidAccessKeyId` in its XML. The table below holds AWS's codes
and wording once; `AuthError.wire(protocol)` picks the row, `AuthError.render` writes the body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from emulator.errors import ServiceError

# the protocol families, as botocore's service models name them; and "json+query": json sent in
# query-compatible mode (x-amzn-query-mode: CloudWatch's), which answers the query codes
JSON, REST_JSON, QUERY, REST_XML, CBOR = "json", "rest-json", "query", "rest-xml", "smithy-rpc-v2-cbor"
QUERY_JSON = "json+query"
_QUERY_COMPATIBLE = (QUERY_JSON, CBOR)

_TOKEN_INVALID = "The security token included in the request is invalid."
_TOKEN_EXPIRED = "The security token included in the request is expired"
_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
              "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
_S3_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                 "Check your key and signing method.")

# kind → protocol family → (HTTP status, code, AWS's message; None: the error's own detail).
# rest-json services (SageMaker Runtime) answer the json row's code and message with 403; a
# query-compatible one (CloudWatch in json or CBOR) the query row's, naming it in x-amzn-query-error.
_TABLE: dict[str, dict[str, tuple[int, str, str | None]]] = {
    "missing": {
        JSON: (400, "MissingAuthenticationTokenException", "Missing Authentication Token"),
        QUERY: (403, "MissingAuthenticationToken", "Request is missing Authentication Token"),
        REST_XML: (403, "AccessDenied", "Access Denied"),
    },
    "malformed": {
        JSON: (400, "IncompleteSignatureException", None),
        QUERY: (400, "IncompleteSignature", None),
        REST_XML: (400, "AuthorizationHeaderMalformed", None),
    },
    "unsupported": {
        JSON: (400, "IncompleteSignatureException", None),
        QUERY: (400, "IncompleteSignature", None),
        REST_XML: (400, "InvalidRequest", None),
    },
    "query-malformed": {
        JSON: (400, "IncompleteSignatureException", None),
        QUERY: (400, "IncompleteSignature", None),
        REST_XML: (400, "AuthorizationQueryParametersError", None),
    },
    "unknown-key": {
        JSON: (400, "UnrecognizedClientException", _TOKEN_INVALID),
        QUERY: (403, "InvalidClientTokenId", _TOKEN_INVALID),
        REST_XML: (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
    },
    "bad-token": {
        JSON: (400, "UnrecognizedClientException", _TOKEN_INVALID),
        QUERY: (403, "InvalidClientTokenId", _TOKEN_INVALID),
        REST_XML: (400, "InvalidToken", "The provided token is malformed or otherwise invalid."),
    },
    "expired-token": {
        JSON: (400, "ExpiredTokenException", _TOKEN_EXPIRED),
        QUERY: (403, "ExpiredToken", _TOKEN_EXPIRED),
        REST_XML: (400, "ExpiredToken", "The provided token has expired."),
    },
    "bad-signature": {
        JSON: (400, "InvalidSignatureException", _SIGNATURE),
        QUERY: (403, "SignatureDoesNotMatch", _SIGNATURE),
        REST_XML: (403, "SignatureDoesNotMatch", _S3_SIGNATURE),
    },
    "content-mismatch": {
        JSON: (400, "InvalidSignatureException", _SIGNATURE),
        QUERY: (403, "SignatureDoesNotMatch", _SIGNATURE),
        REST_XML: (400, "XAmzContentSHA256Mismatch",
                   "The provided 'x-amz-content-sha256' header does not match what was computed."),
    },
    "skewed": {
        JSON: (400, "InvalidSignatureException", None),
        QUERY: (403, "SignatureDoesNotMatch", None),
        REST_XML: (403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."),
    },
    "presign-expired": {
        JSON: (400, "InvalidSignatureException", None),
        QUERY: (403, "SignatureDoesNotMatch", None),
        REST_XML: (403, "AccessDenied", "Request has expired"),
    },
    "denied": {
        JSON: (400, "AccessDeniedException", None),
        QUERY: (403, "AccessDenied", None),
        REST_XML: (403, "AccessDenied", None),
    },
}


@dataclass
class AuthError(Exception):
    """A request smlocal refuses before any service sees it. `kind` is a row of the table;
    `detail` is the message where AWS's wording depends on the request (a skew names the times);
    `extra` are the elements S3 adds to its XML (AWSAccessKeyId, StringToSign, ServerTime…)."""

    kind: str
    detail: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in _TABLE:
            raise ValueError(f"unknown authentication failure {self.kind!r}")
        super().__init__(self.kind, self.detail)

    def wire(self, protocol: str) -> ServiceError:
        """The code, status and message AWS answers in `protocol` (json, rest-json, query, rest-xml;
        any other botocore protocol answers as json does)."""
        row = _TABLE[self.kind]
        status, code, message = row.get(protocol) or row[QUERY if protocol in _QUERY_COMPATIBLE else JSON]
        if protocol == REST_JSON:
            status = 403
        return ServiceError(code, message or self.detail, status=status, **self.extra)

    def render(self, protocol: str, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body) of the whole answer, for a pipeline that has no serializer for
        the protocol's errors at hand (S3's and query's XML)."""
        error = self.wire(protocol)
        writer = _WRITERS.get(protocol, _json_body)
        content_type, body = writer(error, request_id)
        headers = [("Content-Type", content_type), ("x-amzn-RequestId", request_id),
                   ("Content-Length", str(len(body)))]
        if protocol in _QUERY_COMPATIBLE:
            headers.append(("x-amzn-query-error", f"{error.code};Sender"))
        if protocol == CBOR:
            headers.append(("smithy-protocol", "rpc-v2-cbor"))
        elif protocol not in (QUERY, REST_XML):
            headers.append(("x-amzn-ErrorType", error.code))
        return error.status, headers, body


def _json_body(error: ServiceError, request_id: str) -> tuple[str, bytes]:
    return "application/x-amz-json-1.1", json.dumps({"__type": error.code, "message": error.message}).encode()


def _rest_json_body(error: ServiceError, request_id: str) -> tuple[str, bytes]:
    return "application/json", json.dumps({"message": error.message}).encode()


def _query_body(error: ServiceError, request_id: str) -> tuple[str, bytes]:
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{error.code}</Code>"
            f"<Message>{escape(error.message)}</Message></Error>"
            f"<RequestId>{escape(request_id)}</RequestId></ErrorResponse>")
    return "text/xml", body.encode()


def _s3_body(error: ServiceError, request_id: str) -> tuple[str, bytes]:
    extra = "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in error.fields.items())
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{error.code}</Code>'
            f"<Message>{escape(error.message)}</Message>{extra}"
            f"<RequestId>{escape(request_id)}</RequestId></Error>")
    return "application/xml", body.encode()


def _cbor_body(error: ServiceError, request_id: str) -> tuple[str, bytes]:
    return "application/cbor", _cbor_map({"__type": error.code, "message": error.message})


def _cbor_map(members: dict[str, str]) -> bytes:
    """RFC 8949: a map (major type 5) of text strings (major type 3), all this body needs."""
    return _cbor_head(5, len(members)) + b"".join(
        _cbor_head(3, len(encoded)) + encoded
        for pair in members.items() for encoded in (text.encode() for text in pair))


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if length < 1 << (8 * width):
            return bytes([major << 5 | extra]) + length.to_bytes(width, "big")
    raise ValueError("too long for CBOR")


_WRITERS = {JSON: _json_body, QUERY_JSON: _json_body, REST_JSON: _rest_json_body, QUERY: _query_body,
            REST_XML: _s3_body, CBOR: _cbor_body}


# signing name → protocol family, for a request without X-Amz-Target
_SIGNING_PROTOCOLS = {"s3": REST_XML, "sts": QUERY, "iam": QUERY, "monitoring": QUERY, "sagemaker": REST_JSON}


def protocol_of(headers, raw_path, query_string="") -> str:
    """The protocol family a request speaks, from what any request carries (for answering an error
    before the pipeline has detected the service): X-Amz-Target is json 1.x; otherwise the signing
    name of the Authorization header or presigned query; otherwise the shape of an unsigned call.
    `headers`: a dict or (name, value) pairs, str or bytes, as `Authenticator.authenticate` takes."""
    from emulator.auth.request import HttpRequest

    request = HttpRequest.of("GET", raw_path, query_string, headers)
    headers, raw_path, query_string = dict(request.headers), request.raw_path, request.query_string
    if headers.get("smithy-protocol") == "rpc-v2-cbor":
        return CBOR
    if headers.get("x-amz-target"):
        return QUERY_JSON if headers.get("x-amzn-query-mode") == "true" else JSON
    credential = headers.get("authorization", "").partition("Credential=")[2] or query_string.partition(
        "X-Amz-Credential=")[2].replace("%2F", "/")
    parts = credential.split("/")
    if len(parts) >= 4 and parts[3] in _SIGNING_PROTOCOLS:
        return _SIGNING_PROTOCOLS[parts[3]]
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return QUERY
    return REST_JSON if raw_path.startswith("/endpoints/") else REST_XML
