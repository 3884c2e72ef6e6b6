"""AWS rest-json (SageMaker Runtime): operations found by method and URI template, members read
from the URI, headers, query string and payload exactly where the model locates them."""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from dataclasses import dataclass

from botocore.model import OperationModel

from emulator import errors
from emulator.protocol import shapes
from emulator.protocol.http import HttpRequest, HttpResponse, json_object
from emulator.protocol.models import service_model


@functools.lru_cache(maxsize=None)
def _routes(service: str) -> list[tuple[str, re.Pattern, OperationModel]]:
    model = service_model(service)
    table = []
    for name in model.operation_names:
        op = model.operation_model(name)
        uri = op.http["requestUri"].split("?")[0]
        pattern = re.sub(
            r"\\\{(\w+)(\\\+)?\\\}",
            lambda m: f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)",
            re.escape(uri),
        )
        table.append((op.http["method"], re.compile(f"^{pattern}$"), op))
    return table


def route(service: str, request: HttpRequest) -> tuple[OperationModel, dict[str, str]]:
    op, labels = _route(service, request.method, request.path)
    return op, dict(labels)


@functools.lru_cache(maxsize=1024)
def _route(service: str, method: str, path: str) -> tuple[OperationModel, tuple]:
    """Remembered per path: a client calls the same endpoint's path over and over."""
    for verb, pattern, op in _routes(service):
        match = pattern.match(path)
        if match and verb == method:
            return op, tuple((k, urllib.parse.unquote(v)) for k, v in match.groupdict().items())
    raise errors.unknown_operation(f"No {service} operation answers {method} {path}.")


@dataclass(frozen=True)
class _InputPlan:
    """Where each input member travels, read once per operation instead of walking botocore's
    shapes on every request: (name, wire name) from the URI, (name, lower-case wire name, wire
    name, shape) from headers, (name, wire name) from the query string, the payload member, and
    the members a JSON body carries."""

    uri: tuple
    headers: tuple
    query: tuple
    payload: str | None
    payload_shape: object
    body_members: frozenset


@functools.lru_cache(maxsize=None)
def _input_plan(op: OperationModel) -> _InputPlan:
    shape = op.input_shape
    uri, headers, query, body = [], [], [], []
    payload = shape.serialization.get("payload")
    for name, member in shape.members.items():
        location, wire = member.serialization.get("location"), member.serialization.get("name", name)
        if location == "uri":
            uri.append((name, wire))
        elif location == "header":
            headers.append((name, wire.lower(), wire, member))
        elif location == "querystring":
            query.append((name, wire))
        elif name != payload:
            body.append(name)
    return _InputPlan(tuple(uri), tuple(headers), tuple(query), payload,
                      shape.members[payload] if payload else None, frozenset(body))


def parse(op: OperationModel, request: HttpRequest, labels: dict[str, str]) -> dict:
    shape = op.input_shape
    if shape is None:
        return {}
    plan = _input_plan(op)
    document = _located_members(plan, request, labels)
    if plan.payload:
        kind = plan.payload_shape.type_name
        if kind == "blob":
            return _with_blob(shape, document, plan.payload, request.body)
        if kind == "string":
            document[plan.payload] = _text(request.body)
        elif request.body:
            document[plan.payload] = json_object(request.body)
    elif plan.body_members and request.body:
        document.update({k: v for k, v in json_object(request.body).items() if k in plan.body_members and v is not None})
    return shapes.read_input(shape, document)


def _located_members(plan: _InputPlan, request: HttpRequest, labels: dict[str, str]) -> dict:
    """The members the URI, the headers and the query string carry, as read from the wire."""
    document = {}
    for name, wire in plan.uri:
        if labels.get(wire) is not None:
            document[name] = labels[wire]
    header = request.headers.get
    for name, wire_lower, wire, member in plan.headers:
        value = header(wire_lower)
        if value is not None:
            document[name] = _header_value(member, value, wire)
    for name, wire in plan.query:
        values = request.query.get(wire)
        if values:
            document[name] = values[0]
    return document


def _with_blob(shape, document: dict, payload: str, body: bytes) -> dict:
    """A blob payload is any bytes: what there is to check is the rest of the call (names, content
    types, attributes), which a caller repeats call after call — checked once per distinct rest.
    InvokeEndpoint comes this way on every call."""
    try:
        key = (shape, tuple(document.items()))
        hash(key)
    except TypeError:  # not a plain document: check it as it is
        return shapes.read_input(shape, {**document, payload: body})
    checked = _checked_rest(key)
    return {**checked, payload: body}


@functools.lru_cache(maxsize=1024)
def _checked_rest(key: tuple) -> dict:
    shape, items = key
    document = dict(items)
    payload = shape.serialization["payload"]
    result = shapes.read_input(shape, {**document, payload: b""})  # any bytes satisfy a blob
    result.pop(payload, None)
    return result


@functools.lru_cache(maxsize=None)
def _output_plan(op: OperationModel) -> tuple[int, str | None, tuple, tuple]:
    """The output's status, its payload member, its header members as (name, wire name), and the
    rest as (name, shape): worked out once per operation."""
    status = op.http.get("responseCode", 200)
    shape = op.output_shape
    if shape is None:
        return status, None, (), ()
    payload = shape.serialization.get("payload")
    headers = tuple((name, member.serialization.get("name", name)) for name, member in shape.members.items()
                    if member.serialization.get("location") == "header")
    rest = tuple((name, member) for name, member in shape.members.items()
                 if member.serialization.get("location") != "header")
    return status, payload, headers, rest


def serialize(op: OperationModel, result: dict, request_id: str) -> HttpResponse:
    status, payload, header_members, members = _output_plan(op)
    headers = [("x-amzn-RequestId", request_id)]
    for name, wire in header_members:
        value = result.get(name)
        if value is not None:
            headers.append((wire, str(value)))
    body: bytes = b""
    rest = {}
    for name, member in members:
        value = result.get(name)
        if value is None:
            continue
        if name == payload:
            if isinstance(value, (bytes, str)):
                body = value.encode() if isinstance(value, str) else value
            else:
                body = json.dumps(shapes.write_output(member, value)).encode()
        else:
            rest[name] = shapes.write_output(member, value)
    if rest and not payload:
        body = json.dumps(rest).encode()
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(status, headers, body)


def serialize_error(err: errors.ServiceError, request_id: str) -> HttpResponse:
    document = {"message": err.message, "Message": err.message, **err.fields}
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("X-Amzn-ErrorType", err.code),
    ]
    return HttpResponse(err.status, headers, json.dumps(document).encode())


def _text(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise errors.serialization("The request body is not valid UTF-8 text.") from None


def _header_value(member, value: str, wire: str):
    kind = member.type_name
    try:
        if kind in ("integer", "long"):
            return int(value)
        if kind in ("float", "double"):
            return float(value)
    except ValueError:
        raise errors.serialization(f"Header {wire} must be a number, not {value!r}.") from None
    if kind == "boolean":
        return value.lower() == "true"
    return value
