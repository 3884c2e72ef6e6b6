"""SageMaker Runtime: InvokeEndpoint through the router, with AWS's validation of the call."""

from __future__ import annotations

from emulator import errors

MAX_BODY = 6 * 1024 * 1024  # 6 MB, as real-time endpoints accept


class RuntimeProvider:
    def __init__(self, router):
        self.router = router

    def invoke_endpoint(self, ctx, params):
        body = params.get("Body", b"")
        if len(body) > MAX_BODY:
            raise errors.ServiceError(
                "ValidationError", f"Received payload size of {len(body)} bytes exceeds the maximum of "
                f"{MAX_BODY} bytes (6 MB) for a real-time endpoint.")
        return self.router.invoke(ctx.account, ctx.region, params)
