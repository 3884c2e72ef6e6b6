"""The protocol layer on its own: pattern translation, input reading, output writing, routes."""

from __future__ import annotations

import datetime as dt

import pytest

from emulator import errors
from emulator.protocol import restjson, shapes
from emulator.protocol.http import HttpRequest
from emulator.protocol.models import operation_model
from emulator.protocol.patterns import compile_pattern, matches


@pytest.mark.parametrize("pattern, good, bad", [
    ("^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "my-job-1", "my_job"),
    ("[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+", "héllo!", "has space"),
    ("arn:[\\p{Alnum}\\-]+:lambda:[\\p{Alnum}\\-]+:[0-9]{12}:function:.*",
     "arn:aws:lambda:us-east-1:123456789012:function:f", "arn:aws:lambda:us-east-1:1:function:f"),
    ("[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*", "emoji \U0001F600 ok", "bell \x07"),
])
def test_java_patterns_translate(pattern, good, bad):
    assert matches(pattern, good)
    assert not matches(pattern, bad)


def test_every_sagemaker_pattern_compiles():
    from emulator.protocol.models import service_model
    model = service_model("sagemaker")
    unreadable = [model.shape_for(n).metadata["pattern"] for n in model.shape_names
                  if "pattern" in model.shape_for(n).metadata
                  and compile_pattern(model.shape_for(n).metadata["pattern"]) is None
                  and model.shape_for(n).metadata["pattern"] not in ("[\\S\\s]*", "[\\s\\S]*")]
    assert unreadable == []


def test_read_input_converts_timestamps_and_collects_violations():
    op = operation_model("sagemaker", "ListModels")
    parsed = shapes.read_input(op.input_shape, {"CreationTimeAfter": 1700000000, "SortBy": "Name"})
    assert parsed == {"CreationTimeAfter": 1700000000.0, "SortBy": "Name"}
    iso = shapes.read_input(op.input_shape, {"CreationTimeAfter": "2023-11-14T22:13:20Z"})
    assert iso["CreationTimeAfter"] == 1700000000.0
    with pytest.raises(errors.ServiceError) as info:
        shapes.read_input(op.input_shape, {"MaxResults": 101, "SortOrder": "Sideways"})
    assert info.value.code == "ValidationException"
    assert info.value.message.startswith("2 validation errors detected: ")


@pytest.mark.parametrize("document", [
    {"MaxResults": "10"}, {"MaxResults": True}, {"MaxResults": 1.5}, {"NameContains": 5},
    {"CreationTimeAfter": "yesterday"}, {"CreationTimeAfter": [1]},
])
def test_wrong_types_are_serialization_errors(document):
    op = operation_model("sagemaker", "ListModels")
    with pytest.raises(errors.ServiceError) as info:
        shapes.read_input(op.input_shape, document)
    assert info.value.code == "SerializationException"


def test_write_output_drops_none_and_unknown_members_and_writes_epochs():
    op = operation_model("sagemaker", "DescribeModel")
    when = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    out = shapes.write_output(op.output_shape, {
        "ModelName": "m", "ModelArn": "arn", "CreationTime": when, "VpcConfig": None, "_Internal": 1})
    assert out == {"ModelName": "m", "ModelArn": "arn", "CreationTime": when.timestamp()}


def test_rest_json_route_and_parse_invoke_endpoint():
    request = HttpRequest("POST", "/endpoints/my%2Dendpoint/invocations", {},
                          {"content-type": "text/csv", "x-amzn-sagemaker-target-variant": "B"}, b"1,2,3")
    op, labels = restjson.route("sagemaker-runtime", request)
    assert op.name == "InvokeEndpoint"
    params = restjson.parse(op, request, labels)
    assert params == {"EndpointName": "my-endpoint", "ContentType": "text/csv", "TargetVariant": "B", "Body": b"1,2,3"}


def test_rest_json_unknown_route():
    with pytest.raises(errors.ServiceError) as info:
        restjson.route("sagemaker-runtime", HttpRequest("GET", "/endpoints/x/nothing", {}, {}, b""))
    assert info.value.code == "UnknownOperationException"


def test_request_ids_are_unique_version_4_uuids():
    import uuid

    from emulator.pipeline.exchange import new_request_id

    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:3] + ids[-3:]:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
