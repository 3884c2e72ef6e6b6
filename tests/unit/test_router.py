"""The router's rules on their own, over fake containers (emulator/upstream/fake.py): variants by
weight and TargetVariant, instances by health and calls in flight, retry on another instance,
inference pipelines and direct invocation, AWS's errors, streamed answers that hold their instance
until they end, serverless instances started off the loop, and calls from other threads."""

from __future__ import annotations

import asyncio
import collections
import threading

import pytest

from emulator import errors
from emulator.services.hosting.router import Instance, Route, Router, VariantRoute
from emulator.upstream import UpstreamConnectionError, UpstreamTimeout
from emulator.upstream.fake import FakeTransport, echo

ACCOUNT, REGION = "123456789012", "us-east-1"


class _Server:
    def __init__(self, url: str):
        self.url = url


def instance(instance_id: str, *transports: FakeTransport, hostnames=None) -> Instance:
    """An instance whose containers are these fake transports, in order."""
    by_url = {f"fake://{instance_id}/{n}": t for n, t in enumerate(transports)}
    return Instance(instance_id, [_Server(url) for url in by_url], hostnames or ["primary"],
                    f"arn:log/{instance_id}", connect=by_url.__getitem__)


def router(variants: dict[str, VariantRoute]) -> tuple[Router, list]:
    samples = []
    routed = Router(metrics=lambda route, variant, total, model, status: samples.append((variant, status)))
    routed.publish(Route("ep", "arn:ep", ACCOUNT, REGION, variants))
    return routed, samples


def one_variant(*instances: Instance, **kwargs) -> dict[str, VariantRoute]:
    return {"AllTraffic": VariantRoute("AllTraffic", 1.0, list(instances), **kwargs)}


def params(**extra) -> dict:
    return {"EndpointName": "ep", "Body": b"1,2", "ContentType": "text/csv", **extra}


def run(coroutine):
    return asyncio.run(coroutine)


def refusing(request):
    raise UpstreamConnectionError("cannot connect")


def test_an_answer_carries_the_container_headers_and_only_the_forwarded_ones_reach_it():
    container = FakeTransport(lambda r: (200, {"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "a=1"},
                                         b"answer"))
    routed, samples = router(one_variant(instance("i-1", container)))
    answer = run(routed.invoke(ACCOUNT, REGION, params(Accept="text/csv", InferenceId="id-1", TargetVariant=None)))
    assert answer == {"ContentType": "text/csv", "InvokedProductionVariant": "AllTraffic", "Body": b"answer",
                      "CustomAttributes": "a=1"}
    [request] = container.requests
    assert (request.path, request.body) == ("/invocations", b"1,2")
    assert request.headers == (("Content-Type", "text/csv"), ("Accept", "text/csv"),
                               ("X-Amzn-SageMaker-Inference-Id", "id-1"))
    assert samples == [("AllTraffic", 200)]


def test_an_unreachable_instance_is_marked_unhealthy_and_the_call_goes_to_another():
    down, up = instance("i-down", FakeTransport(refusing)), instance("i-up", FakeTransport())
    down.inflight = -1  # picked first: fewest calls in flight
    routed, samples = router(one_variant(down, up))
    assert run(routed.invoke(ACCOUNT, REGION, params()))["Body"] == b"1,2"
    assert not down.healthy and up.healthy
    assert (down.inflight, up.inflight) == (-1, 0)  # both let go of
    assert samples == [("AllTraffic", 200)]


def test_when_no_instance_can_be_reached_the_call_is_service_unavailable():
    first, second = instance("i-1", FakeTransport(refusing)), instance("i-2", FakeTransport(refusing))
    routed, samples = router(one_variant(first, second))
    with pytest.raises(errors.ServiceError) as refused:
        run(routed.invoke(ACCOUNT, REGION, params()))
    assert (refused.value.code, refused.value.status) == ("ServiceUnavailable", 503)
    assert not first.healthy and not second.healthy and samples == [("AllTraffic", 503)]
    with pytest.raises(errors.ServiceError, match="No healthy instance"):  # and at once from now on
        run(routed.invoke(ACCOUNT, REGION, params()))


def test_a_container_error_is_a_model_error_counted_with_its_status():
    failing = FakeTransport(lambda r: (503, {}, b"busy"))
    routed, samples = router(one_variant(instance("i-1", failing)))
    with pytest.raises(errors.ServiceError) as failed:
        run(routed.invoke(ACCOUNT, REGION, params()))
    assert (failed.value.code, failed.value.status) == ("ModelError", 424)
    assert failed.value.fields["OriginalStatusCode"] == 503 and failed.value.fields["OriginalMessage"] == "busy"
    assert failed.value.fields["LogStreamArn"] == "arn:log/i-1"
    assert 'Received server error (503) from primary with message "busy"' in failed.value.message
    assert samples == [("AllTraffic", 503)]


def test_a_silent_container_is_a_model_error_and_its_instance_stays_healthy():
    def silent(request):
        raise UpstreamTimeout("no answer")

    slow = instance("i-1", FakeTransport(silent))
    routed, samples = router(one_variant(slow))
    with pytest.raises(errors.ServiceError, match="timed out while waiting for a response from container primary"):
        run(routed.invoke(ACCOUNT, REGION, params()))
    assert slow.healthy and slow.inflight == 0 and samples == [("AllTraffic", 500)]


def test_a_pipeline_feeds_each_answer_to_the_next_container():
    first = FakeTransport(lambda r: (200, {"Content-Type": "application/json"}, b"mid!"))
    second = FakeTransport()
    routed, _ = router(one_variant(instance("i-1", first, second, hostnames=["one", "two"])))
    answer = run(routed.invoke(ACCOUNT, REGION, params()))
    assert answer["Body"] == b"mid!" and answer["ContentType"] == "application/json"
    assert second.requests[0].body == b"mid!" and ("Content-Type", "application/json") in second.requests[0].headers


def test_direct_invocation_goes_to_the_named_container_only():
    a, b = FakeTransport(), FakeTransport()
    routed, _ = router(one_variant(instance("i-1", a, b, hostnames=["a", "b"]), direct=True))
    assert run(routed.invoke(ACCOUNT, REGION, params(TargetContainerHostname="b")))["Body"] == b"1,2"
    assert (len(a.requests), len(b.requests)) == (0, 1)
    with pytest.raises(errors.ServiceError, match="needs TargetContainerHostname"):
        run(routed.invoke(ACCOUNT, REGION, params(TargetContainerHostname="c")))


def test_variants_by_weight_and_target_variant():
    variants = {"A": VariantRoute("A", 3.0, [instance("i-a", FakeTransport())]),
                "B": VariantRoute("B", 1.0, [instance("i-b", FakeTransport())]),
                "Off": VariantRoute("Off", 0.0, [instance("i-o", FakeTransport())])}
    routed, _ = router(variants)

    async def calls(n, **extra):
        return collections.Counter([(await routed.invoke(ACCOUNT, REGION, params(**extra)))["InvokedProductionVariant"]
                                    for _ in range(n)])

    counts = run(calls(2000))
    assert set(counts) == {"A", "B"} and 0.70 <= counts["A"] / 2000 <= 0.80
    assert run(calls(20, TargetVariant="Off")) == {"Off": 20}
    with pytest.raises(errors.ServiceError, match="Variant Z not found"):
        run(routed.invoke(ACCOUNT, REGION, params(TargetVariant="Z")))
    with pytest.raises(errors.ServiceError, match="Endpoint other of account"):
        run(routed.invoke(ACCOUNT, REGION, params(EndpointName="other")))


def test_a_call_goes_to_the_instance_with_fewest_calls_in_flight_and_busy_says_so():
    release = None

    async def held(request):
        await release.wait()
        return echo(request)

    first, second = instance("i-1", FakeTransport(held)), instance("i-2", FakeTransport(held))
    routed, _ = router(one_variant(first, second))

    async def go():
        nonlocal release
        release = asyncio.Event()
        calls = [asyncio.create_task(routed.invoke(ACCOUNT, REGION, params())) for _ in range(4)]
        await asyncio.sleep(0.01)
        during = (first.inflight, second.inflight, routed.busy([first]), routed.busy([second]))
        release.set()
        await asyncio.gather(*calls)
        return during, routed.busy([first, second])

    assert run(go()) == ((2, 2, True, True), False)


def test_a_streamed_answer_holds_its_instance_until_it_is_read_or_closed():
    container = FakeTransport(lambda r: (200, {"Content-Type": "text/plain"}, [b"one", b"two"]))
    held = instance("i-1", container)
    routed, samples = router(one_variant(held))

    async def go():
        answer = await routed.stream(ACCOUNT, REGION, params())
        during = held.inflight
        pieces = [piece async for piece in answer["Body"]]
        after_reading = held.inflight
        closed = await routed.stream(ACCOUNT, REGION, params())
        await closed["Body"].__anext__()
        await closed["Body"].aclose()
        return answer["ContentType"], during, pieces, after_reading, held.inflight

    assert run(go()) == ("text/plain", 1, [b"one", b"two"], 0, 0)
    assert samples == [("AllTraffic", 200)] * 2


def test_a_streamed_container_error_is_a_model_error_and_frees_the_instance():
    held = instance("i-1", FakeTransport(lambda r: (400, {}, [b"bad ", b"input"])))
    routed, samples = router(one_variant(held))
    with pytest.raises(errors.ServiceError) as failed:
        run(routed.stream(ACCOUNT, REGION, params()))
    assert failed.value.fields["OriginalMessage"] == "bad input" and held.inflight == 0
    assert samples == [("AllTraffic", 400)]


def test_a_serverless_variant_starts_its_instance_off_the_loop_on_first_call():
    started_on = []
    variant = VariantRoute("sls", 1.0, [])

    def on_demand():
        started_on.append(threading.current_thread())
        variant.instances.append(instance("i-sls", FakeTransport()))
        return variant.instances[0]

    variant.on_demand = on_demand
    routed, _ = router({"sls": variant})

    async def twice():
        loop_thread = threading.current_thread()
        first = await routed.invoke(ACCOUNT, REGION, params())
        second = await routed.invoke(ACCOUNT, REGION, params())
        return loop_thread, first["InvokedProductionVariant"], second["InvokedProductionVariant"]

    loop_thread, *answers = run(twice())
    assert answers == ["sls", "sls"] and len(started_on) == 1 and started_on[0] is not loop_thread


def test_invoke_blocking_runs_the_call_on_the_attached_loop():
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    seen = []

    def on_the_loop(request):
        seen.append(asyncio.get_running_loop())
        return echo(request)

    routed, _ = router(one_variant(instance("i-1", FakeTransport(on_the_loop))))
    routed.attach_loop(loop)
    try:
        assert routed.invoke_blocking(ACCOUNT, REGION, params())["Body"] == b"1,2"
        with pytest.raises(errors.ServiceError, match="Variant Z not found"):
            routed.invoke_blocking(ACCOUNT, REGION, params(TargetVariant="Z"))
        assert seen == [loop]
    finally:
        loop.call_soon_threadsafe(loop.stop)
