"""The router's loop path on its own (`Router.start`, callbacks from the container's connection to
the caller), against scripted containers: retry on another instance, the pipeline's hops, a
container's error as ModelError, and a call refused before anything is sent."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from emulator import errors
from emulator.services.hosting.router import Instance, Route, Router, VariantRoute
from tests.unit.test_upstream import Scripted, ok


class _Server:
    def __init__(self, url: str):
        self.url = url


def _closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def _router(*instances: Instance) -> tuple[Router, list]:
    samples = []
    router = Router(metrics=lambda route, variant, total, model, status: samples.append((variant, status)))
    router.publish(Route("ep", "arn:ep", "123456789012", "us-east-1",
                         {"AllTraffic": VariantRoute("AllTraffic", 1.0, list(instances))}))
    return router, samples


def _call(router: Router, **params):
    """Router.start on the router's loop; (result, error) as `done` got them, with how often."""
    outcomes, answered = [], threading.Event()

    def done(result, exc):
        outcomes.append((result, exc))
        answered.set()

    params = {"EndpointName": "ep", "Body": b"1,2", "ContentType": "text/csv", **params}
    loop = router._ensure_loop()
    asyncio.run_coroutine_threadsafe(_start(router, params, done), loop).result(5)
    assert answered.wait(5)
    return outcomes


async def _start(router, params, done):
    router.start("123456789012", "us-east-1", params, done)


def test_an_unreachable_instance_is_marked_unhealthy_and_the_call_goes_to_another():
    good = Scripted([ok(b"answer")])
    down = Instance("i-down", [_Server(_closed_port_url())], ["primary"])
    up = Instance("i-up", [_Server(good.url)], ["primary"])
    down.loop_inflight = -1  # picked first: least in flight
    router, samples = _router(down, up)
    [(result, exc)] = _call(router)
    assert exc is None and result["Body"] == b"answer" and result["InvokedProductionVariant"] == "AllTraffic"
    assert not down.healthy and up.healthy
    assert (down.loop_inflight, up.loop_inflight) == (-1, 0)  # both released
    assert samples == [("AllTraffic", 200)]


def test_a_pipeline_feeds_each_answer_to_the_next_container():
    first = Scripted([b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\nmid!"])
    second = Scripted([ok(b"last")])
    instance = Instance("i-1", [_Server(first.url), _Server(second.url)], ["one", "two"])
    router, _ = _router(instance)
    [(result, exc)] = _call(router)
    assert exc is None and result["Body"] == b"last" and result["ContentType"] == "text/csv"
    assert second.requests[0].endswith(b"\r\n\r\nmid!")
    assert b"\r\nContent-Type: application/json\r\n" in second.requests[0]


def test_a_container_error_is_a_model_error_counted_with_its_status():
    failing = Scripted([b"HTTP/1.1 503 Unavailable\r\nContent-Length: 4\r\n\r\nbusy"])
    router, samples = _router(Instance("i-1", [_Server(failing.url)], ["primary"], "arn:log"))
    [(result, exc)] = _call(router)
    assert result is None and isinstance(exc, errors.ServiceError) and exc.code == "ModelError"
    assert exc.fields["OriginalStatusCode"] == 503 and exc.fields["OriginalMessage"] == "busy"
    assert samples == [("AllTraffic", 503)]


def test_no_healthy_instance_is_refused_at_once_and_done_is_never_called():
    instance = Instance("i-1", [_Server(_closed_port_url())], ["primary"])
    instance.healthy = False
    router, samples = _router(instance)
    called = []
    loop = router._ensure_loop()

    async def start():
        router.start("123456789012", "us-east-1", {"EndpointName": "ep", "Body": b""},
                     lambda result, exc: called.append(exc))

    with pytest.raises(errors.ServiceError) as refused:
        asyncio.run_coroutine_threadsafe(start(), loop).result(5)
    assert refused.value.code == "ServiceUnavailable" and refused.value.status == 503
    assert called == [] and samples == [("AllTraffic", 503)] and instance.loop_inflight == 0
