"""The router: InvokeEndpoint picks a variant by weight (or TargetVariant), then a healthy instance
(least in-flight requests, ties rotating), forwards over a keep-alive pool, and turns the container's
answer into AWS's response or error.

Routes live in memory and are swapped whole when a fleet changes, so a call never reads SQLite and
never sees half an update.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, field

from emulator import errors
from emulator.services.upstream import Upstream, UpstreamTimeout

INVOKE_TIMEOUT = 60.0
FORWARDED = {
    "ContentType": "Content-Type", "Accept": "Accept",
    "CustomAttributes": "X-Amzn-SageMaker-Custom-Attributes", "TargetModel": "X-Amzn-SageMaker-Target-Model",
    "InferenceId": "X-Amzn-SageMaker-Inference-Id", "EnableExplanations": "X-Amzn-SageMaker-Enable-Explanations",
}


class Instance:
    """One serving instance: its containers' servers, health and in-flight count."""

    def __init__(self, instance_id: str, servers: list, hostnames: list[str], log_stream_arn: str = ""):
        self.id = instance_id
        self.servers = servers  # ServerProcess per container, in pipeline order
        self.hostnames = hostnames
        self.log_stream_arn = log_stream_arn
        self.healthy = True
        self.inflight = 0
        self._lock = threading.Lock()
        self.pools = [Upstream(s.url, maxsize=32) for s in servers]

    def acquire(self) -> None:
        with self._lock:
            self.inflight += 1

    def release(self) -> None:
        with self._lock:
            self.inflight -= 1

    def close(self) -> None:
        for pool in self.pools:
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
        healthy = [i for i in self.instances if i.healthy]
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
        live = [v for v in self.variants.values() if v.weight > 0]
        if not live:
            raise errors.ServiceError("ValidationError", f"Endpoint {self.endpoint} has no variant with traffic.")
        return random.choices(live, weights=[v.weight for v in live])[0]


class Router:
    def __init__(self, metrics=None):
        self.routes: dict[tuple[str, str, str], Route] = {}
        self.metrics = metrics  # callable(route, variant, total_seconds, model_seconds, status) or None

    def publish(self, route: Route) -> None:
        self.routes[(route.account, route.region, route.endpoint)] = route

    def withdraw(self, account: str, region: str, endpoint: str) -> Route | None:
        return self.routes.pop((account, region, endpoint), None)

    def find(self, account: str, region: str, endpoint: str) -> Route:
        route = self.routes.get((account, region, endpoint))
        if route is None:  # names are case-insensitive to create, but exact to invoke
            raise errors.ServiceError("ValidationError", f"Endpoint {endpoint} of account {account} not found.")
        return route

    def invoke(self, account: str, region: str, params: dict, stream: bool = False) -> dict:
        """Forward one call; with `stream`, the answer's Body is an iterator of the container's chunks."""
        route = self.find(account, region, params["EndpointName"])
        variant = route.choose(params.get("TargetVariant"))
        headers = {wire: str(params[name]) for name, wire in FORWARDED.items() if params.get(name) is not None}
        started = time.perf_counter()
        timing = {"model": 0.0}
        status = 200
        try:
            return self._forward(route, variant, params, headers, timing, stream)
        except errors.ServiceError as err:
            # AWS counts a model's own 4xx/5xx (ModelError carries it) by the model's status
            status = err.fields.get("OriginalStatusCode") or (500 if err.code == "ModelError" else err.status)
            raise
        finally:
            if self.metrics is not None:
                self.metrics(route, variant.name, time.perf_counter() - started, timing["model"], status)

    def _forward(self, route: Route, variant: VariantRoute, params: dict, headers: dict, timing: dict,
                 stream: bool) -> dict:
        tried: set[str] = set()
        while True:
            instance = variant.pick()
            if instance is None and variant.on_demand is not None:
                instance = variant.on_demand()
            if instance is None or instance.id in tried:
                raise errors.ServiceError(
                    "ServiceUnavailable", f"No healthy instance of variant {variant.name} of endpoint "
                    f"{route.endpoint} could take the request. Try again.", status=503)
            tried.add(instance.id)
            instance.acquire()
            handed_over = False  # a streamed answer releases the instance when its last chunk is read
            try:
                result = self._call(route, variant, instance, params, headers, timing, stream)
                handed_over = stream
                return result
            except ConnectionError:  # cannot connect, or the connection broke (UpstreamConnectionError)
                instance.healthy = False  # the health monitor replaces it; retry elsewhere
            finally:
                if not handed_over:
                    instance.release()

    def _call(self, route, variant, instance: Instance, params: dict, headers: dict, timing: dict,
              stream: bool) -> dict:
        body = params.get("Body", b"")
        pools = list(zip(instance.hostnames, instance.pools))
        if variant.direct:
            hostname = params.get("TargetContainerHostname")
            pools = [p for p in pools if p[0] == hostname]
            if not pools:
                raise errors.ServiceError("ValidationError", "A multi-container endpoint with direct invocation "
                                          "needs TargetContainerHostname naming one of its containers.")
        for position, (hostname, pool) in enumerate(pools):
            last = position + 1 == len(pools)
            started = time.perf_counter()
            try:
                reply = pool.post("/invocations", body, headers, INVOKE_TIMEOUT, stream=stream and last)
            except UpstreamTimeout:
                raise _model_error(route, instance, 0, "Your invocation timed out while waiting for a response "
                                   f"from container {hostname}. Review the latency metrics for each container in "
                                   "Amazon CloudWatch, resolve the issue, and try again.", hostname) from None
            finally:
                timing["model"] += time.perf_counter() - started
            if reply.status >= 300:
                message = reply.data.decode("utf-8", "replace")
                raise _model_error(route, instance, reply.status, message, hostname)
            if not last:  # an inference pipeline feeds each answer to the next container
                body = reply.data
                headers = {**headers, "Content-Type": reply.headers.get("Content-Type", headers.get("Content-Type", ""))}
        result = {"ContentType": reply.headers.get("Content-Type"), "InvokedProductionVariant": variant.name}
        result["Body"] = _chunks(reply, instance) if stream else reply.data
        if reply.headers.get("X-Amzn-SageMaker-Custom-Attributes"):
            result["CustomAttributes"] = reply.headers["X-Amzn-SageMaker-Custom-Attributes"]
        return result


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
