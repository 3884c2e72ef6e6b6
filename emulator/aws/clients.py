"""How smlocal's own services reach S3, CloudWatch and CloudWatch Logs.

boto3 clients go over HTTP to smlocal itself (the same moto, the same persistence as any caller)
and carry the resource's account in moto's `x-moto-account-id` header, so a job of account A reads
A's buckets whatever access key created it. With `--auth` they sign with smlocal's internal key
(`use_credentials`), the only key whose account header is honoured. Log lines are the exception: they are written straight
into the in-process moto Logs backend (aws/embedded.LogWriter), since a chatty container would
otherwise cost more in botocore than in its own work.
"""

from __future__ import annotations

import threading

import boto3
from botocore.config import Config

from emulator.aws.embedded import LogWriter

_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=32,
                 connect_timeout=10, read_timeout=300)


class AwsClients:
    def __init__(self, endpoint_url: str | None = None):
        self.endpoint_url = endpoint_url
        self._cache: dict[tuple[str, str, str], object] = {}
        self._lock = threading.Lock()
        self._session = boto3.session.Session()
        self._credentials = ("smlocal", "smlocal")  # any key does while smlocal checks no signatures

    def use_credentials(self, access_key: str, secret: str) -> None:
        """Sign with this key pair from now on: with --auth, smlocal's internal key
        (Authenticator.internal_credentials), the only one allowed to name the account it acts for."""
        with self._lock:
            self._credentials = (access_key, secret)
            self._cache.clear()

    def set_endpoint(self, url: str) -> None:
        with self._lock:
            self.endpoint_url = url
            self._cache.clear()

    def client(self, service: str, account: str, region: str):
        if self.endpoint_url is None:
            raise RuntimeError("smlocal's own endpoint is not known yet (the server has not bound its port)")
        key = (service, account, region)
        with self._lock:
            client = self._cache.get(key)
            if client is None:
                client = self._session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url, config=_CONFIG,
                    aws_access_key_id=self._credentials[0], aws_secret_access_key=self._credentials[1],
                )
                client.meta.events.register("before-sign", _account_header(account))
                self._cache[key] = client
            return client

    def s3(self, account: str, region: str):
        return self.client("s3", account, region)

    def log_writer(self, account: str, region: str) -> LogWriter:
        """The writer for smlocal's own log streams. Always the embedded one: smlocal's clients only
        ever talk to smlocal itself, whose moto runs in this process."""
        return LogWriter(account, region)


def _account_header(account: str):
    def add(request, **kwargs):
        request.headers["x-moto-account-id"] = account

    return add
