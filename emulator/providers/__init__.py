"""Providers translate: one method per operation, named by botocore's `xform_name`."""

from __future__ import annotations

import importlib.util
import inspect

from botocore import xform_name

from emulator.protocol.models import service_model

# TEMPORARY: while the connection-level server (emulator/http_protocol.py, asgi.py) is in the tree,
# its WSGI gateway calls every handler from a thread; the request pipeline that replaces it awaits
# coroutine handlers, and with http_protocol.py gone this turns itself off.
_THREADED_GATEWAY = importlib.util.find_spec("emulator.http_protocol") is not None


def handler_table(service: str, providers: list) -> dict:
    """Operation name → bound method, for every operation some provider implements."""
    table = {}
    for name in service_model(service).operation_names:
        method_name = xform_name(name)
        for provider in providers:
            method = getattr(provider, method_name, None)
            if method is not None:
                table[name] = method
                if _THREADED_GATEWAY and inspect.iscoroutinefunction(method) and hasattr(provider, "blocking"):
                    table[name] = provider.blocking(method)
                break
    return table
