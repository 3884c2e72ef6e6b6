"""The router: InvokeEndpoint picks a variant by weight (or TargetVariant), then a healthy instance
(least calls in flight, ties rotating), sends the call through the upstream client, and turns the
container's answer into AWS's response or error.

Every call is a coroutine on the server's event loop (`invoke` for a whole answer, `stream` for one
read as it arrives): a call waiting for its container holds no thread. Work on other threads
(InvokeEndpointAsync) hands its calls to that loop (`invoke_blocking`), so each instance's
connection pools live on one loop and its in-flight count needs no lock.

Routes live in memory and are swapped whole when a fleet changes, so a call never reads SQLite and
never sees half an update.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from emulator import errors, upstream
from emulator.upstream import Request, Transport, UpstreamConnectionError, UpstreamTimeout

INVOKE_TIMEOUT = 60.0
FORWARDED = {
    "ContentType": "Content-Type", "Accept": "Accept",
    "CustomAttributes": "X-Amzn-SageMaker-Custom-Attributes", "TargetModel": "X-Amzn-SageMaker-Target-Model",
    "InferenceId": "X-Amzn-SageMaker-Inference-Id", "EnableExplanations": "X-Amzn-SageMaker-Enable-Explanations",
}
_FORWARDED_NAMES = tuple(FORWARDED)
RESTORE_WAIT_SECONDS = 600.0  # the longest a call waits for an endpoint coming back after a restart


class Instance:
    """One serving instance: its containers' servers, a transport to each, health and calls in flight.
    `inflight` is counted on the router's loop only (every call runs there), so it needs no lock."""

    def __init__(self, instance_id: str, servers: list, hostnames: list[str], log_stream_arn: str = "",
                 connect: Callable[[str], Transport] = upstream.connect, release: Callable[[], None] | None = None):
        self.id = instance_id
        self.servers = servers  # ServerProcess per container, in pipeline order
        self.hostnames = hostnames
        self.log_stream_arn = log_stream_arn
        self.healthy = True
        self.inflight = 0
        self.targets = [(hostname, connect(server.url)) for hostname, server in zip(hostnames, servers)]
        self.release = release  # takes back the containers' credentials once they are stopped

    def close(self) -> None:
        for _, transport in self.targets:
            transport.close()
        if self.release is not None:
            self.release()
            self.release = None


@dataclass
class VariantRoute:
    name: str
    weight: float
    instances: list[Instance] = field(default_factory=list)
    direct: bool = False  # multi-container model invoked by TargetContainerHostname
    on_demand: object = None  # serverless: a callable that starts an instance on first use
    _turn: itertools.count = field(default_factory=itertools.count)

    def pick(self) -> Instance | None:
        instances = self.instances
        if len(instances) == 1:  # the common fleet of one: nothing to spread
            return instances[0] if instances[0].healthy else None
        healthy = [i for i in instances if i.healthy]
        if not healthy:
            return None
        start = next(self._turn) % len(healthy)
        rotated = healthy[start:] + healthy[:start]
        return min(rotated, key=lambda i: i.inflight)


@dataclass
class Route:
    endpoint: str
    arn: str
    account: str
    region: str
    variants: dict[str, VariantRoute]
    async_config: dict | None = None

    def choose(self, target: str | None) -> VariantRoute:
        if target is not None:
            variant = self.variants.get(target)
            if variant is None:
                raise errors.ServiceError(
                    "ValidationError", f"Variant {target} not found for endpoint {self.endpoint}.")
            return variant
        if len(self.variants) == 1:  # the common endpoint of one variant: no list to build
            for only in self.variants.values():
                if only.weight > 0:
                    return only
        live = [v for v in self.variants.values() if v.weight > 0]
        if len(live) == 1:
            return live[0]
        if not live:
            raise errors.ServiceError("ValidationError", f"Endpoint {self.endpoint} has no variant with traffic.")
        return random.choices(live, weights=[v.weight for v in live])[0]


class Router:
    def __init__(self, metrics=None):
        self.routes: dict[tuple[str, str, str], Route] = {}
        self.metrics = metrics  # callable(route, variant, total_seconds, model_seconds, status) or None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        # Endpoints coming back after a restart (HostingService.recover): their event is set once
        # they are routed again, or failed. A call to one waits for it instead of "not found".
        self.restoring: dict[tuple[str, str, str], threading.Event] = {}

    def publish(self, route: Route) -> None:
        """Route calls by `route` from now on (a whole route swapped in: a call never sees half an
        update)."""
        self.routes[(route.account, route.region, route.endpoint)] = route

    def withdraw(self, account: str, region: str, endpoint: str) -> Route | None:
        return self.routes.pop((account, region, endpoint), None)

    @staticmethod
    def busy(instances: list[Instance]) -> bool:
        """Whether any of these instances has a call in flight (a drain waits until none has)."""
        return any(i.inflight for i in instances)

    def instance(self, instance_id: str) -> Instance | None:
        """The routed instance with this id, if any."""
        for route in list(self.routes.values()):
            for variant in route.variants.values():
                for instance in variant.instances:
                    if instance.id == instance_id:
                        return instance
        return None

    def wait_restored(self, account: str, region: str, endpoint: str) -> None:
        """Block while this endpoint is coming back after a restart; at once for any other. Never
        on the event loop (`_variant` waits in a thread)."""
        pending = self.restoring.get((account, region, endpoint))
        if pending is not None:
            pending.wait(RESTORE_WAIT_SECONDS)

    def find(self, account: str, region: str, endpoint: str) -> Route:
        route = self.routes.get((account, region, endpoint))
        if route is None:  # names are case-insensitive to create, but exact to invoke
            raise errors.ServiceError("ValidationError", f"Endpoint {endpoint} of account {account} not found.")
        return route

    # -- the loop every call runs on --------------------------------------------------------------

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The server's event loop: calls from other threads (`invoke_blocking`) are handed to it, so
        that every connection pool lives on one loop."""
        self.loop = loop

    def _loop_for_threads(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self.loop is None:  # no server around this router (a test, a tool): a loop of its own
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="router-loop", daemon=True).start()
                self.loop = loop
            return self.loop

    # -- invoking -------------------------------------------------------------------------------------

    async def invoke(self, account: str, region: str, params: dict) -> dict:
        """InvokeEndpoint: the whole answer as ContentType, InvokedProductionVariant, Body (bytes) and
        CustomAttributes (if any), or AWS's error."""
        route, variant = await self._variant(account, region, params)
        measured = _Measured(self.metrics, route, variant)
        try:
            _, reply = await self._forward(route, variant, params, measured, streaming=False)
            result = _answer(variant, reply, reply.data)
        except Exception as exc:
            measured.finish(exc)
            raise
        measured.finish(None)
        return result

    async def stream(self, account: str, region: str, params: dict) -> dict:
        """InvokeEndpointWithResponseStream: `invoke`'s answer once the container's headers are in,
        its Body an async iterator of the pieces as they come. The instance counts the call in flight
        until the Body is exhausted or closed (`aclose`)."""
        route, variant = await self._variant(account, region, params)
        measured = _Measured(self.metrics, route, variant)
        try:
            instance, reply = await self._forward(route, variant, params, measured, streaming=True)
        except Exception as exc:
            measured.finish(exc)
            raise
        measured.finish(None)
        return _answer(variant, reply, _StreamedBody(reply, instance))

    def invoke_blocking(self, account: str, region: str, params: dict) -> dict:
        """`invoke` from another thread (InvokeEndpointAsync's background work), run on the loop."""
        return asyncio.run_coroutine_threadsafe(self.invoke(account, region, params), self._loop_for_threads()).result()

    async def _variant(self, account: str, region: str, params: dict) -> tuple[Route, VariantRoute]:
        endpoint = params["EndpointName"]
        if (account, region, endpoint) in self.restoring:  # back soon: wait for it, off the loop
            await asyncio.to_thread(self.wait_restored, account, region, endpoint)
        route = self.find(account, region, endpoint)
        return route, route.choose(params.get("TargetVariant"))

    async def _forward(self, route: Route, variant: VariantRoute, params: dict, measured: _Measured,
                       streaming: bool) -> tuple[Instance, object]:
        """The answer of a healthy instance, another one tried when one cannot be reached. A streamed
        answer keeps its instance counted in flight (its `_StreamedBody` lets go of it)."""
        headers = _forwarded(tuple(map(params.get, _FORWARDED_NAMES)))
        tried: set[str] = set()
        while True:
            instance = variant.pick()
            if instance is None and variant.on_demand is not None:
                # a serverless variant's first instance: a container and its /ping take seconds
                instance = await asyncio.get_running_loop().run_in_executor(None, variant.on_demand)
            if instance is None or instance.id in tried:
                raise _unavailable(route, variant)
            instance.inflight += 1
            handed_over = False
            try:
                reply = await _through(route, variant, instance, params, headers, measured, streaming)
                handed_over = streaming
                return instance, reply
            except UpstreamConnectionError:
                instance.healthy = False  # the health monitor replaces it
                tried.add(instance.id)
            finally:
                if not handed_over:
                    instance.inflight -= 1



async def _through(route: Route, variant: VariantRoute, instance: Instance, params: dict, headers: tuple,
                   measured: _Measured, streaming: bool):
    """The call through the instance's containers in order (an inference pipeline feeds each answer
    to the next), or to the one TargetContainerHostname names; the last one's answer, streamed or
    whole. A container's error status is AWS's ModelError."""
    body = params.get("Body", b"")
    targets = _containers(variant, instance, params)
    last = len(targets) - 1
    for position, (hostname, transport) in enumerate(targets):
        request = Request("/invocations", body, headers, INVOKE_TIMEOUT)
        started = time.perf_counter()
        try:
            if streaming and position == last:
                reply = await transport.stream(request)
                if reply.status >= 300:
                    data = await reply.read()
                    raise _model_error(route, instance, reply.status, data.decode("utf-8", "replace"), hostname)
                return reply
            reply = await transport.send(request)
        except UpstreamTimeout:
            raise _timed_out(route, instance, hostname) from None
        except ValueError as exc:  # a header value that would inject a line
            raise errors.ServiceError("ValidationError", str(exc)) from None
        finally:
            measured.model += time.perf_counter() - started
        if reply.status >= 300:
            raise _model_error(route, instance, reply.status, reply.data.decode("utf-8", "replace"), hostname)
        if position < last:
            sent = dict(headers)
            sent["Content-Type"] = reply.header("content-type") or sent.get("Content-Type", "")
            body, headers = reply.data, tuple(sent.items())
    return reply


def _containers(variant: VariantRoute, instance: Instance, params: dict) -> list:
    """(hostname, transport) of the containers a call goes through, in order."""
    if not variant.direct:
        return instance.targets
    hostname = params.get("TargetContainerHostname")
    targets = [t for t in instance.targets if t[0] == hostname]
    if not targets:
        raise errors.ServiceError("ValidationError", "A multi-container endpoint with direct invocation "
                                  "needs TargetContainerHostname naming one of its containers.")
    return targets


class _StreamedBody:
    """A streamed answer's body: its pieces, and its instance let go of once it is exhausted, broken
    or closed."""

    def __init__(self, reply, instance: Instance):
        self._reply, self._instance = reply, instance

    def __aiter__(self) -> _StreamedBody:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._reply.__anext__()
        except BaseException:  # the end (StopAsyncIteration), a broken stream, or a cancelled reader
            self._release()
            raise

    async def aclose(self) -> None:
        try:
            await self._reply.aclose()
        finally:
            self._release()

    def _release(self) -> None:
        instance, self._instance = self._instance, None
        if instance is not None:
            instance.inflight -= 1


class _Measured:
    """Times a call (total, and the model's share in `model`) for the metrics, with the status AWS
    counts: a model's own 4xx/5xx by the model's status (ModelError carries it)."""

    __slots__ = ("metrics", "route", "variant", "started", "model")

    def __init__(self, metrics, route: Route, variant: VariantRoute):
        self.metrics, self.route, self.variant = metrics, route, variant
        self.model = 0.0
        self.started = time.perf_counter()

    def finish(self, err: BaseException | None) -> None:
        if self.metrics is None:
            return
        status = 200
        if isinstance(err, errors.ServiceError):
            status = err.fields.get("OriginalStatusCode") or (500 if err.code == "ModelError" else err.status)
        elif err is not None:
            status = 500
        self.metrics(self.route, self.variant.name, time.perf_counter() - self.started, self.model, status)


@functools.lru_cache(maxsize=256)
def _forwarded(values: tuple) -> tuple[tuple[str, str], ...]:
    """The headers a container gets, as (wire name, text) pairs, from the call's values of FORWARDED's
    members in order: a caller repeats them call after call, so each distinct set is built once (and
    the pairs, being hashable, let the client remember the request head built from them)."""
    return tuple((wire, str(value)) for wire, value in zip(FORWARDED.values(), values) if value is not None)


def _unavailable(route: Route, variant: VariantRoute) -> errors.ServiceError:
    return errors.ServiceError("ServiceUnavailable", f"No healthy instance of variant {variant.name} of endpoint "
                               f"{route.endpoint} could take the request. Try again.", status=503)


def _answer(variant: VariantRoute, reply, body) -> dict:
    result = {"ContentType": reply.header("content-type"), "InvokedProductionVariant": variant.name, "Body": body}
    attributes = reply.header("x-amzn-sagemaker-custom-attributes")
    if attributes:
        result["CustomAttributes"] = attributes
    return result


def _timed_out(route: Route, instance: Instance, hostname: str) -> errors.ServiceError:
    return _model_error(route, instance, 0, "Your invocation timed out while waiting for a response from "
                        f"container {hostname}. Review the latency metrics for each container in Amazon "
                        "CloudWatch, resolve the issue, and try again.", hostname)


def _model_error(route: Route, instance: Instance, status: int, message: str, hostname: str) -> errors.ServiceError:
    kind = "client" if 400 <= status < 500 else "server"
    console = (f"https://{route.region}.console.aws.amazon.com/cloudwatch/home?region={route.region}"
               f"#logEventViewer:group=/aws/sagemaker/Endpoints/{route.endpoint}")
    text = (f'Received {kind} error ({status}) from {hostname} with message "{message}". See {console} in '
            f"account {route.account} for more information.")
    return errors.ServiceError("ModelError", text, status=424, OriginalStatusCode=status,
                               OriginalMessage=message, LogStreamArn=instance.log_stream_arn)
