"""What moto's S3 is told of a request, and what it answers where moto itself would fail.

1. The exact key. A server that bridges ASGI to WSGI (a2wsgi, as every such bridge) puts the
   *decoded* path in PATH_INFO; moto rebuilds a URL from it and decodes that once more, so the keys
   `a%20b` and `a b`, `%41` and `A`, `a%2Fb` and `a/b` collide and overwrite each other. moto
   reads the undecoded target from `RAW_URI` when the WSGI server gives it (gunicorn and werkzeug
   do); `ExactTarget` gives it from the ASGI scope a2wsgi keeps in the environ (`asgi.scope`),
   or a pipeline that builds its own environ calls `wsgi_environ_fix(scope, environ)`.
2. S3's limits and errors where moto has none (hooks on `S3Response`, pinned to moto 5.2.x):
   a key over 1,024 bytes of UTF-8 is refused with KeyTooLongError, one whose percent-encoded
   bytes are not UTF-8 with InvalidURI (moto decoded them to U+FFFD, so `%FF` and `%FE` were one
   key); a body that is not the XML the
   operation takes (garbage, a truncated document, nesting too deep, any DOCTYPE, so no entity is
   ever expanded or fetched) is MalformedXML 400 instead of moto's traceback and 500; a bucket
   policy that is no JSON object with statements is MalformedPolicy (moto stored it, and every
   later request to the bucket's objects failed parsing it); DELETE, PUT or POST on the service root (no bucket) is MethodNotAllowed 405 instead of
   a ListBuckets answer.
"""

from __future__ import annotations

import functools
import json
import string
import threading
import urllib.parse
from xml.parsers.expat import ExpatError

from moto.s3.exceptions import InvalidArgumentError, MalformedXML, S3ClientError
from moto.s3.responses import S3Response

MAX_KEY_BYTES = 1024
# Octets a request target keeps as they are; anything else (raw UTF-8, spaces, controls, and `;`
# and `#`, which moto's urlparse would cut off as parameters or a fragment) is percent-encoded
# before moto decodes the target, so that decoding gives back the client's bytes.
_TARGET_SAFE = (string.ascii_letters + string.digits + "-._~!$&'()*+,=:@/%?").encode()
_CREATING = frozenset({"PUT", "POST"})
_install_lock = threading.Lock()
_installed = False


class ExactTarget:
    """WSGI layer in front of moto: the request target moto decodes is the one the client sent."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        scope = environ.get("asgi.scope")
        if scope is not None:
            wsgi_environ_fix(scope, environ)
        return self.app(environ, start_response)


def wsgi_environ_fix(scope: dict, environ: dict) -> dict:
    """Put the undecoded request target of an ASGI `scope` in `environ` as RAW_URI (and
    REQUEST_URI), unless a server gave it already; returns the environ."""
    if "RAW_URI" in environ:
        return environ
    raw_path = scope.get("raw_path") or scope.get("path", "/").encode("utf-8")
    target = _ascii_target(raw_path)
    query = scope.get("query_string") or b""
    if query:
        target += "?" + _ascii_target(query)
    environ["RAW_URI"] = environ["REQUEST_URI"] = target
    return environ


def _ascii_target(raw: bytes) -> str:
    return "".join(chr(b) if b in _TARGET_SAFE else "%%%02X" % b for b in raw)


# -- S3 errors moto does not give -------------------------------------------------------------------

class KeyTooLongError(S3ClientError):
    code = "KeyTooLongError"

    def __init__(self, size: int):
        super().__init__("KeyTooLongError", "Your key is too long")
        self.size, self.max_size_allowed = size, MAX_KEY_BYTES


class InvalidURI(S3ClientError):
    code = "InvalidURI"

    def __init__(self):
        super().__init__("InvalidURI", "Couldn't parse the specified URI.")


class MalformedPolicy(S3ClientError):
    code = "MalformedPolicy"

    def __init__(self, message: str):
        super().__init__("MalformedPolicy", message)


class MethodNotAllowed(S3ClientError):
    code = "MethodNotAllowed"

    def __init__(self, method: str):
        super().__init__("MethodNotAllowed", "The specified method is not allowed against this resource.")
        self.method, self.resource_type = method, "SERVICE"


def install() -> None:
    """Hook S3Response once per process (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        S3Response._bucket_response = _bucket_checks(S3Response._bucket_response)
        S3Response._key_response = _key_checks(S3Response._key_response)
        _installed = True


def _bucket_checks(moto_handler):
    @functools.wraps(moto_handler)
    def handler(self, request, full_url):
        if request.method in ("DELETE", "PUT", "POST") and not self.parse_bucket_name_from_url(request, full_url):
            self.response_headers["Allow"] = "GET"  # as S3 says: the service root is only listed
            raise _answered_as(self, "ListBuckets", MethodNotAllowed(request.method))
        if request.method == "PUT" and "policy" in request.args:
            _check_policy(self)
        if request.method == "POST" and "delete" not in request.args and "key" not in request.form:
            raise _answered_as(self, "PutObject", InvalidArgumentError(  # moto: a KeyError, a 500
                "Bucket POST must contain a field named 'key'.  If it is specified, please check the order"
                " of the fields.", "key", ""))
        return _xml_checked(moto_handler, self, request, full_url, _bucket_xml_body(request, self.body))

    return handler


def _key_checks(moto_handler):
    @functools.wraps(moto_handler)
    def handler(self, request, full_url):
        if not _is_utf8(urllib.parse.unquote_to_bytes(self.raw_path)):  # moto would store U+FFFD instead
            raise _answered_as(self, "GetObject" if request.method in ("GET", "HEAD") else "PutObject", InvalidURI())
        if request.method in _CREATING:
            size = len(self.parse_key_name().encode("utf-8", "surrogatepass"))
            if size > MAX_KEY_BYTES:
                raise _answered_as(self, "PutObject", KeyTooLongError(size))
        return _xml_checked(moto_handler, self, request, full_url, _key_xml_body(request, self.body))

    return handler


def _check_policy(response: S3Response) -> None:
    """A bucket policy must be a JSON object with statements: moto stored anything, and every later
    request to the bucket's objects then failed parsing it (a 500 for good)."""
    try:
        policy = json.loads(response.body)
    except ValueError:
        policy = None
    if not isinstance(policy, dict):
        raise _answered_as(response, "PutBucketPolicy",
                           MalformedPolicy("Policies must be valid JSON and the first byte must be '{'"))
    if not isinstance(policy.get("Statement"), (list, dict)) or not policy["Statement"]:
        raise _answered_as(response, "PutBucketPolicy", MalformedPolicy("Missing required field Statement"))


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _xml_checked(moto_handler, response: S3Response, request, full_url, xml_body: bool):
    """moto's answer; for a request whose body is an XML document (`xml_body`), a body that
    declares a DOCTYPE (entities: never expanded, never fetched) or that moto cannot read as the
    operation's XML (garbage, truncated, the wrong elements, nested too deep) is MalformedXML."""
    if xml_body and b"<!DOCTYPE" in response.body:
        raise _answered_as(response, "PutObject", MalformedXML())
    try:
        return moto_handler(response, request, full_url)
    except S3ClientError:
        raise
    except (ExpatError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError):
        if xml_body:
            raise _answered_as(response, "PutObject", MalformedXML()) from None
        raise


def _answered_as(response: S3Response, operation: str, error: S3ClientError) -> S3ClientError:
    """`error`, with the operation moto serializes it for named unless moto named one already:
    otherwise moto guesses it from the request's URI with patterns built from botocore's S3 model,
    which botocore rewrites in place once a client has resolved an endpoint in this process
    (`^?tagging$` does not compile, and the error became a 500)."""
    response.data.setdefault("Action", operation)
    return error


# Object sub-resources whose PUT or POST body is an XML document (CompleteMultipartUpload: POST
# ?uploadId); a PutObject or UploadPart body is the object's bytes, whatever its query says.
_KEY_XML = frozenset({"tagging", "acl", "retention", "legal-hold", "restore", "select"})


def _bucket_xml_body(request, body: bytes) -> bool:
    """Every PUT or POST body on a bucket is XML, but a bucket policy (JSON) and a browser form."""
    return (request.method in _CREATING and bool(body) and "policy" not in request.args
            and request.mimetype != "multipart/form-data")


def _key_xml_body(request, body: bytes) -> bool:
    if request.method not in _CREATING or not body:
        return False
    return bool(_KEY_XML & request.args.keys()) or (request.method == "POST" and "uploadId" in request.args)
