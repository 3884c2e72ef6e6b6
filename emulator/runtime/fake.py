"""An in-memory runtime for unit and API tests: every server is 'healthy' at once, nothing runs."""

from __future__ import annotations

import threading

from emulator.runtime.base import Runtime, ServerHandle, ServerSpec


class FakeRuntime(Runtime):
    name = "fake"

    def __init__(self):
        self.servers: dict[str, ServerHandle] = {}
        # Tests clear the gate to hold servers "starting", so in-flight states can be observed.
        self.gate = threading.Event()
        self.gate.set()

    def start_server(self, spec: ServerSpec) -> ServerHandle:
        self.gate.wait(timeout=60)
        handle = ServerHandle(spec, url=f"fake://{spec.endpoint}/{spec.variant}/{spec.instance_id}")
        self.servers[spec.instance_id] = handle
        return handle

    def stop_server(self, handle: ServerHandle) -> None:
        self.servers.pop(handle.spec.instance_id, None)
