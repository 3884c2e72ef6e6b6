"""Routes as plain data, and a router kept in step with them: how a data-plane worker process
(emulator/data_plane_worker.py) routes the same calls as the main process.

The main process owns the fleets; it sends `route_state(route)` whenever a route is published and
None when it is withdrawn. The worker's `MirroredRoutes.apply` builds its own Route objects from
them, keeping each instance's object (its connection pools, its calls in flight) for as long as the
instance is routed. An instance that the worker cannot reach is marked unhealthy here at once and
reported to the main process, whose health monitor replaces it.
"""

from __future__ import annotations

from emulator.services.hosting.router import Instance, Route, Router, VariantRoute


def route_state(route: Route) -> dict:
    """What a worker needs to route calls as `route` does, as JSON-ready data."""
    return {
        "endpoint": route.endpoint, "arn": route.arn, "account": route.account, "region": route.region,
        "async_config": route.async_config,
        "variants": [{
            "name": v.name, "weight": v.weight, "direct": v.direct, "serverless": v.on_demand is not None,
            "instances": [{"id": i.id, "urls": [s.url for s in i.servers], "hostnames": list(i.hostnames),
                           "log_stream_arn": i.log_stream_arn, "healthy": i.healthy} for i in v.instances],
        } for v in route.variants.values()],
    }


class _Server:
    """A container's server as a worker knows it: only where it answers."""

    __slots__ = ("url",)

    def __init__(self, url: str):
        self.url = url


class MirroredInstance(Instance):
    """An instance routed by a worker: marking it unhealthy tells the main process too."""

    def __init__(self, instance_id: str, urls: list[str], hostnames: list[str], log_stream_arn: str, on_unhealthy):
        self._on_unhealthy = on_unhealthy
        self._healthy = True
        super().__init__(instance_id, [_Server(u) for u in urls], hostnames, log_stream_arn)

    @property
    def healthy(self) -> bool:
        return self._healthy

    @healthy.setter
    def healthy(self, value: bool) -> None:
        if self._healthy and not value:
            self._on_unhealthy(self.id)
        self._healthy = value

    def set_health(self, value: bool) -> None:
        """The main process's word on it: nothing to report back."""
        self._healthy = value


class MirroredRoutes:
    """The worker's side: applies route states to its own `router`."""

    def __init__(self, router: Router, on_unhealthy):
        self.router = router
        self.on_unhealthy = on_unhealthy  # callable(instance id)
        self.instances: dict[str, MirroredInstance] = {}
        self.serverless: set[tuple] = set()  # routes with a serverless variant: the main process serves them

    def apply(self, key: tuple, state: dict | None) -> None:
        if state is None:
            self.router.routes.pop(key, None)
            self.serverless.discard(key)
        else:
            variants = {v["name"]: self._variant(v) for v in state["variants"]}
            route = Route(state["endpoint"], state["arn"], state["account"], state["region"], variants,
                          async_config=state["async_config"])
            self.router.routes[key] = route
            if any(v["serverless"] for v in state["variants"]):
                self.serverless.add(key)
            else:
                self.serverless.discard(key)
        self._forget_unrouted()

    def servable(self, key: tuple) -> bool:
        return key in self.router.routes and key not in self.serverless

    def _variant(self, state: dict) -> VariantRoute:
        instances = []
        for data in state["instances"]:
            instance = self.instances.get(data["id"])
            if instance is None:
                instance = self.instances[data["id"]] = MirroredInstance(
                    data["id"], data["urls"], data["hostnames"], data["log_stream_arn"], self.on_unhealthy)
            instance.set_health(data["healthy"])
            instances.append(instance)
        return VariantRoute(state["name"], state["weight"], instances, direct=state["direct"])

    def _forget_unrouted(self) -> None:
        """Instances no route names any more: their pools close once their calls are answered
        (the main process drains the instance before stopping it)."""
        routed = {i.id for r in self.router.routes.values() for v in r.variants.values() for i in v.instances}
        for instance_id in [i for i in self.instances if i not in routed]:
            instance = self.instances[instance_id]
            if not instance.inflight:
                del self.instances[instance_id]
                instance.close()

    def inflight(self, ids: list[str]) -> int:
        return sum(self.instances[i].inflight for i in ids if i in self.instances)
