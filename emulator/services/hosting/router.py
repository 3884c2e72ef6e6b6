"""The router: InvokeEndpoint picks a variant by weight (or TargetVariant), then a healthy instance
(least in-flight requests, ties rotating), forwards over a keep-alive pool, and turns the container's
answer into AWS's response or error.

Whole answers are awaited on the server's event loop (`start`, which InvokeEndpoint calls there with
a callback; `ainvoke` awaits it, and other threads hand their calls to it): a waiting call holds no
thread, and the loop's client is the cheapest path to a container. Streamed answers
(InvokeEndpointWithResponseStream) are read piece by piece by the worker thread that serves the
stream, over the threaded client.

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

from emulator import errors
from emulator.callbacks import Done, awaited
from emulator.services.upstream import Upstream, UpstreamTimeout
from emulator.services.upstream_async import AsyncUpstream

INVOKE_TIMEOUT = 60.0
FORWARDED = {
    "ContentType": "Content-Type", "Accept": "Accept",
    "CustomAttributes": "X-Amzn-SageMaker-Custom-Attributes", "TargetModel": "X-Amzn-SageMaker-Target-Model",
    "InferenceId": "X-Amzn-SageMaker-Inference-Id", "EnableExplanations": "X-Amzn-SageMaker-Enable-Explanations",
}
_FORWARDED_NAMES = tuple(FORWARDED)
RESTORE_WAIT_SECONDS = 600.0  # the longest a call waits for an endpoint coming back after a restart


class Instance:
    """One serving instance: its containers' servers, health and in-flight count."""

    def __init__(self, instance_id: str, servers: list, hostnames: list[str], log_stream_arn: str = ""):
        self.id = instance_id
        self.servers = servers  # ServerProcess per container, in pipeline order
        self.hostnames = hostnames
        self.log_stream_arn = log_stream_arn
        self.healthy = True
        self.threads_inflight = 0  # streamed calls, counted under the lock by the threads that read them
        self.loop_inflight = 0  # calls on the loop: only its thread counts them, no lock needed
        self._lock = threading.Lock()
        self.pools = [Upstream(s.url, maxsize=32) for s in servers]  # streamed answers, read by a thread
        self.targets = list(zip(hostnames, self.pools))  # (hostname, pool) per container, in pipeline order
        self._async_pools: list[AsyncUpstream] | None = None  # whole answers, on the router's loop
        self.loop_targets: list[tuple[str, AsyncUpstream]] | None = None  # (see `async_targets`)

    @property
    def inflight(self) -> int:
        return self.threads_inflight + self.loop_inflight

    def async_pools(self) -> list[AsyncUpstream]:
        if self._async_pools is None:
            self._async_pools = [AsyncUpstream(s.url, maxsize=32) for s in self.servers]
        return self._async_pools

    def async_targets(self) -> list[tuple[str, AsyncUpstream]]:
        """(hostname, loop pool) per container in pipeline order: the same list on every call."""
        if self.loop_targets is None:
            self.loop_targets = list(zip(self.hostnames, self.async_pools()))
        return self.loop_targets

    def acquire(self) -> None:
        with self._lock:
            self.threads_inflight += 1

    def release(self) -> None:
        with self._lock:
            self.threads_inflight -= 1

    def close(self) -> None:
        for pool in self.pools + (self._async_pools or []):
            pool.close()


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
        # Other processes serving the same routes (emulator/data_plane.py): each is told of every
        # change before `publish`/`withdraw` return, and counts its own calls in flight.
        self.mirrors: list = []
        # Endpoints coming back after a restart (HostingService.recover): their event is set once
        # they are routed again, or failed. A call to one waits for it instead of "not found".
        self.restoring: dict[tuple[str, str, str], threading.Event] = {}

    def publish(self, route: Route) -> None:
        """Route calls by `route` from now on, in this process and in every mirror; publishing the
        same route again passes on changes made in place (weights, instances)."""
        key = (route.account, route.region, route.endpoint)
        self.routes[key] = route
        for mirror in self.mirrors:
            mirror.changed(key, route)

    def withdraw(self, account: str, region: str, endpoint: str) -> Route | None:
        route = self.routes.pop((account, region, endpoint), None)
        for mirror in self.mirrors:
            mirror.changed((account, region, endpoint), None)
        return route

    def busy(self, instances: list[Instance]) -> bool:
        """Whether any of these instances has a call in flight here or in a mirror."""
        if any(i.inflight for i in instances):
            return True
        ids = [i.id for i in instances]
        return any(mirror.inflight(ids) for mirror in self.mirrors)

    def instance(self, instance_id: str) -> Instance | None:
        """The routed instance with this id, if any."""
        for route in list(self.routes.values()):
            for variant in route.variants.values():
                for instance in variant.instances:
                    if instance.id == instance_id:
                        return instance
        return None

    def wait_restored(self, account: str, region: str, endpoint: str) -> None:
        """Block while this endpoint is coming back after a restart; at once for any other (never
        on the event loop: `start` hands such a call to a thread)."""
        pending = self.restoring.get((account, region, endpoint))
        if pending is not None:
            pending.wait(RESTORE_WAIT_SECONDS)

    def find(self, account: str, region: str, endpoint: str) -> Route:
        route = self.routes.get((account, region, endpoint))
        if route is None and (account, region, endpoint) in self.restoring:
            self.wait_restored(account, region, endpoint)
            route = self.routes.get((account, region, endpoint))
        if route is None:  # names are case-insensitive to create, but exact to invoke
            raise errors.ServiceError("ValidationError", f"Endpoint {endpoint} of account {account} not found.")
        return route

    # -- the loop that InvokeEndpoint runs on ------------------------------------------------------

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The server's event loop: answers are awaited there, and callers on other threads hand
        their calls to it (`invoke`), so every connection pool lives on one loop."""
        self.loop = loop

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self.loop is None:  # no server around this router (a test, a tool): a loop of its own
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="router-loop", daemon=True).start()
                self.loop = loop
            return self.loop

    # -- invoking -------------------------------------------------------------------------------------

    def invoke(self, account: str, region: str, params: dict, stream: bool = False) -> dict:
        """Forward one call from a worker thread; with `stream`, the answer's Body is an iterator of
        the container's chunks (read by that thread), otherwise the call runs on the loop."""
        if not stream:
            return asyncio.run_coroutine_threadsafe(
                self.ainvoke(account, region, params), self._ensure_loop()).result()
        route, variant, headers = self._prepare(account, region, params)
        with self._measured(route, variant) as timing:
            tried: set[str] = set()
            while True:
                instance = variant.pick()
                if instance is None and variant.on_demand is not None:
                    instance = variant.on_demand()
                instance = _unless_tried(instance, route, variant, tried)
                instance.acquire()
                handed_over = False  # a streamed answer releases the instance when its last chunk is read
                try:
                    result = self._call_streamed(route, variant, instance, params, headers, timing)
                    handed_over = True
                    return result
                except ConnectionError:  # cannot connect, or the connection broke (UpstreamConnectionError)
                    instance.healthy = False  # the health monitor replaces it; retry elsewhere
                finally:
                    if not handed_over:
                        instance.release()

    def start(self, account: str, region: str, params: dict, done: Done) -> None:
        """Forward one call on the event loop; `done(answer, None)` or `done(None, error)` follows
        once, after this returns. An error found before anything is sent (no such endpoint, variant
        or healthy instance) raises here instead, and `done` is never called."""
        if (account, region, params["EndpointName"]) in self.restoring:  # back soon: wait off the loop
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._start_once_restored, args=(loop, account, region, params, done),
                             daemon=True).start()
            return
        route = self.find(account, region, params["EndpointName"])
        variant = route.choose(params.get("TargetVariant"))
        call = _Call(self.metrics, route, variant, params, _forwarded(tuple(map(params.get, _FORWARDED_NAMES))),
                     done)
        try:
            call.next_instance()
        except Exception as exc:  # nothing sent (no healthy instance, no such container): counted, raised
            call.abandon(exc)
            raise

    def _start_once_restored(self, loop, account: str, region: str, params: dict, done: Done) -> None:
        self.wait_restored(account, region, params["EndpointName"])

        def start_or_fail() -> None:
            try:
                self.start(account, region, params, done)
            except Exception as exc:
                done(None, exc)

        loop.call_soon_threadsafe(start_or_fail)

    async def ainvoke(self, account: str, region: str, params: dict) -> dict:
        """`start`, awaited: the whole answer."""
        return await awaited(self.start, account, region, params)

    # -- the steps both paths share -------------------------------------------------------------------

    def _prepare(self, account: str, region: str, params: dict) -> tuple[Route, VariantRoute, tuple]:
        route = self.find(account, region, params["EndpointName"])
        variant = route.choose(params.get("TargetVariant"))
        return route, variant, _forwarded(tuple(map(params.get, _FORWARDED_NAMES)))

    def _measured(self, route: Route, variant: VariantRoute) -> _Measured:
        return _Measured(self.metrics, route, variant)

    @staticmethod
    def _containers(variant: VariantRoute, instance: Instance, params: dict, targets: list) -> list:
        """(hostname, pool) of the containers a call goes through, in order."""
        if variant.direct:
            hostname = params.get("TargetContainerHostname")
            targets = [t for t in targets if t[0] == hostname]
            if not targets:
                raise errors.ServiceError("ValidationError", "A multi-container endpoint with direct invocation "
                                          "needs TargetContainerHostname naming one of its containers.")
        return targets

    def _call_streamed(self, route, variant, instance: Instance, params: dict, headers: tuple,
                       timing: _Measured) -> dict:
        body = params.get("Body", b"")
        targets = self._containers(variant, instance, params, instance.targets)
        for position, (hostname, pool) in enumerate(targets):
            last = position + 1 == len(targets)
            started = time.perf_counter()
            try:
                reply = pool.post("/invocations", body, headers, INVOKE_TIMEOUT, stream=last)
            except UpstreamTimeout:
                raise _timed_out(route, instance, hostname) from None
            finally:
                timing.model += time.perf_counter() - started
            if reply.status >= 300 or not last:
                body, headers = _next_hop(route, instance, hostname, reply, headers)
        return _answer(variant, reply, _chunks(reply, instance))


class _Measured:
    """Times a call (total, and the model's share in `model`) for the metrics, with the status AWS
    counts: a model's own 4xx/5xx by the model's status (ModelError carries it). A plain class: a
    generator-based context manager costs more than the rest of the bookkeeping on every call."""

    __slots__ = ("metrics", "route", "variant", "started", "model")

    def __init__(self, metrics, route: Route, variant: VariantRoute):
        self.metrics, self.route, self.variant = metrics, route, variant
        self.model = 0.0
        self.started = time.perf_counter()

    def __enter__(self) -> _Measured:
        return self

    def __exit__(self, kind, err, traceback) -> None:
        self.finish(err)

    def finish(self, err: BaseException | None) -> None:
        if self.metrics is None:
            return
        status = 200
        if isinstance(err, errors.ServiceError):
            status = err.fields.get("OriginalStatusCode") or (500 if err.code == "ModelError" else err.status)
        elif err is not None:
            status = 500
        self.metrics(self.route, self.variant.name, time.perf_counter() - self.started, self.model, status)


class _Call(_Measured):
    """One InvokeEndpoint on the loop, from the first container to the answer: an instance picked
    (another one if it cannot be reached), each container of the inference pipeline in turn, the
    metrics, then `done`. Callbacks from the connection rather than a coroutine: under load, a task
    and a future per call cost as much CPU as the rest of the forward."""

    __slots__ = ("params", "headers", "done", "tried", "instance", "targets", "position", "body", "sent_at")

    def __init__(self, metrics, route: Route, variant: VariantRoute, params: dict, headers: tuple, done: Done):
        _Measured.__init__(self, metrics, route, variant)
        self.params, self.headers, self.done = params, headers, done
        self.tried: set[str] | None = None  # the instances tried, once one has failed
        self.instance: Instance | None = None

    def next_instance(self) -> None:
        """Send to a healthy instance not tried yet (a serverless one started first, off the loop).
        Raises when there is none."""
        instance = self.variant.pick()
        if instance is None and self.variant.on_demand is not None:
            # starting a serverless instance blocks (a container, its /ping): not on the loop
            started = asyncio.get_running_loop().run_in_executor(None, self.variant.on_demand)
            started.add_done_callback(self._started)
            return
        self._send_to(instance)

    def _started(self, started: asyncio.Future) -> None:
        try:
            self._send_to(started.result())
        except Exception as exc:
            self._finish(None, exc)

    def _send_to(self, instance: Instance | None) -> None:
        if instance is None or (self.tried is not None and instance.id in self.tried):
            raise _unavailable(self.route, self.variant)
        instance.loop_inflight += 1
        self.instance = instance
        targets = instance.loop_targets or instance.async_targets()
        if self.variant.direct:
            targets = Router._containers(self.variant, instance, self.params, targets)
        self.targets, self.position, self.body = targets, 0, self.params.get("Body", b"")
        self._send()

    def _send(self) -> None:
        """To the container at `position` (its pool's `start`): the answer comes to `_answered`."""
        self.sent_at = time.perf_counter()
        self.targets[self.position][1].start("/invocations", self.body, self.headers, INVOKE_TIMEOUT, self._answered)

    def _answered(self, reply, exc: Exception | None) -> None:
        self.model += time.perf_counter() - self.sent_at
        try:
            if exc is not None:
                raise exc
            position = self.position + 1
            if reply.status < 300 and position == len(self.targets):
                result = _answer(self.variant, reply, reply.data)
            else:  # a container's error, or the next container of a pipeline to ask
                self.body, self.headers = _next_hop(self.route, self.instance, self.targets[self.position][0],
                                                    reply, self.headers)
                self.position = position
                self._send()
                return
        except UpstreamTimeout:
            self._finish(None, _timed_out(self.route, self.instance, self.targets[self.position][0]))
        except ConnectionError:  # cannot connect, or the connection broke: another instance, if any
            self.instance.healthy = False  # the health monitor replaces it
            if self.tried is None:
                self.tried = set()
            self.tried.add(self.instance.id)
            self._release()
            try:
                self.next_instance()
            except Exception as exc:
                self._finish(None, exc)
        except Exception as exc:
            self._finish(None, exc)
        else:
            self._release()
            self.finish(None)
            self.done(result, None)

    def _release(self) -> None:
        instance, self.instance = self.instance, None
        if instance is not None:
            instance.loop_inflight -= 1

    def abandon(self, exc: Exception) -> None:
        """Nothing more will be sent: the instance is free again, the failure counted."""
        self._release()
        self.finish(exc)

    def _finish(self, result: dict | None, exc: Exception | None) -> None:
        self.abandon(exc)
        self.done(result, exc)


@functools.lru_cache(maxsize=256)
def _forwarded(values: tuple) -> tuple[tuple[str, str], ...]:
    """The headers a container gets, as (wire name, text) pairs, from the call's values of FORWARDED's
    members in order: a caller repeats them call after call, so each distinct set is built once (and
    the pairs, being hashable, let the client remember the request head built from them)."""
    return tuple((wire, str(value)) for wire, value in zip(FORWARDED.values(), values) if value is not None)


def _unless_tried(instance: Instance | None, route: Route, variant: VariantRoute, tried: set[str]) -> Instance:
    if instance is None or instance.id in tried:
        raise _unavailable(route, variant)
    tried.add(instance.id)
    return instance


def _unavailable(route: Route, variant: VariantRoute) -> errors.ServiceError:
    return errors.ServiceError("ServiceUnavailable", f"No healthy instance of variant {variant.name} of endpoint "
                               f"{route.endpoint} could take the request. Try again.", status=503)


def _next_hop(route: Route, instance: Instance, hostname: str, reply, headers: tuple) -> tuple[bytes, tuple]:
    """A container's error becomes ModelError; an answer becomes the next container's request (an
    inference pipeline feeds each answer to the next container)."""
    if reply.status >= 300:
        raise _model_error(route, instance, reply.status, reply.data.decode("utf-8", "replace"), hostname)
    sent = dict(headers)
    sent["Content-Type"] = reply.header("content-type") or sent.get("Content-Type", "")
    return reply.data, tuple(sent.items())


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


def _chunks(reply, instance: Instance):
    try:
        yield from reply.stream(64 * 1024)
    finally:
        reply.release_conn()
        instance.release()


def _model_error(route: Route, instance: Instance, status: int, message: str, hostname: str) -> errors.ServiceError:
    kind = "client" if 400 <= status < 500 else "server"
    console = (f"https://{route.region}.console.aws.amazon.com/cloudwatch/home?region={route.region}"
               f"#logEventViewer:group=/aws/sagemaker/Endpoints/{route.endpoint}")
    text = (f'Received {kind} error ({status}) from {hostname} with message "{message}". See {console} in '
            f"account {route.account} for more information.")
    return errors.ServiceError("ModelError", text, status=424, OriginalStatusCode=status,
                               OriginalMessage=message, LogStreamArn=instance.log_stream_arn)
