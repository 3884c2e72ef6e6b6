"""Providers translate: one method per operation, named by botocore's `xform_name`."""

from __future__ import annotations

from botocore import xform_name

from emulator.protocol.models import service_model

def handler_table(service: str, providers: list) -> dict:
    """Operation name → bound method, for every operation some provider implements."""
    table = {}
    for name in service_model(service).operation_names:
        method_name = xform_name(name)
        for provider in providers:
            method = getattr(provider, method_name, None)
            if method is not None:
                table[name] = method
                break
    return table
