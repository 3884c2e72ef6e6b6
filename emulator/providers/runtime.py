"""SageMaker Runtime: InvokeEndpoint, InvokeEndpointWithResponseStream and InvokeEndpointAsync,
through the router.

The real-time calls are coroutines on the server's loop (a call waiting for its container holds no
thread); InvokeEndpointAsync answers at once and runs the call later from a background thread. The
body's size is the request pipeline's to check, once, before a call gets here."""

from __future__ import annotations

import json
import logging
import uuid

from emulator import errors
from emulator.protocol import eventstream
from emulator.protocol.http import HttpResponse
from emulator.aws.s3_objects import split_s3_uri

log = logging.getLogger("smlocal.runtime")


class RuntimeProvider:
    def __init__(self, router, clients=None, background=None):
        self.router = router
        self.clients = clients
        self.background = background

    async def invoke_endpoint(self, ctx, params):
        return await self.router.invoke(ctx.account, ctx.region, params)

    async def invoke_endpoint_with_response_stream(self, ctx, params):
        answer = await self.router.stream(ctx.account, ctx.region, params)
        headers = [("Content-Type", eventstream.CONTENT_TYPE), ("x-amzn-RequestId", ctx.request_id),
                   ("x-Amzn-Invoked-Production-Variant", answer["InvokedProductionVariant"])]
        if answer.get("ContentType"):
            headers.append(("X-Amzn-SageMaker-Content-Type", answer["ContentType"]))
        if answer.get("CustomAttributes"):
            headers.append(("X-Amzn-SageMaker-Custom-Attributes", answer["CustomAttributes"]))
        return HttpResponse(200, headers, _Events(answer["Body"]))

    def invoke_endpoint_async(self, ctx, params):
        self.router.wait_restored(ctx.account, ctx.region, params["EndpointName"])  # a thread: it may block
        route = self.router.find(ctx.account, ctx.region, params["EndpointName"])
        config = route.async_config
        if not config:
            raise errors.ServiceError(
                "ValidationError", f"Endpoint {route.endpoint} is not configured for asynchronous inference "
                "(its endpoint configuration has no AsyncInferenceConfig).")
        inference_id = params.get("InferenceId") or str(uuid.uuid4())
        output = config["OutputConfig"]
        result = {"InferenceId": inference_id,
                  "OutputLocation": f"{output['S3OutputPath'].rstrip('/')}/{inference_id}.out"}
        if output.get("S3FailurePath"):
            result["FailureLocation"] = f"{output['S3FailurePath'].rstrip('/')}/{inference_id}-error.out"
        self.background.submit(self._run_async, ctx.account, ctx.region, dict(params), result)
        return result

    def _run_async(self, account, region, params, result) -> None:
        s3 = self.clients.s3(account, region)
        try:
            bucket, key = split_s3_uri(params["InputLocation"])
            params["Body"] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            answer = self.router.invoke_blocking(account, region, params)
            bucket, key = split_s3_uri(result["OutputLocation"])
            s3.put_object(Bucket=bucket, Key=key, Body=answer["Body"],
                          ContentType=answer.get("ContentType") or "application/octet-stream")
        except Exception as exc:
            log.info("async inference %s failed: %s", result["InferenceId"], exc)
            target = result.get("FailureLocation")
            if target:
                bucket, key = split_s3_uri(target)
                message = exc.message if isinstance(exc, errors.ServiceError) else str(exc)
                s3.put_object(Bucket=bucket, Key=key, Body=message.encode(), ContentType="text/plain")


class _Events:
    """The container's answer as PayloadPart events, a failure mid-stream as ModelStreamError.
    Closing it closes the answer (its instance is free again), even before the first event: an
    async generator would skip its cleanup if closed before it started."""

    def __init__(self, pieces):
        self._pieces = pieces
        self._ended = False

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> bytes:
        if self._ended:
            raise StopAsyncIteration
        try:
            piece = b""
            while not piece:
                piece = await self._pieces.__anext__()
            return eventstream.event("PayloadPart", piece)
        except StopAsyncIteration:
            self._ended = True
            raise
        except Exception as exc:
            await self.aclose()
            return eventstream.exception("ModelStreamError", json.dumps(
                {"Message": f"The model stream broke: {exc}", "ErrorCode": "ModelStreamError"}).encode())

    async def aclose(self) -> None:
        self._ended = True
        await self._pieces.aclose()
