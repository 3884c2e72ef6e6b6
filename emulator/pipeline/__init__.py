"""The request pipeline: every request on smlocal's port goes through one ordered chain of handlers
(emulator/pipeline/chain.py), InvokeEndpoint included."""

from emulator.pipeline.chain import READ_TIMEOUT, Pipeline

__all__ = ["Pipeline", "READ_TIMEOUT"]
