"""AWS json 1.1 (SageMaker's control plane): `X-Amz-Target: SageMaker.<Operation>`, JSON body.

Errors are `{"__type": code, "message": ...}` with the code also in `X-Amzn-ErrorType`, which is
what botocore's json parser reads.
"""

from __future__ import annotations

import json

from botocore.model import OperationModel

from emulator import errors
from emulator.protocol import shapes
from emulator.protocol.http import HttpRequest, HttpResponse, json_object
from emulator.protocol.models import operation_model, service_model

CONTENT_TYPE = "application/x-amz-json-1.1"


def operation_for(service: str, request: HttpRequest) -> OperationModel:
    target = request.headers.get("x-amz-target", "")
    prefix = service_model(service).metadata.get("targetPrefix", "")
    name = target[len(prefix) + 1:] if target.startswith(prefix + ".") else ""
    op = operation_model(service, name) if name else None
    if op is None:
        raise errors.unknown_operation(f"Operation {name or target!r} is not a {prefix} operation.")
    return op


def parse(op: OperationModel, request: HttpRequest) -> dict:
    if request.method != "POST":
        raise errors.ServiceError("InvalidAction", "json 1.1 operations are POSTed.", 400)
    body = request.body.strip()
    document = json_object(body) if body else {}  # an empty body is an operation without input
    return shapes.read_input(op.input_shape, document)


def serialize(op: OperationModel, result: dict | None, request_id: str) -> HttpResponse:
    document = shapes.write_output(op.output_shape, result or {}) or {}
    return HttpResponse(200, _headers(request_id), json.dumps(document).encode())


def serialize_error(err: errors.ServiceError, request_id: str) -> HttpResponse:
    document = {"__type": err.code, "message": err.message, **err.fields}
    headers = _headers(request_id) + [("X-Amzn-ErrorType", err.code)]
    return HttpResponse(err.status, headers, json.dumps(document).encode())


def _headers(request_id: str) -> list[tuple[str, str]]:
    return [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", request_id)]
