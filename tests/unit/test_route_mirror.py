"""Routes mirrored into a data-plane worker (emulator/services/route_mirror.py): what the worker
routes by is what the main process published, instances keep their objects (and connection pools)
from one change to the next, and an instance the worker cannot reach is reported."""

from __future__ import annotations

import json

from emulator.services.hosting.route_mirror import MirroredRoutes, route_state
from emulator.services.hosting.router import Instance, Route, Router, VariantRoute

KEY = ("123456789012", "us-east-1", "ep")


class _Server:
    def __init__(self, url):
        self.url = url


def _route(weights: dict[str, float], instances: dict[str, list[Instance]], serverless=()) -> Route:
    variants = {}
    for name, weight in weights.items():
        variants[name] = VariantRoute(name, weight, instances.get(name, []))
        if name in serverless:
            variants[name].on_demand = lambda: None
    return Route("ep", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep", *KEY[:2], variants,
                 async_config={"OutputConfig": {"S3OutputPath": "s3://b/out"}})


def _instance(instance_id: str, port: int) -> Instance:
    return Instance(instance_id, [_Server(f"http://127.0.0.1:{port}")], ["primary"], f"arn:stream/{instance_id}")


def test_a_mirrored_route_routes_as_the_published_one():
    reported = []
    mirror = MirroredRoutes(Router(), reported.append)
    state = json.loads(json.dumps(route_state(_route({"A": 0.0, "B": 1.0}, {"A": [_instance("i-a", 9001)],
                                                                            "B": [_instance("i-b", 9002)]}))))
    mirror.apply(KEY, state)  # as it comes over the wire: JSON
    route = mirror.router.find(*KEY)
    assert route.arn.endswith("endpoint/ep") and route.async_config == {"OutputConfig": {"S3OutputPath": "s3://b/out"}}
    assert {route.choose(None).name for _ in range(50)} == {"B"}
    picked = route.choose("A").pick()
    assert (picked.id, picked.servers[0].url, picked.hostnames, picked.log_stream_arn) == (
        "i-a", "http://127.0.0.1:9001", ["primary"], "arn:stream/i-a")
    assert mirror.servable(KEY)

    picked.healthy = False  # the worker could not reach it: the main process hears of it, once
    picked.healthy = False
    assert reported == ["i-a"] and route.choose("A").pick() is None


def test_instances_keep_their_objects_until_no_route_names_them():
    mirror = MirroredRoutes(Router(), lambda _: None)
    mirror.apply(KEY, route_state(_route({"V": 1.0}, {"V": [_instance("i-1", 9001)]})))
    first = mirror.router.find(*KEY).variants["V"].instances[0]
    first.inflight = 1
    mirror.apply(KEY, route_state(_route({"V": 1.0}, {"V": [_instance("i-1", 9001), _instance("i-2", 9002)]})))
    assert mirror.router.find(*KEY).variants["V"].instances[0] is first  # its pools and counts stay
    assert mirror.inflight(["i-1", "i-2"]) == 1

    mirror.apply(KEY, route_state(_route({"V": 1.0}, {"V": [_instance("i-2", 9002)]})))
    assert mirror.inflight(["i-1"]) == 1  # dropped from the route, still answering: still counted
    first.inflight = 0
    mirror.apply(KEY, None)
    assert mirror.inflight(["i-1", "i-2"]) == 0 and mirror.instances == {}
    assert not mirror.servable(KEY)


def test_a_serverless_variant_is_left_to_the_main_process():
    mirror = MirroredRoutes(Router(), lambda _: None)
    mirror.apply(KEY, route_state(_route({"S": 1.0}, {}, serverless={"S"})))
    assert KEY in mirror.router.routes and not mirror.servable(KEY)
    mirror.apply(KEY, route_state(_route({"V": 1.0}, {"V": [_instance("i-1", 9001)]})))
    assert mirror.servable(KEY)


def test_the_main_router_tells_its_mirrors_before_publish_returns():
    told = []

    class Mirror:
        def changed(self, key, route):
            told.append((key, route_state(route) if route is not None else None))

        def inflight(self, ids):
            return 2 if "i-1" in ids else 0

    router = Router()
    router.mirrors.append(Mirror())
    instance = _instance("i-1", 9001)
    router.publish(_route({"V": 1.0}, {"V": [instance]}))
    assert told[-1][0] == KEY and told[-1][1]["variants"][0]["instances"][0]["id"] == "i-1"
    assert router.busy([instance])  # the mirror's calls count
    assert not router.busy([_instance("i-9", 9009)])
    assert router.instance("i-1") is instance
    router.withdraw(*KEY)
    assert told[-1] == (KEY, None)
