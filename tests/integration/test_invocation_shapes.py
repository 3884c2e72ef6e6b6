"""InvokeEndpoint's shapes (emulator/asgi.py `shape_of`), which live in the process that serves the
call: here the main process alone (the session server has no data-plane worker). A client repeats
a shape call after call; shapes stay bounded; a large one is answered but never remembered."""

from __future__ import annotations

from tests.integration.helpers import make_config, make_endpoint, make_model
from tests.integration.test_http_server import call, connect


def test_signed_calls_share_a_shape_and_shapes_stay_bounded(sm, smr, endpoint_url):
    from emulator.asgi import SHAPES, shape_of

    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    smr.invoke_endpoint(EndpointName=name, Body=b"1", ContentType="text/csv")
    before = shape_of.cache_info()
    for n in range(10):  # a new signature, date and SDK invocation id on every call
        answer = smr.invoke_endpoint(EndpointName=name, Body=b"%d" % n, ContentType="text/csv")
        assert answer["Body"].read() == b"%d" % n
    after = shape_of.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (10, 0)
    connection = connect(endpoint_url)
    for n in range(SHAPES + 10):  # an inference id per call: a shape per call
        status, _, _ = call(connection, "POST", f"/endpoints/{name}/invocations", b"1", {
            "Content-Type": "text/csv", "X-Amzn-SageMaker-Inference-Id": str(n)})
        assert status == 200
    assert shape_of.cache_info().currsize <= SHAPES == shape_of.cache_info().maxsize


def test_a_large_shape_is_answered_but_not_remembered(sm, endpoint_url):
    """Request headers have no size limit: a shape above SHAPE_BYTES is read afresh every call."""
    from emulator.asgi import SHAPE_BYTES, shape_of

    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    connection = connect(endpoint_url)
    shape_of.cache_clear()  # a memo: forgetting it costs the other tests nothing
    for _ in range(2):
        status, headers, body = call(connection, "POST", f"/endpoints/{name}/invocations", b"1,2", {
            "Content-Type": "text/csv", "X-Padding": "p" * SHAPE_BYTES})
        assert (status, body, headers["x-amzn-invoked-production-variant"]) == (200, b"1,2", "AllTraffic")
    assert shape_of.cache_info().currsize == 0
