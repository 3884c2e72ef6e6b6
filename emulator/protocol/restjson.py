"""AWS rest-json (SageMaker Runtime): operations found by method and URI template, members read
from the URI, headers, query string and payload exactly where the model locates them."""

from __future__ import annotations

import functools
import json
import re
import urllib.parse

from botocore.model import OperationModel

from emulator import errors
from emulator.protocol import shapes
from emulator.protocol.http import HttpRequest, HttpResponse
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
    for method, pattern, op in _routes(service):
        match = pattern.match(request.path)
        if match and method == request.method:
            return op, {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
    raise errors.unknown_operation(f"No {service} operation answers {request.method} {request.path}.")


@functools.lru_cache(maxsize=None)
def _input_plan(op: OperationModel) -> tuple[str | None, tuple]:
    """The input shape's payload member and, per member, (name, location, wire name, its lower-case
    form, shape): read once per operation instead of walking botocore's shapes on every request."""
    shape = op.input_shape
    members = tuple(
        (name, member.serialization.get("location"), member.serialization.get("name", name),
         member.serialization.get("name", name).lower(), member)
        for name, member in shape.members.items())
    return shape.serialization.get("payload"), members


def parse(op: OperationModel, request: HttpRequest, labels: dict[str, str]) -> dict:
    shape = op.input_shape
    if shape is None:
        return {}
    document, body_members = {}, {}
    payload, members = _input_plan(op)
    for name, location, wire, wire_lower, member in members:
        if location == "uri":
            document[name] = labels.get(wire)
        elif location == "header":
            value = request.headers.get(wire_lower)
            if value is not None:
                document[name] = _header_value(member, value, wire)
        elif location == "querystring":
            values = request.query.get(wire)
            if values:
                document[name] = values[0]
        elif name == payload:
            if member.type_name in ("blob", "string"):
                document[name] = request.body if member.type_name == "blob" else request.body.decode()
            elif request.body:
                document[name] = _json(request.body)
        else:
            body_members[name] = member
    if body_members and request.body and not payload:
        body = _json(request.body)
        document.update({k: v for k, v in body.items() if k in body_members})
    return shapes.read_input(shape, {k: v for k, v in document.items() if v is not None})


def serialize(op: OperationModel, result: dict, request_id: str) -> HttpResponse:
    shape = op.output_shape
    headers = [("x-amzn-RequestId", request_id)]
    body: bytes = b""
    payload = shape.serialization.get("payload") if shape else None
    rest = {}
    for name, member in (shape.members.items() if shape else ()):
        value = result.get(name)
        if value is None:
            continue
        location = member.serialization.get("location")
        if location == "header":
            headers.append((member.serialization.get("name", name), str(value)))
        elif name == payload:
            if isinstance(value, (bytes, str)):
                body = value.encode() if isinstance(value, str) else value
            else:
                body = json.dumps(shapes.write_output(member, value)).encode()
        else:
            rest[name] = shapes.write_output(member, value)
    if rest and not payload:
        body = json.dumps(rest).encode()
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(op.http.get("responseCode", 200), headers, body)


def serialize_error(err: errors.ServiceError, request_id: str) -> HttpResponse:
    document = {"message": err.message, "Message": err.message, **err.fields}
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("X-Amzn-ErrorType", err.code),
    ]
    return HttpResponse(err.status, headers, json.dumps(document).encode())


def _json(body: bytes) -> dict:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise errors.serialization("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise errors.serialization("The request body must be a JSON object.")
    return document


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
