"""Make unchanged client code — boto3, the SageMaker Python SDK — use smlocal.

`AWS_ENDPOINT_URL` already redirects every boto3 client that is created without an explicit
endpoint. The SageMaker SDK, though, builds its STS client with an explicit regional AWS endpoint
(`sts_regional_endpoint`), which wins over the variable. `use_smlocal()` closes that gap: from then
on, any client created with an explicit `https://….amazonaws.com` endpoint is sent to smlocal too.

    import sdk_shim
    sdk_shim.use_smlocal()                 # reads AWS_ENDPOINT_URL, or pass the URL
    import sagemaker
    session = sagemaker.Session()          # every call now reaches smlocal

It talks HTTP only: nothing here imports the emulator.
"""

from __future__ import annotations

import functools
import os
import urllib.parse

_ORIGINAL = None
_TARGET: str | None = None


def _is_aws(url: str | None) -> bool:
    if not url:
        return False
    host = urllib.parse.urlsplit(url).hostname or ""
    return host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")


def use_smlocal(endpoint_url: str | None = None) -> str:
    """Redirect every botocore client created from now on to smlocal; returns the URL used."""
    global _ORIGINAL, _TARGET
    import botocore.session

    url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        raise ValueError("use_smlocal() needs the smlocal URL, or AWS_ENDPOINT_URL set to it")
    os.environ["AWS_ENDPOINT_URL"] = url
    _TARGET = url
    if _ORIGINAL is None:
        _ORIGINAL = botocore.session.Session.create_client

        @functools.wraps(_ORIGINAL)
        def create_client(self, service_name, *args, **kwargs):
            if kwargs.get("endpoint_url") is None or _is_aws(kwargs.get("endpoint_url")):
                kwargs["endpoint_url"] = _TARGET
            return _ORIGINAL(self, service_name, *args, **kwargs)

        botocore.session.Session.create_client = create_client
    return url


def stop_using_smlocal() -> None:
    """Undo `use_smlocal()` (for tests)."""
    global _ORIGINAL, _TARGET
    if _ORIGINAL is not None:
        import botocore.session

        botocore.session.Session.create_client = _ORIGINAL
        _ORIGINAL = None
    _TARGET = None
