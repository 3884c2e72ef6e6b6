"""The pipeline: one ordered chain of handlers, as one ASGI application, for every request.

    detect service → read body (the service's limit) → identify caller → answer (parse and validate,
    dispatch, serialize) ─┬→ send
                          errors (any handler's, in the service's protocol) ┘   → access log

Each handler is a coroutine that reads and fills the request's Exchange; the chain stops at the
first that leaves an answer. A caller's mistake is the service's error with AWS's code; anything else
is a bug of ours, logged and answered as an internal error; one answer per request, always.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Awaitable, Callable

from emulator import errors
from emulator.aws import identity
from emulator.context import RequestContext
from emulator.pipeline.body import BodyTimeout, ClientGone, Watchdog, declared_length, read_whole, spool
from emulator.pipeline.exchange import Exchange, header_dict, new_request_id
from emulator.pipeline.respond import send_response
from emulator.pipeline.services import (Internal, Moto, SageMaker, SageMakerRuntime, is_internal, is_runtime,
                                        is_sagemaker_json)

log = logging.getLogger("smlocal.pipeline")
access_log = logging.getLogger("smlocal.access")

READ_TIMEOUT = 20.0  # seconds without a byte of a request body before the request is given up
Step = Callable[[Exchange], Awaitable[None]]


class Pipeline:
    """`handlers`: service ("sagemaker", "sagemaker-runtime") → operation name → handler;
    `moto_app`: the WSGI application for everything else; `internal`: smlocal's own paths;
    `identify`: given the pipeline, the step that decides who calls (by default `identify_caller`,
    unverified; pipeline/authenticate.py's verifies, in the pipeline's pool)."""

    def __init__(self, handlers: dict[str, dict], moto_app, internal: dict[str, Callable], threads: int,
                 read_timeout: float = READ_TIMEOUT, identify: Callable[["Pipeline"], Step] | None = None):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smlocal")
        self.watchdog = Watchdog(read_timeout)
        self.detection = [  # in order; the first that matches answers
            (is_internal, Internal(internal, self.pool)),
            (is_sagemaker_json, SageMaker(handlers.get("sagemaker", {}), self.pool)),
            (is_runtime, SageMakerRuntime(handlers.get("sagemaker-runtime", {}), self.pool)),
        ]
        self.moto = Moto(moto_app, self.pool)
        # The seam for authentication: a verifying step made by `identify` takes the place of
        # `identify_caller`, the one place where a request's account is decided. It runs after the
        # body is read (a signature covers it) and refuses a request by leaving the refusal as its answer.
        caller = identify(self) if identify else self.identify_caller
        self.steps: list[Step] = [self.detect_service, self.read_body, caller, self.answer]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        exchange = Exchange(scope, receive, send, header_dict(scope["headers"]), new_request_id())
        exchange.send = _counting(send, exchange)
        try:
            for step in self.steps:
                await step(exchange)
                if exchange.response is not None or exchange.status:
                    break
        except ClientGone:
            log.debug("%s %s: the client left before its request was whole", exchange.method, exchange.path)
        except Exception as exc:
            if not exchange.status:  # nothing sent yet: the error is the answer
                exchange.response = self.failure(exchange, exc)
            else:
                log.error("%s %s failed while answering", exchange.method, exchange.path, exc_info=exc)
        if exchange.response is not None and not exchange.status:
            await send_response(exchange, self.pool)
        if access_log.isEnabledFor(logging.INFO):
            log_access(exchange)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- the steps, in order ------------------------------------------------------------------------

    async def detect_service(self, exchange: Exchange) -> None:
        exchange.service = next((service for matches, service in self.detection if matches(exchange)), self.moto)

    async def read_body(self, exchange: Exchange) -> None:
        service = exchange.service
        if service.max_body is None:
            exchange.spooled = await spool(exchange.receive, self.watchdog)
            return
        exchange.body = await read_whole(exchange.receive, self.watchdog, service.max_body, service.too_large,
                                         declared_length(exchange.headers))

    async def identify_caller(self, exchange: Exchange) -> None:
        """Who calls (account from the access key, region from the SigV4 scope), unverified; moto
        works it out for itself."""
        if exchange.service is self.moto:
            return
        headers = exchange.headers
        access_key, region, _ = exchange.credential_scope
        exchange.context = RequestContext(account=identity.account_for(access_key, headers),
                                          region=identity.region_for(region), service=exchange.service.name,
                                          headers=headers, request_id=exchange.request_id)

    async def answer(self, exchange: Exchange) -> None:
        try:
            exchange.response = await exchange.service.answer(exchange)
        finally:
            if exchange.spooled is not None:
                exchange.spooled.close()

    # -- errors ---------------------------------------------------------------------------------

    def failure(self, exchange: Exchange, exc: BaseException):
        """An error as the request's service answers it; anything but a ServiceError is a bug of
        ours: logged, answered as an internal error."""
        service = exchange.service or self.moto
        if isinstance(exc, BodyTimeout):
            exchange.close = True
            exc = exc.error()
        elif not isinstance(exc, errors.ServiceError):
            log.error("%s %s failed", service.name, exchange.operation or exchange.path, exc_info=exc)
            exc = errors.internal()
        return service.error_response(exc, exchange.request_id)


def _counting(send, exchange: Exchange):
    """`send`, noting on `exchange` the status and the body bytes sent."""

    async def counted(message) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
        else:
            exchange.sent += len(message.get("body", b""))
        await send(message)

    return counted


def log_access(exchange: Exchange) -> None:
    """One line per request: client, method, path, service and operation, status, bytes, time, id."""
    client = exchange.scope.get("client") or ("-", 0)
    service = exchange.service.name if exchange.service is not None else "-"
    access_log.info("%s %s %s %s%s %s %d %.1fms %s", client[0], exchange.method, exchange.path, service,
                    "." + exchange.operation if exchange.operation else "", exchange.status or "-", exchange.sent,
                    (time.perf_counter() - exchange.started) * 1000, exchange.request_id)

