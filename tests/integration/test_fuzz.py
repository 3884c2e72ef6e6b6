"""Fuzzing the SageMaker control plane over raw HTTP: a caller's mistake is never a 5xx.

boto3 validates client-side, so these tests talk to the server with `requests` and `http.client`
directly. Inputs are generated from botocore's own input shapes (so they reach real operations
with plausible members) and then broken: wrong member types, nested junk, 100 KB+ strings, NaN
and Infinity, JSON nested 10,000 levels deep, invalid and non-object JSON, random bytes, unknown
or garbled `X-Amz-Target`s and Content-Types, wrong HTTP methods, forged NextTokens, negative
and huge MaxResults.

The contract every answer must meet (`check_answer`):

* a 4xx whose JSON body has string `__type` and `message` (and the code in X-Amzn-ErrorType), or
* a 200 (the random input happened to be valid) whose body is valid per the output shape, or
* a 501 for a real SageMaker operation smlocal does not implement (by design);
* never a 5xx otherwise, and an unknown `SageMaker.<Name>` answers 400.

Resources created before the fuzzing (a model, an endpoint config, a training job, all tagged)
must Describe identically afterwards, and ListModels must still work; whatever valid random
input created is removed again so the session's server is left as it was found.

Hypothesis runs derandomized (reproducible in CI) with no example database; set
SMLOCAL_FUZZ_RANDOM=1 to explore new examples and SMLOCAL_FUZZ_EXAMPLES=<n> to run longer.
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import os
import re
import socket
import time
import urllib.parse
import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.protocol.models import operation_model, service_model

IMPLEMENTED = (
    "CreateModel", "DescribeModel", "ListModels", "DeleteModel",
    "CreateEndpointConfig", "DescribeEndpointConfig", "ListEndpointConfigs", "DeleteEndpointConfig",
    "CreateEndpoint", "DescribeEndpoint", "ListEndpoints", "DeleteEndpoint", "UpdateEndpoint",
    "UpdateEndpointWeightsAndCapacities",
    "CreateTrainingJob", "DescribeTrainingJob", "ListTrainingJobs", "StopTrainingJob", "DeleteTrainingJob",
    "AddTags", "ListTags", "DeleteTags",
)
LIST_OPS = ("ListModels", "ListEndpointConfigs", "ListEndpoints", "ListTrainingJobs", "ListTags")
JSON_11 = "application/x-amz-json-1.1"
MAX_EXAMPLES = int(os.environ.get("SMLOCAL_FUZZ_EXAMPLES", "200"))
SLOW_ANSWER_SECONDS = 10.0  # an answer slower than this is a denial of service, not a 4xx
# Members the output shapes mark required that smlocal legitimately leaves out for now:
# DescribeTrainingJob.ModelArtifacts exists once a job has produced artifacts (jobs here never run).
KNOWN_OMITTED = {("DescribeTrainingJobResponse", "ModelArtifacts")}

FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("SMLOCAL_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.large_base_example],
)
LIGHT = settings(FUZZ, max_examples=max(10, MAX_EXAMPLES // 2))  # header-level tests: less to explore


# -- talking to the server ----------------------------------------------------------------------

class Wire:
    """Raw HTTP to the server: one keep-alive session, and http.client for what requests won't send."""

    def __init__(self, url: str):
        self.url = url
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.session = requests.Session()

    def post(self, target: str | None, body: bytes | str, *, content_type: str | None = JSON_11,
             method: str = "POST", headers: dict | None = None) -> requests.Response:
        sent = {}
        if target is not None:
            sent["X-Amz-Target"] = target
        if content_type is not None:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        if isinstance(body, str):
            body = body.encode("utf-8", "surrogatepass")
        start = time.monotonic()
        response = self.session.request(method, self.url + "/", data=body, headers=sent, timeout=60)
        response.elapsed_seconds = time.monotonic() - start
        return response

    def call(self, op: str, document) -> requests.Response:
        return self.post(f"SageMaker.{op}", json.dumps(document, allow_nan=True))

    def raw(self, method: str, head: list[tuple[str, str]], body: bytes = b"") -> tuple[int, bytes, dict]:
        """Send exactly these headers (no Content-Length added), read one answer."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.putrequest(method, "/", skip_accept_encoding=True)
            for name, value in head:
                conn.putheader(name, value)
            conn.endheaders(body or None)
            response = conn.getresponse()
            return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()


def check_answer(op: str | None, response, sent=None) -> dict:
    """The contract of the module docstring; returns the decoded body."""
    status = response.status_code
    where = Where(op, response, sent)
    assert status < 500 or (status == 501 and op not in IMPLEMENTED), where
    assert response.elapsed_seconds < SLOW_ANSWER_SECONDS, f"{response.elapsed_seconds:.1f} s: {where}"
    document = _json_body(response.content, where)
    if status == 200:
        assert op is not None, where
        check_output(operation_model("sagemaker", op).output_shape, document, where)
        return document
    assert 400 <= status < 500 or status == 501, where
    check_error(document, response.headers, where)
    return document


class Where:
    """The failure message, built only when an assertion shows it."""

    def __init__(self, op, response, sent):
        self.op, self.response, self.sent = op, response, sent

    def __str__(self) -> str:
        r = self.response
        sent = self.sent if self.sent is not None else r.request.body
        return (f"{self.op or r.request.headers.get('X-Amz-Target')} answered {r.status_code}: "
                f"{r.content[:500]!r}\n  request: {_brief(sent)}")

    __repr__ = __str__


def check_error(document, headers, where) -> None:
    assert isinstance(document, dict), where
    assert isinstance(document.get("__type"), str) and document["__type"], where
    assert isinstance(document.get("message"), str), where
    assert headers.get("X-Amzn-ErrorType", headers.get("x-amzn-errortype")) == document["__type"], where


def _json_body(content: bytes, where):
    try:
        return json.loads(content)
    except ValueError:
        pytest.fail(f"not a JSON body: {where}")


def _brief(body) -> str:
    if body is None:
        return "<no body>"
    if isinstance(body, (bytes, bytearray)):
        text = bytes(body).decode("utf-8", "replace")
    elif isinstance(body, str):
        text = body
    else:
        try:
            text = json.dumps(body)
        except (TypeError, ValueError, RecursionError):
            text = repr(body)
    return text if len(text) <= 400 else f"{text[:300]}... ({len(text)} chars)"


# -- output validation --------------------------------------------------------------------------

def check_output(shape, value, where, path: str = "$") -> None:
    if shape is None:
        assert value in ({}, None), f"{path}: expected no output: {where}"
        return
    kind = shape.type_name
    here = f"{path} ({shape.name}, {kind}): {where}"
    if kind == "structure":
        assert isinstance(value, dict), here
        unknown = set(value) - set(shape.members)
        assert not unknown, f"members not in the shape {sorted(unknown)} at {here}"
        for name in shape.required_members:
            if (shape.name, name) not in KNOWN_OMITTED:
                assert name in value, f"required member {name} missing at {here}"
        for name, item in value.items():
            check_output(shape.members[name], item, where, f"{path}.{name}")
    elif kind == "list":
        assert isinstance(value, list), here
        for i, item in enumerate(value):
            check_output(shape.member, item, where, f"{path}[{i}]")
    elif kind == "map":
        assert isinstance(value, dict), here
        for key, item in value.items():
            check_output(shape.key, key, where, f"{path}<key>")
            check_output(shape.value, item, where, f"{path}[{key!r}]")
    elif kind == "string":
        assert isinstance(value, str), here
        if shape.enum:
            assert value in shape.enum, f"{value!r} not in the enum at {here}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), here
    elif kind in ("float", "double"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), here
    elif kind == "boolean":
        assert isinstance(value, bool), here
    elif kind == "timestamp":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), here
    elif kind == "blob":
        assert isinstance(value, str), here
        base64.b64decode(value, validate=True)


# -- strategies from the shapes -----------------------------------------------------------------

MAX_DEPTH = 4
JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
                | st.text(max_size=20))
JUNK = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=16,
)
HUGE_INTS = st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 10**30, -(10**30), 10**400, -(10**400)])
NON_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])


def _model_regex(shape):
    """A Python `re` for a shape's Java pattern when `re` can read it (most name patterns)."""
    pattern = shape.metadata.get("pattern")
    if not pattern or "\\p{" in pattern or "\\u" in pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


@functools.lru_cache(maxsize=None)
def plausible(shape, depth: int = 0, junk_every: int = 12) -> st.SearchStrategy:
    """Values that mostly fit the shape; one member in `junk_every` (if > 0) is of a wrong type."""
    kind = shape.type_name
    if kind == "structure":
        if depth >= MAX_DEPTH:
            return st.just({})
        members = {name: _member(member, depth + 1, junk_every) for name, member in shape.members.items()}
        required = {k: v for k, v in members.items() if k in shape.required_members}
        optional = {k: v for k, v in members.items() if k not in shape.required_members}
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "list":
        if depth >= MAX_DEPTH:
            return st.just([])
        low = shape.metadata.get("min", 0)
        return st.lists(_member(shape.member, depth + 1, junk_every), min_size=min(low, 2), max_size=max(2, low))
    if kind == "map":
        if depth >= MAX_DEPTH:
            return st.just({})
        return st.dictionaries(plausible(shape.key, depth + 1, 0), _member(shape.value, depth + 1, junk_every),
                               max_size=2)
    if kind == "string":
        if shape.enum:
            return st.sampled_from(shape.enum)
        low, high = shape.metadata.get("min", 0), shape.metadata.get("max", 64)
        text = st.text(min_size=low, max_size=max(low, min(high, 64)))
        compiled = _model_regex(shape)
        if compiled is not None:
            return st.from_regex(compiled, fullmatch=True) | text
        return text
    if kind in ("integer", "long"):
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        return st.integers(low, high) | st.integers(-5, 5)
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.floats(0, 4e9) | st.sampled_from(["2024-01-01T00:00:00Z", "2024-06-30T12:00:00+02:00"])
    if kind == "blob":
        return st.binary(max_size=16).map(lambda b: base64.b64encode(b).decode())
    return JUNK


def _member(shape, depth: int, junk_every: int) -> st.SearchStrategy:
    good = plausible(shape, depth, junk_every)
    if junk_every <= 0:
        return good
    return st.one_of(*([good] * (junk_every - 1)), wrong_type(shape))


@functools.lru_cache(maxsize=None)
def wrong_type(shape) -> st.SearchStrategy:
    """A value the shape's type cannot be read from (or junk nested where structure is expected)."""
    kind = shape.type_name
    deep = st.integers(2, 60).map(lambda n: json.loads("[" * n + "]" * n))
    if kind == "structure":
        return st.lists(JUNK, max_size=3) | st.text(max_size=10) | st.integers() | st.booleans() | deep
    if kind == "list":
        return st.dictionaries(st.text(max_size=5), JUNK, max_size=3) | st.text(max_size=10) | st.integers()
    if kind == "map":
        return (st.lists(JUNK, max_size=3) | st.text(max_size=10)
                | st.dictionaries(st.text(max_size=5), st.lists(JUNK, max_size=2) | st.integers(), min_size=1))
    if kind == "string":
        return st.integers() | st.floats() | st.booleans() | st.lists(JUNK, max_size=3) | st.dictionaries(
            st.text(max_size=5), JUNK, max_size=3)
    if kind in ("integer", "long"):
        return (st.text(max_size=10) | st.from_regex(r"-?[0-9]{1,20}", fullmatch=True)
                | st.floats().filter(lambda f: not f.is_integer()) | st.booleans() | HUGE_INTS
                | NON_FINITE | st.lists(st.integers(), max_size=3))
    if kind in ("float", "double"):
        return st.text(max_size=10) | st.booleans() | NON_FINITE | HUGE_INTS | st.lists(st.floats(), max_size=2)
    if kind == "boolean":
        return st.sampled_from(["true", "false", 0, 1, "", None]) | st.lists(st.booleans(), max_size=2)
    if kind == "timestamp":
        return (st.text(max_size=30) | st.booleans() | NON_FINITE | HUGE_INTS
                | st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2024-13-45",
                                   "1e400", 1e308, -1e308]) | st.lists(JUNK, max_size=2))
    if kind == "blob":
        return st.integers() | st.just("not base64 !!") | st.lists(JUNK, max_size=2)
    return JUNK


def input_shape(op: str):
    return operation_model("sagemaker", op).input_shape


def member_paths(shape, depth: int = 0, prefix: tuple = ()) -> list[tuple[tuple, object]]:
    """(path, shape) for every member reachable through structures and lists, a few levels deep."""
    found = []
    if depth > 4:
        return found
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            found.append((prefix + (name,), member))
            found.extend(member_paths(member, depth + 1, prefix + (name,)))
    elif shape.type_name == "list":
        found.extend(member_paths(shape.member, depth + 1, prefix + (0,)))
    return found


def place(document, path: tuple, value):
    """Put value at path, creating dicts and one-element lists on the way."""
    node = document
    for step, nxt in zip(path, path[1:]):
        if isinstance(step, int):
            while len(node) <= step:
                node.append({} if not isinstance(nxt, int) else [])
            if not isinstance(node[step], (dict, list)):
                node[step] = {} if not isinstance(nxt, int) else []
            node = node[step]
        else:
            if not isinstance(node.get(step), (dict, list)):
                node[step] = [] if isinstance(nxt, int) else {}
            node = node[step]
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value
    return document


@functools.lru_cache(maxsize=None)
def paths_of(op: str, kinds: tuple[str, ...] | None = None) -> list:
    paths = member_paths(input_shape(op))
    return [(p, s) for p, s in paths if kinds is None or s.type_name in kinds]


# -- the resources that must survive ------------------------------------------------------------

RESOURCE_LISTS = (  # list op, result key, name key, delete op, describe-name key
    ("list_models", "Models", "ModelName", "delete_model"),
    ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", "delete_endpoint_config"),
    ("list_endpoints", "Endpoints", "EndpointName", "delete_endpoint"),
    ("list_training_jobs", "TrainingJobSummaries", "TrainingJobName", "delete_training_job"),
)


def _names(sm, list_op: str, key: str, name_key: str) -> set[str]:
    names = set()
    for page in sm.get_paginator(list_op).paginate(PaginationConfig={"PageSize": 100}):
        names.update(item[name_key] for item in page[key])
    return names


def _snapshot(sm, names: dict) -> dict:
    def strip(document):
        document = dict(document)
        document.pop("ResponseMetadata", None)
        return document

    return {
        "model": strip(sm.describe_model(ModelName=names["model"])),
        "config": strip(sm.describe_endpoint_config(EndpointConfigName=names["config"])),
        "job": strip(sm.describe_training_job(TrainingJobName=names["job"])),
        "tags": {arn: sm.list_tags(ResourceArn=arn)["Tags"] for arn in names["arns"]},
    }


@pytest.fixture(scope="module")
def baseline(sm):
    """Tagged resources made before the fuzzing, their Describe outputs, and the names present."""
    suffix = uuid.uuid4().hex[:10]
    names = {"model": f"fuzz-base-model-{suffix}", "config": f"fuzz-base-config-{suffix}",
             "job": f"fuzz-base-job-{suffix}"}
    tags = [{"Key": "suite", "Value": "fuzz"}, {"Key": "owner", "Value": "baseline"}]
    model_arn = sm.create_model(
        ModelName=names["model"], ExecutionRoleArn="arn:aws:iam::123456789012:role/Fuzz",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/byo:1",
                          "ModelDataUrl": "s3://fuzz-bucket/model.tar.gz", "Environment": {"A": "1"}},
        Tags=tags,
    )["ModelArn"]
    config_arn = sm.create_endpoint_config(
        EndpointConfigName=names["config"],
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": names["model"],
                             "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        Tags=tags,
    )["EndpointConfigArn"]
    job_arn = sm.create_training_job(
        TrainingJobName=names["job"], RoleArn="arn:aws:iam::123456789012:role/Fuzz",
        AlgorithmSpecification={"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/byo:1",
                                "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://fuzz-bucket/output/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        Tags=tags,
    )["TrainingJobArn"]
    names["arns"] = (model_arn, config_arn, job_arn)
    before = {spec[0]: _names(sm, spec[0], spec[1], spec[2]) for spec in RESOURCE_LISTS}
    state = {"names": names, "snapshot": _snapshot(sm, names), "before": before}
    yield state
    _remove_fuzz_leftovers(sm, before)


def _remove_fuzz_leftovers(sm, before: dict) -> None:
    """Delete what valid random input created, so other test modules see the server as it was."""
    for list_op, key, name_key, delete_op in RESOURCE_LISTS:
        for name in _names(sm, list_op, key, name_key) - before[list_op]:
            try:
                if list_op == "list_training_jobs":
                    if sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress":
                        sm.stop_training_job(TrainingJobName=name)
                    _wait(lambda: sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
                          in ("Completed", "Failed", "Stopped"))
                getattr(sm, delete_op)(**{name_key: name})
            except sm.exceptions.ClientError:
                pass


def _wait(predicate, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)


@pytest.fixture(scope="module")
def wire(endpoint_url, baseline):
    wire = Wire(endpoint_url)
    yield wire
    wire.session.close()


# -- 1. inputs generated from the input shapes --------------------------------------------------

@FUZZ
@given(data=st.data())
def test_plausible_inputs_with_some_wrong_members(wire, data):
    op = data.draw(st.sampled_from(IMPLEMENTED), label="op")
    document = data.draw(plausible(input_shape(op)), label="document")
    check_answer(op, wire.call(op, document), document)


@FUZZ
@given(data=st.data())
def test_plausible_inputs_without_junk(wire, data):
    """Inputs of the right types only: answers are 200s valid per the output shape, or 4xx."""
    op = data.draw(st.sampled_from(IMPLEMENTED), label="op")
    document = data.draw(plausible(input_shape(op), 0, 0), label="document")
    check_answer(op, wire.call(op, document), document)


@FUZZ
@given(data=st.data())
def test_one_member_of_a_wrong_type(wire, data):
    """Required members plausible, one member anywhere (nested too) replaced by a wrong type."""
    op = data.draw(st.sampled_from(IMPLEMENTED), label="op")
    document = data.draw(plausible(input_shape(op), 0, 0).map(dict), label="document")
    paths = paths_of(op)
    path, shape = data.draw(st.sampled_from(paths), label="member")
    junk = data.draw(wrong_type(shape), label="junk")
    document = place(json.loads(json.dumps(document)), path, junk)
    response = wire.call(op, document)
    check_answer(op, response, document)


# -- 2. bodies that are not documents of the shape ----------------------------------------------

@FUZZ
@given(op=st.sampled_from(IMPLEMENTED), document=JUNK)
def test_any_json_document(wire, op, document):
    """Non-object JSON (lists, strings, numbers, null), NaN/Infinity, junk objects."""
    check_answer(op, wire.call(op, document), document)


@FUZZ
@given(op=st.sampled_from(IMPLEMENTED), body=st.binary(max_size=512) | st.text(max_size=200).map(str.encode))
def test_random_bytes(wire, op, body):
    check_answer(op, wire.post(f"SageMaker.{op}", body), body)


@pytest.mark.parametrize("body", [
    b"{", b"}", b"{]", b"[", b'{"ModelName": }', b'{"ModelName": "a",}', b"{'ModelName': 'a'}",
    b'{"ModelName": "\\ud800"}', b'{"ModelName": "\xff\xfe"}', b"\xef\xbb\xbf{}", b"\x00", b"null",
    b"true", b"1", b'"a string"', b"[]", b"[{}]", b"NaN", b"-Infinity", b'{"ModelName": NaN}',
    b"{}" * 1000, b" " * 1000, b"\n{}\n", b'{"a": 1, "a": 2}', b"1" * 5000, b"{" + b'"x":1,' * 10000 + b'"y":1}',
])
@pytest.mark.parametrize("op", ["CreateModel", "ListModels", "AddTags", "UpdateEndpointWeightsAndCapacities"])
def test_invalid_json_bodies(wire, op, body):
    check_answer(op, wire.post(f"SageMaker.{op}", body), body)


# -- 3. deep nesting (json.loads and the validator must not recurse into a RecursionError) ------

def _nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return '[{"a":' * (depth // 2) + "1" + "}]" * (depth // 2)


@pytest.mark.parametrize("depth", [100, 900, 2000, 10_000, 100_000])
@pytest.mark.parametrize("kind", ["array", "object", "mixed"])
def test_deeply_nested_bodies(wire, kind, depth):
    for op in IMPLEMENTED:
        body = _nested(depth, kind)
        check_answer(op, wire.post(f"SageMaker.{op}", body), body)


@pytest.mark.parametrize("depth", [600, 10_000])
@pytest.mark.parametrize("op", IMPLEMENTED)
def test_deeply_nested_member_values(wire, op, depth):
    """Junk nested deep inside members. 600 levels parse, so the validator meets them: list and map
    members get 60 such items (more than most `max`s, so the violation message must show them)."""
    shape = input_shape(op)
    nested = _nested(depth, "array")
    for name, member in shape.members.items():
        if member.type_name not in ("list", "map"):
            continue  # a structure or a scalar refuses the array at once
        body = '{"%s": [%s]}' % (name, ",".join([nested] * (60 if depth < 1000 else 1)))
        check_answer(op, wire.post(f"SageMaker.{op}", body), body)
    body = '{"%s": %s}' % (next(iter(shape.members)), nested)
    check_answer(op, wire.post(f"SageMaker.{op}", body), body)


# -- 4. huge strings and numbers ----------------------------------------------------------------

@settings(FUZZ, max_examples=max(10, MAX_EXAMPLES // 4))
@given(data=st.data())
def test_huge_strings(wire, data):
    op = data.draw(st.sampled_from(IMPLEMENTED), label="op")
    paths = paths_of(op)
    path, _ = data.draw(st.sampled_from(paths), label="member")
    size = data.draw(st.sampled_from([100_000, 250_000, 1_000_000]), label="size")
    filler = data.draw(st.sampled_from(["a", "-", "é", "\U0001F600", "a-", "/", " ", "0", "\\", "arn:aws:"]),
                       label="filler")
    value = (filler * (size // len(filler) + 1))[:size]
    document = place(data.draw(plausible(input_shape(op), 0, 0).map(dict), label="base"), path, value)
    response = wire.call(op, document)
    check_answer(op, response, f"{op} with {size} x {filler!r} at {path}")


@pytest.mark.parametrize("op", IMPLEMENTED)
def test_huge_and_non_finite_numbers_everywhere(wire, op):
    """NaN, Infinity, 400-digit integers and 1e400 as literals in every number and timestamp member."""
    targets = paths_of(op, ("integer", "long", "float", "double", "timestamp"))
    for path, _ in targets:
        for literal in ("NaN", "Infinity", "-Infinity", "1" + "0" * 400, "-" + "9" * 400, "1e400",
                        "-1e400", "1e-400", "4.9e-324", "1.7976931348623157e308", "0.5", "-0", "1E2"):
            marker = "__FUZZ_NUMBER__"
            body = json.dumps(place({}, path, marker)).replace(f'"{marker}"', literal)
            check_answer(op, wire.post(f"SageMaker.{op}", body), body)


# -- 5. targets, methods, content types, headers -------------------------------------------------

REAL_OPS = tuple(service_model("sagemaker").operation_names)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
                      max_size=40).map(str.strip)  # HTTP clients refuse leading white space


@LIGHT
@given(name=HEADER_TEXT.filter(lambda n: n not in REAL_OPS), body=st.sampled_from(["{}", "", "[]", "x"]))
def test_unknown_operation_names_answer_400(wire, name, body):
    response = wire.post(f"SageMaker.{name}", body)
    document = check_answer(None, response, body)
    assert response.status_code == 400, response.content
    assert document["__type"] == "UnknownOperationException"


@LIGHT
@given(op=st.sampled_from(REAL_OPS))
def test_real_operations_not_implemented_answer_501_or_400(wire, op):
    response = wire.post(f"SageMaker.{op}", "{}")
    check_answer(op, response, "{}")
    if op not in IMPLEMENTED:
        assert response.status_code in (400, 501), response.content


@LIGHT
@given(
    op=st.sampled_from(IMPLEMENTED),
    method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "POST"]),
    content_type=st.none() | st.sampled_from([JSON_11, "application/json", "text/plain", "application/xml",
                                              "multipart/form-data; boundary=x", "", ";;;", "\u00e9/\u00e9"])
    | HEADER_TEXT,
    body=st.sampled_from(["{}", "", '{"MaxResults": 5}', "<xml/>", "a=b&c=d"]),
)
def test_methods_and_content_types(wire, op, method, content_type, body):
    response = wire.post(f"SageMaker.{op}", body, content_type=content_type, method=method)
    check_answer(op, response, body)
    if method != "POST":
        assert response.status_code == 400


SIGNED_FOR_SAGEMAKER = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAFUZZ/20240101/us-east-1/sagemaker/"
                                         "aws4_request, SignedHeaders=host;x-amz-date, Signature=00"}
# Targets that are smlocal's to answer: no target on a json-protocol request, a target without a
# dot (no AWS service has one), any casing of the SageMaker prefix, or anything signed for
# sagemaker. (Other services' targets go to moto by design; moto's own answers are not fuzzed here.)
OWNED_TARGETS = st.one_of(
    st.none(),
    HEADER_TEXT.filter(lambda t: "." not in t),
    st.builds(lambda prefix, rest: f"{prefix}.{rest}",
              st.sampled_from(["SageMaker", "sagemaker", "SAGEMAKER", "sageMaker"]), HEADER_TEXT),
    st.sampled_from(["", "SageMaker", "SageMaker.", "SageMaker..ListModels", "SageMaker.ListModels.",
                     "SageMaker.ListModels ", "SageMaker_ListModels", "Garbage", "SageMaker.List%20Models"]),
)


@LIGHT
@given(target=OWNED_TARGETS | st.tuples(HEADER_TEXT, st.just("signed")),
       body=st.sampled_from(["{}", "", "[]", "null", "1", "not json", '{"MaxResults": 1}']))
def test_missing_and_garbled_targets_answer_4xx(wire, target, body):
    """Never a 5xx: an unknown or malformed target is a 400 in SageMaker's json error shape."""
    headers = {}
    if isinstance(target, tuple):  # any target at all, signed for sagemaker
        target, headers = target[0], SIGNED_FOR_SAGEMAKER
    response = wire.post(target, body, headers=headers)
    real = target.strip()[len("SageMaker."):] if target and target.strip().startswith("SageMaker.") else None
    document = check_answer(real if real in REAL_OPS else None, response, f"X-Amz-Target {target!r}: {body}")
    if response.status_code != 200 and real not in REAL_OPS:
        assert response.status_code == 400, (target, response.content)
        assert document["__type"] == "UnknownOperationException", (target, document)


@LIGHT
@given(
    op=st.sampled_from(["ListModels", "DescribeModel", "CreateModel"]),
    authorization=st.none() | HEADER_TEXT | st.builds(
        lambda key, date, region, service: f"AWS4-HMAC-SHA256 Credential={key}/{date}/{region}/{service}/aws4_request,"
                                           " SignedHeaders=host, Signature=0",
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="/,"), max_size=30),
        st.from_regex(r"[0-9]{8}", fullmatch=True),
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="/,"), max_size=30),
        st.sampled_from(["sagemaker", "s3", "x"]),
    ),
    account=st.none() | HEADER_TEXT,
)
def test_odd_credentials_and_account_headers(wire, op, authorization, account):
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    if account is not None:
        headers["x-moto-account-id"] = account
    body = {"ListModels": {}, "DescribeModel": {"ModelName": "missing"},
            "CreateModel": {"ModelName": "m"}}[op]
    response = wire.post(f"SageMaker.{op}", json.dumps(body), headers=headers)
    check_answer(op, response, f"{headers} {body}")


@pytest.mark.parametrize("target", ["SageMaker.ListModels", "SageMaker.NoSuchOperation", "SageMaker.Search"])
def test_head_answers_carry_no_body(wire, target):
    """A body after a HEAD answer is read as the start of the next answer on a keep-alive
    connection (clients then fail with BadStatusLine)."""
    with socket.create_connection((wire.host, wire.port), timeout=10) as sock:
        sock.sendall(f"HEAD / HTTP/1.1\r\nHost: {wire.host}\r\nX-Amz-Target: {target}\r\n"
                     f"Content-Type: {JSON_11}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), answer[:200]
    assert int(head.split()[1]) < 500, head
    assert rest == b"", f"HEAD {target} answered with a {len(rest)}-byte body: {rest[:200]!r}"


@pytest.mark.parametrize("head, body", [
    ([("Content-Length", "abc")], b"{}"),
    ([("Content-Length", "-1")], b""),
    ([("Content-Length", "99999999999999999999")], b""),
    ([("Content-Length", str(6 * 1024 * 1024 + 64 * 1024 + 1))], b" " * (6 * 1024 * 1024 + 64 * 1024 + 1)),
    ([("Content-Length", "2")], b"{}"),
    ([("Transfer-Encoding", "chunked")], b"2\r\n{}\r\n0\r\n\r\n"),
    ([("Transfer-Encoding", "chunked")], b"zz\r\n{}\r\n0\r\n\r\n"),
    ([("Content-Length", "0")], b""),
])
def test_raw_framing(wire, head, body):
    """Framing only http.client can send: bad or huge Content-Length, chunked bodies."""
    status, content, headers = wire.raw("POST", [("X-Amz-Target", "SageMaker.ListModels"),
                                                 ("Content-Type", JSON_11)] + head, body)
    assert status < 500, (status, content[:300])
    if content.startswith(b"{"):
        document = json.loads(content)
        if status == 200:
            check_output(operation_model("sagemaker", "ListModels").output_shape, document, repr(head))
        else:
            check_error(document, {"X-Amzn-ErrorType": headers.get("x-amzn-errortype")}, repr(head))


# -- 6. pagination: forged NextTokens, negative and huge MaxResults -----------------------------

def _token(document) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


FORGED_TOKENS = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    JUNK.map(_token),
    st.builds(lambda offset, kind: _token({"o": offset, "k": kind}),
              st.integers() | HUGE_INTS | st.floats() | st.booleans() | st.none() | st.text(max_size=5),
              st.sampled_from(["model", "endpoint-config", "endpoint", "training-job", "tags", "x", ""])),
    st.sampled_from(["", "=", "====", "%%%", "\u00e9", "a" * 8192]),
)


@FUZZ
@given(op=st.sampled_from(LIST_OPS), token=FORGED_TOKENS,
       max_results=st.none() | st.integers() | HUGE_INTS | st.sampled_from([0, -1, 1, 100, 101, 2**31 - 1]))
def test_forged_tokens_and_max_results(wire, baseline, op, token, max_results):
    document = {"NextToken": token}
    if max_results is not None:
        document["MaxResults"] = max_results
    if op == "ListTags":
        document["ResourceArn"] = baseline["names"]["arns"][0]
    check_answer(op, wire.call(op, document), document)


@pytest.mark.parametrize("op", LIST_OPS)
def test_tokens_from_another_operation_or_offset(wire, baseline, op):
    extra = {"ResourceArn": baseline["names"]["arns"][0]} if op == "ListTags" else {}
    for offset in (0, 1, 10**6, 2**63 - 1, 2**63, 10**30, -1):
        for kind in ("model", "tags", "training-job"):
            document = {"NextToken": _token({"o": offset, "k": kind}), "MaxResults": 1, **extra}
            check_answer(op, wire.call(op, document), document)


# -- 7. operations smlocal does not implement parse their input too -----------------------------

def test_unimplemented_operation_with_a_deeply_recursive_input_never_5xx(wire):
    """Search's SearchExpression is a recursive shape: reading it must not overflow the stack."""
    for depth in (100, 300, 450):
        body = '{"Resource": "TrainingJob", "SearchExpression": ' + '{"SubExpressions": [' * depth + "{}" + \
               "]}" * depth + "}"
        response = wire.post("SageMaker.Search", body)
        assert response.status_code in (400, 501), (depth, response.status_code, response.content[:300])


# -- 8. after all of the above ------------------------------------------------------------------

def test_zz_resources_made_before_the_fuzzing_are_intact(wire, sm, baseline):
    """Runs last in this module (pytest keeps file order)."""
    assert _snapshot(sm, baseline["names"]) == baseline["snapshot"]
    for op, name in (("DescribeModel", {"ModelName": baseline["names"]["model"]}),
                     ("DescribeEndpointConfig", {"EndpointConfigName": baseline["names"]["config"]}),
                     ("DescribeTrainingJob", {"TrainingJobName": baseline["names"]["job"]})):
        response = wire.call(op, name)
        assert response.status_code == 200
        check_answer(op, response, name)
    models = sm.list_models(MaxResults=100, NameContains="fuzz-base-model")["Models"]
    assert baseline["names"]["model"] in {m["ModelName"] for m in models}
    health = requests.get(wire.url + "/_smlocal/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "running"
