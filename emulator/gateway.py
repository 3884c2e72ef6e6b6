"""The request pipeline: route → parse → dispatch → serialize, as one WSGI application.

Routing, in order: smlocal's own `/_smlocal/*` paths; `X-Amz-Target: SageMaker.*` → SageMaker
(json 1.1); `/endpoints/...` signed for `sagemaker` (or unsigned) → SageMaker Runtime (rest-json);
anything else → moto's dispatcher (S3, CloudWatch Logs, STS, IAM, ...), untouched.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import urllib.parse
from typing import Callable

from emulator import errors
from emulator.aws import identity
from emulator.context import RequestContext
from emulator.protocol import jsonrpc, restjson
from emulator.protocol.http import HttpRequest, HttpResponse

log = logging.getLogger("smlocal.gateway")

# Bodies above this are refused before they are read (SageMaker Runtime's limit is 6 MB; the
# control plane's requests are far smaller).
MAX_BODY = 6 * 1024 * 1024 + 64 * 1024

Handler = Callable[[RequestContext, dict], dict]


class Gateway:
    def __init__(self, handlers: dict[str, dict[str, Handler]], moto_app, internal: dict[str, Callable]):
        self.handlers = handlers  # service → operation name → handler
        self.moto_app = moto_app
        self.internal = internal  # path → callable returning (status, json-able)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_smlocal/"):
            return self._internal(path, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("SageMaker.") or self._json_without_a_service(environ, path, target):
            return self._respond(self._json_call("sagemaker", environ), start_response, environ)
        if path.startswith("/endpoints/") and self._signed_for_sagemaker(environ):
            return self._respond(self._rest_call("sagemaker-runtime", environ), start_response, environ)
        if identity.credential_scope(environ.get("HTTP_AUTHORIZATION", ""))[2] in ("iam", "sts"):
            identity.forget_accounts()  # access keys may come or go
        return self.moto_app(environ, start_response)

    # -- SageMaker (json 1.1) -----------------------------------------------------------------

    def _json_call(self, service: str, environ) -> HttpResponse:
        headers = _headers(environ)
        ctx = request_context(service, headers)
        try:
            request = self._request(environ, headers)
            op = jsonrpc.operation_for(service, request)
            ctx.operation = op.name
            params = jsonrpc.parse(op, request)
            result = self._dispatch(service, op.name, ctx, params)
            return jsonrpc.serialize(op, result, ctx.request_id)
        except errors.ServiceError as err:
            return jsonrpc.serialize_error(err, ctx.request_id)
        except Exception:  # a bug of ours: say so, keep serving
            log.exception("%s %s failed", service, ctx.operation)
            return jsonrpc.serialize_error(errors.internal(), ctx.request_id)

    # -- SageMaker Runtime (rest-json) --------------------------------------------------------

    def _rest_call(self, service: str, environ) -> HttpResponse:
        headers = _headers(environ)
        ctx = request_context(service, headers)
        try:
            request = self._request(environ, headers)
            op, labels = restjson.route(service, request)
            ctx.operation = op.name
            params = restjson.parse(op, request, labels)
            result = self._dispatch(service, op.name, ctx, params)
            if isinstance(result, HttpResponse):  # streaming operations answer themselves
                return result
            return restjson.serialize(op, result, ctx.request_id)
        except errors.ServiceError as err:
            return restjson.serialize_error(err, ctx.request_id)
        except Exception:
            log.exception("%s %s failed", service, ctx.operation)
            return restjson.serialize_error(errors.internal(), ctx.request_id)

    # -- shared steps -------------------------------------------------------------------------

    def _dispatch(self, service: str, operation: str, ctx: RequestContext, params: dict):
        handler = self.handlers.get(service, {}).get(operation)
        if handler is None:
            raise errors.not_implemented(operation, "SageMaker Runtime" if service != "sagemaker" else "SageMaker")
        return handler(ctx, params)

    @staticmethod
    def _request(environ, headers: dict[str, str]) -> HttpRequest:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise errors.serialization("Content-Length is not a number.") from None
        if length > MAX_BODY:
            raise errors.validation(f"Request body of {length} bytes exceeds the limit of {MAX_BODY} bytes.")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        return HttpRequest(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("PATH_INFO", "/"),
            query=urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            headers=headers,
            body=body,
        )

    @staticmethod
    def _json_without_a_service(environ, path: str, target: str) -> bool:
        """Requests no AWS service accepts and moto's dispatcher crashes on, answered as SageMaker
        (400 UnknownOperationException): a target without a dot or with any casing of the SageMaker
        prefix, a json-protocol body without a target, anything signed for sagemaker off /endpoints/."""
        if target and ("." not in target or target.split(".", 1)[0].strip().lower() == "sagemaker"):
            return True
        if not target and environ.get("CONTENT_TYPE", "").startswith("application/x-amz-json"):
            return True
        return not path.startswith("/endpoints/") and identity.credential_scope(
            environ.get("HTTP_AUTHORIZATION", ""))[2] == "sagemaker"

    @staticmethod
    def _signed_for_sagemaker(environ) -> bool:
        return signed_for_sagemaker(environ.get("HTTP_AUTHORIZATION", ""))

    def _internal(self, path: str, start_response):
        handler = self.internal.get(path)
        if handler is None:
            status, document = 404, {"message": f"No smlocal path {path}."}
        else:
            status, document = handler()
        return self._respond(
            HttpResponse(status, [("Content-Type", "application/json")], json.dumps(document).encode()),
            start_response,
        )

    @staticmethod
    def _respond(response: HttpResponse, start_response, environ=None):
        body = response.body
        headers = list(response.headers)
        if isinstance(body, (bytes, bytearray)):
            headers.append(("Content-Length", str(len(body))))
            body = [bytes(body)]
        start_response(f"{response.status} {_REASONS.get(response.status, 'Status')}", headers)
        if environ is not None and environ.get("REQUEST_METHOD") == "HEAD":
            return []  # a HEAD answer has no body
        return body


def request_context(service: str, headers: dict[str, str]) -> RequestContext:
    """Who calls (account from the access key, region from the SigV4 scope), with a request id."""
    access_key, region, _ = identity.credential_scope(headers.get("authorization", ""))
    return RequestContext(
        account=identity.account_for(access_key, headers),
        region=identity.region_for(region),
        service=service,
        headers=headers,
        request_id=new_request_id(),
    )


def signed_for_sagemaker(authorization: str) -> bool:
    """SageMaker Runtime's calls are signed for the `sagemaker` service (or not signed at all)."""
    _, _, service = identity.credential_scope(authorization)
    return service in (None, "sagemaker")


def new_request_id() -> str:
    """A request id in the form of a version-4 UUID: its first 80 bits drawn at random once per
    process, its last 48 counted. A request id needs to be unique, not secret; drawing 128 bits and
    formatting them costs a microsecond a call, counting a third of that (uuid4() costs more still:
    os.urandom is a system call that lets go of the GIL on every request)."""
    return _ids.prefix + "%012x" % (next(_ids.count) & 0xFFFFFFFFFFFF)


class _RequestIds:
    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """A new random prefix (version nibble 4, RFC 4122 variant bits) and counter start."""
        self.prefix = "%08x-%04x-4%03x-%04x-" % (random.getrandbits(32), random.getrandbits(16),
                                                 random.getrandbits(12), 0x8000 | random.getrandbits(14))
        self.count = itertools.count(random.getrandbits(48))


_ids = _RequestIds()
os.register_at_fork(after_in_child=_ids.reset)  # a forked child counts from a prefix of its own


def _headers(environ) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    return headers


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large",
            424: "Failed Dependency", 500: "Internal Server Error", 501: "Not Implemented",
            503: "Service Unavailable"}
