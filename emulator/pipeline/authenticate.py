"""The caller step with `--auth`: who calls is proved by the request's signature, not assumed.

It takes the place of `Pipeline.identify_caller` (the seam in chain.py), after the body is read so
that the signature covers it. The Authenticator verifies the signature against the keys smlocal
knows, the Authorizer refuses another account's resources; both are CPU work (HMACs, hashing a
large upload), so they run in the pipeline's thread pool, not on the event loop. A refusal is the
whole answer, in the error dialect of the protocol the request speaks. A verified request carries
its account on: SageMaker's handlers get it in the RequestContext, moto in `x-moto-account-id`
(the only way moto learns an account; a caller's own header was refused unless it named its own).

Without `--auth` the step still guards the listeners on the Docker bridge, where every container
reaches smlocal: a request that arrived there (`verify_on`, the connection's local addresses) is
verified, one on loopback is identified as before (`fallback`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from emulator.auth import AuthError, Authenticator, Authorizer, Principal, protocol_of
from emulator.context import RequestContext
from emulator.pipeline.chain import Step
from emulator.pipeline.exchange import Exchange
from emulator.protocol.http import HttpResponse

OPEN_PATHS = frozenset({"/_smlocal/health"})  # a readiness probe needs no key
ACCOUNT_HEADER = b"x-moto-account-id"
_FEED_CHUNK = 256 * 1024
_WHOLE_BODY = 1024 * 1024  # a spooled body up to this size is read whole (it is in memory already)


class Authenticate:
    """The pipeline step: `await step(exchange)`."""

    def __init__(self, authenticator: Authenticator, pool: ThreadPoolExecutor, authorizer: Authorizer | None = None,
                 verify_on: frozenset[str] | None = None, fallback: Step | None = None):
        self.authenticator = authenticator
        self.authorizer = authorizer or Authorizer()
        self.pool = pool
        self.verify_on = verify_on  # None: every request
        self.fallback = fallback

    async def __call__(self, exchange: Exchange) -> None:
        if self.verify_on is not None and (exchange.scope.get("server") or ("",))[0] not in self.verify_on:
            await self.fallback(exchange)
            return
        if exchange.path in OPEN_PATHS:
            return
        try:
            principal = await asyncio.get_running_loop().run_in_executor(self.pool, self.verify, exchange)
        except AuthError as error:
            exchange.response = refusal(error, exchange)
            if exchange.spooled is not None:  # no service will read it
                exchange.spooled.close()
            return
        if exchange.spooled is not None:
            _name_account(exchange.scope, principal.account)
        else:
            exchange.context = RequestContext(account=principal.account, region=principal.region,
                                              service=exchange.service.name, headers=exchange.headers,
                                              request_id=exchange.request_id)

    def verify(self, exchange: Exchange) -> Principal:
        """The verified caller, checked against what the request touches; AuthError otherwise."""
        scope = exchange.scope
        request = (scope["method"], scope.get("raw_path") or scope["path"].encode(), scope.get("query_string", b""),
                   scope["headers"])
        if exchange.spooled is None:
            principal = self.authenticator.authenticate(*request, exchange.body)
            body = exchange.body
        else:
            principal, body = self._streamed(request, exchange.spooled)
        self.authorizer.check(principal, *request, body)
        return principal

    def _streamed(self, request, spooled) -> tuple[Principal, bytes]:
        """A body spooled for moto. A small one is read whole (STS and IAM sign theirs without
        x-amz-content-sha256, and the Authorizer reads STS's form parameters); a large one (an S3
        upload, whose hash the signature declares) is fed to the payload check piece by piece."""
        try:
            head = spooled.read(_WHOLE_BODY + 1)
            if len(head) <= _WHOLE_BODY:
                return self.authenticator.authenticate(*request, head), head
            principal, payload = self.authenticator.authenticate_streaming(*request)
            piece = head
            while piece:
                payload.feed(piece)
                piece = spooled.read(_FEED_CHUNK)
            payload.finish()
            return principal, b""
        finally:
            spooled.seek(0)


def refusal(error: AuthError, exchange: Exchange) -> HttpResponse:
    scope = exchange.scope
    protocol = protocol_of(scope["headers"], scope.get("raw_path") or scope["path"], scope.get("query_string", b""))
    status, headers, body = error.render(protocol, exchange.request_id)
    # the pipeline's sender writes the Content-Length itself
    return HttpResponse(status, [(name, value) for name, value in headers if name.lower() != "content-length"], body)


def _name_account(scope: dict, account: str) -> None:
    """moto serves the verified account: its header replaces whatever the caller sent."""
    scope["headers"] = [(name, value) for name, value in scope["headers"] if name != ACCOUNT_HEADER]
    scope["headers"].append((ACCOUNT_HEADER, account.encode()))
