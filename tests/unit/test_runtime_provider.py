"""SageMaker Runtime's provider over the router and fake containers: a streamed answer as AWS's
event stream, read as it comes, a break mid-stream as ModelStreamError, and the instance free again
however the stream ends."""

from __future__ import annotations

import asyncio

from botocore.eventstream import EventStreamBuffer

from emulator.context import RequestContext
from emulator.providers.runtime import RuntimeProvider
from emulator.upstream import UpstreamConnectionError
from emulator.upstream.fake import FakeTransport
from tests.unit.test_router import ACCOUNT, REGION, instance, one_variant, params, router


def ctx() -> RequestContext:
    return RequestContext(ACCOUNT, REGION, "sagemaker-runtime", "InvokeEndpointWithResponseStream", "req-1", {})


def streamed(pieces: list, take: int | None = None):
    """(response, events as (type, payload), the instance's calls in flight after) of one call whose
    container answers `pieces`; with `take`, the body is closed after that many events."""
    held = instance("i-1", FakeTransport(lambda r: (200, {"Content-Type": "text/plain"}, pieces)))
    provider = RuntimeProvider(router(one_variant(held))[0])

    async def go():
        response = await provider.invoke_endpoint_with_response_stream(ctx(), params())
        events = []
        if take == 0:
            await response.body.aclose()
            return response, events, held.inflight
        async for data in response.body:
            buffer = EventStreamBuffer()
            buffer.add_data(data)
            events += [(m.headers.get(":event-type") or m.headers.get(":exception-type"), m.payload) for m in buffer]
            if take is not None and len(events) == take:
                await response.body.aclose()
                break
        return response, events, held.inflight

    return asyncio.run(go())


def test_a_streamed_answer_is_an_event_stream_of_payload_parts():
    response, events, inflight = streamed([b"one", b"two"])
    headers = dict(response.headers)
    assert response.status == 200 and headers["Content-Type"] == "application/vnd.amazon.eventstream"
    assert headers["x-Amzn-Invoked-Production-Variant"] == "AllTraffic"
    assert headers["X-Amzn-SageMaker-Content-Type"] == "text/plain" and headers["x-amzn-RequestId"] == "req-1"
    assert events == [("PayloadPart", b"one"), ("PayloadPart", b"two")] and inflight == 0


def test_a_break_mid_stream_ends_it_with_model_stream_error():
    _, events, inflight = streamed([b"one", UpstreamConnectionError("the container went away"), b"never"])
    assert events[0] == ("PayloadPart", b"one") and events[1][0] == "ModelStreamError"
    assert b"the container went away" in events[1][1] and len(events) == 2 and inflight == 0


def test_a_stream_closed_early_frees_its_instance():
    _, events, inflight = streamed([b"one", b"two", b"three"], take=1)
    assert events == [("PayloadPart", b"one")] and inflight == 0


def test_a_stream_closed_before_its_first_event_frees_its_instance():
    """The pipeline closes an answer's body it never sent (the caller went away first)."""
    _, events, inflight = streamed([b"one"], take=0)
    assert events == [] and inflight == 0
