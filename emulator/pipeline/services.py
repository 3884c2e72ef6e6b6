"""The services behind smlocal's one port, each with its protocol, its body limit and its way to
answer; and the detection that picks one for a request, in order, as a table.

SageMaker's control plane is blocking code (SQLite, the runtime), so its calls are parsed, served
and serialized in the thread pool. An operation whose handler is a coroutine function (InvokeEndpoint)
is served on the event loop; moto gets the request untouched through a2wsgi, in the same pool.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from a2wsgi import WSGIMiddleware

from emulator import errors
from emulator.aws import identity
from emulator.pipeline.body import replay
from emulator.pipeline.exchange import Exchange
from emulator.protocol import jsonrpc, restjson
from emulator.protocol.http import HttpRequest, HttpResponse

log = logging.getLogger("smlocal.pipeline")

# A real-time endpoint takes at most 6 MB (AWS's InvokeEndpoint limit): SageMaker Runtime's one limit.
RUNTIME_MAX_BODY = 6 * 1024 * 1024
# SageMaker's control-plane requests are far smaller; this only keeps a runaway client out.
CONTROL_PLANE_MAX_BODY = 6 * 1024 * 1024 + 64 * 1024

Handler = Callable  # (RequestContext, params) -> result, plain or a coroutine function


class _AwsService:
    """A SageMaker service: operations read from the wire by `protocol`, served by `handlers`."""

    name = ""
    title = ""
    max_body = 0

    def __init__(self, handlers: dict[str, Handler], pool: ThreadPoolExecutor):
        self.handlers = handlers
        self.pool = pool
        self.on_loop = frozenset(name for name, handler in handlers.items() if inspect.iscoroutinefunction(handler))

    def too_large(self, size: int) -> errors.ServiceError:
        return errors.validation(f"Received payload size of {size} bytes exceeds the maximum of {self.max_body} "
                                 f"bytes for {self.title}.")

    async def answer(self, exchange: Exchange) -> HttpResponse:
        request = exchange.request()
        op, labels = self.operation(request)
        exchange.operation = exchange.context.operation = op.name
        handler = self.handlers.get(op.name)
        if op.name in self.on_loop:  # a coroutine: served on the loop
            result = await handler(exchange.context, self.parse(op, request, labels))
            return self._serialized(op, result, exchange.request_id)
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, self._serve, op, handler, request, labels, exchange)

    def _serve(self, op, handler: Handler | None, request: HttpRequest, labels, exchange: Exchange) -> HttpResponse:
        params = self.parse(op, request, labels)  # an unimplemented operation's input is checked too
        if handler is None:
            raise errors.not_implemented(op.name, self.title)
        return self._serialized(op, handler(exchange.context, params), exchange.request_id)

    def _serialized(self, op, result, request_id: str) -> HttpResponse:
        if isinstance(result, HttpResponse):  # streaming operations answer themselves
            return result
        return self.serialize(op, result, request_id)


class SageMaker(_AwsService):
    """SageMaker's control plane, AWS json 1.1."""

    name, title, max_body = "sagemaker", "SageMaker", CONTROL_PLANE_MAX_BODY

    @staticmethod
    def operation(request: HttpRequest):
        return jsonrpc.operation_for("sagemaker", request), None

    @staticmethod
    def parse(op, request: HttpRequest, labels) -> dict:
        return jsonrpc.parse(op, request)

    serialize = staticmethod(jsonrpc.serialize)
    error_response = staticmethod(jsonrpc.serialize_error)


class SageMakerRuntime(_AwsService):
    """SageMaker Runtime, AWS rest-json."""

    name, title, max_body = "sagemaker-runtime", "SageMaker Runtime", RUNTIME_MAX_BODY

    def too_large(self, size: int) -> errors.ServiceError:
        return errors.ServiceError("ValidationError", f"Received payload size of {size} bytes exceeds the maximum "
                                   f"of {RUNTIME_MAX_BODY} bytes (6 MB) for a real-time endpoint.")

    @staticmethod
    def operation(request: HttpRequest):
        return restjson.route("sagemaker-runtime", request)

    @staticmethod
    def parse(op, request: HttpRequest, labels) -> dict:
        return restjson.parse(op, request, labels)

    serialize = staticmethod(restjson.serialize)
    error_response = staticmethod(restjson.serialize_error)


class Internal:
    """smlocal's own paths (`/_smlocal/health`): path → callable returning (status, json-able)."""

    name, max_body = "smlocal", 64 * 1024

    def __init__(self, paths: dict[str, Callable], pool: ThreadPoolExecutor):
        self.paths = paths
        self.pool = pool

    def too_large(self, size: int) -> errors.ServiceError:
        return errors.validation(f"Request body of {size} bytes exceeds the limit of {self.max_body} bytes.")

    async def answer(self, exchange: Exchange) -> HttpResponse:
        handler = self.paths.get(exchange.path)
        if handler is None:
            status, document = 404, {"message": f"No smlocal path {exchange.path}."}
        else:
            status, document = await asyncio.get_running_loop().run_in_executor(self.pool, handler)
        return HttpResponse(status, [("Content-Type", "application/json")], json.dumps(document).encode())

    error_response = staticmethod(jsonrpc.serialize_error)


class Moto:
    """Everything else (S3, CloudWatch Logs, STS, IAM, CloudWatch): moto's WSGI dispatcher under
    a2wsgi, handed the request as it came (its body read whole first) and answering it itself."""

    name, max_body = "moto", None

    def __init__(self, wsgi_app, pool: ThreadPoolExecutor):
        self.wsgi = WSGIMiddleware(wsgi_app, workers=1)
        self.wsgi.executor.shutdown(wait=False)  # never started: the pipeline's one pool serves instead
        self.wsgi.executor = pool

    async def answer(self, exchange: Exchange) -> None:
        if exchange.credential_scope[2] in ("iam", "sts"):
            identity.forget_accounts()  # access keys may come or go
        await self.wsgi(exchange.scope, replay(exchange.spooled), exchange.send)

    @staticmethod
    def error_response(err: errors.ServiceError, request_id: str) -> HttpResponse:
        """An error before moto saw the request, in S3's XML (what moto's XML services answer)."""
        document = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{err.code}</Code>"
                    f"<Message>{_xml_text(err.message)}</Message><RequestId>{request_id}</RequestId></Error>")
        return HttpResponse(err.status, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)],
                            document.encode())


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- detection ------------------------------------------------------------------------------------

def is_internal(exchange: Exchange) -> bool:
    return exchange.path.startswith("/_smlocal/")


def is_sagemaker_json(exchange: Exchange) -> bool:
    """`X-Amz-Target: SageMaker.*`, and the requests no AWS service accepts and moto's dispatcher
    crashes on, answered as SageMaker (400 UnknownOperationException): a target without a dot or
    with any casing of the SageMaker prefix, a json-protocol body without a target, anything signed
    for sagemaker off /endpoints/."""
    headers = exchange.headers
    target = headers.get("x-amz-target", "")
    if target.startswith("SageMaker.") or (
            target and ("." not in target or target.split(".", 1)[0].strip().lower() == "sagemaker")):
        return True
    if not target and headers.get("content-type", "").startswith("application/x-amz-json"):
        return True
    return not exchange.path.startswith("/endpoints/") and _signing_service(exchange) == "sagemaker"


def is_runtime(exchange: Exchange) -> bool:
    """SageMaker Runtime's calls: /endpoints/… signed for the `sagemaker` service, or not signed."""
    return exchange.path.startswith("/endpoints/") and _signing_service(exchange) in (None, "sagemaker")


def _signing_service(exchange: Exchange) -> str | None:
    return exchange.credential_scope[2]
