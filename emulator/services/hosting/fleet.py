"""Serving instances: the model extracted once per variant, each instance's containers started on
the runtime, their output sent to CloudWatch Logs, and /ping polled until healthy.

A container that exits or never turns healthy fails its instance with a reason that quotes its
last log lines, as AWS's FailureReason points at the logs.
"""

from __future__ import annotations

import collections
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import urllib3

from emulator.aws.s3_objects import fetch, split_s3_uri
from emulator.runtime import confined
from emulator.runtime import contract
from emulator.runtime.base import Runtime, RuntimeUnavailable, ServerSpec
from emulator.services.credentials import Issuer, Lease, fixed_pair
from emulator.services.hosting.router import Instance
from emulator.aws.logs import Flusher, LogStream

LOG_GROUP = "/aws/sagemaker/Endpoints/{endpoint}"
_PING_TIMEOUT = urllib3.Timeout(connect=1.0, read=2.0)
_PING_MAX_PAUSE = 0.1  # /ping is cheap; a longer pause only delays InService by up to that much


@dataclass
class Container:
    """What one container of a model needs to run: image, environment, model files, hostname, and
    the model's execution role (whose credentials it gets)."""

    image: str
    environment: dict
    model_dir: Path
    hostname: str
    role_arn: str = ""


def containers_with_hostnames(model: dict) -> list[dict]:
    """The model's containers with the hostnames AWS gives them (`primary` for a single one)."""
    if model.get("PrimaryContainer"):
        return [dict(model["PrimaryContainer"], ContainerHostname=model["PrimaryContainer"].get(
            "ContainerHostname", "primary"))]
    return [dict(c, ContainerHostname=c.get("ContainerHostname", f"container-{i + 1}"))
            for i, c in enumerate(model.get("Containers", []))]


def prepare_model(s3, container: dict, folder: Path) -> Path:
    """Fetch and unpack a container's model data once; instances share it read-only."""
    folder.mkdir(parents=True, exist_ok=True)
    url = container.get("ModelDataUrl")
    source = (container.get("ModelDataSource") or {}).get("S3DataSource")
    try:
        if url:
            bucket, key = split_s3_uri(url)
            archive = folder.parent / f"{folder.name}.tar.gz"
            fetch(s3, bucket, key, archive)
            with tarfile.open(archive) as tar:
                tar.extractall(folder, filter="data")
            archive.unlink()
        elif source:
            bucket, prefix = split_s3_uri(source["S3Uri"])
            if source.get("CompressionType", "None") == "Gzip" or source.get("S3DataType") == "S3Object":
                raise RuntimeUnavailable("smlocal reads ModelDataSource only as an uncompressed S3Prefix.")
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    relative = entry["Key"][len(prefix):].lstrip("/")
                    if relative and not relative.endswith("/"):  # not a "folder" placeholder
                        fetch(s3, bucket, entry["Key"], _model_file(folder, relative, bucket, entry["Key"]))
    except RuntimeUnavailable:
        raise
    except Exception as exc:
        raise RuntimeUnavailable(f"Could not download the model data {url or source}: {exc}") from None
    return folder


def _model_file(folder: Path, relative: str, bucket: str, key: str) -> Path:
    """Where an object of an S3Prefix model lands: under `folder`, or the endpoint fails."""
    try:
        target = confined.beneath(folder, relative)
    except confined.UnsafeName as exc:
        raise RuntimeUnavailable(f"Could not download the model data: the S3 key s3://{bucket}/{key} has an "
                                 f"illegal char sub-sequence '{exc.step}' in it.") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


class InstanceLauncher:
    """Starts instances of one endpoint; owns their log streams."""

    def __init__(self, runtime: Runtime, log_writer, account: str, region: str, endpoint: str, work: Path,
                 startup_timeout: float, credentials: Issuer = fixed_pair):
        self.runtime, self.log_writer, self.endpoint, self.work = runtime, log_writer, endpoint, work
        self.account, self.region = account, region
        self.startup_timeout = startup_timeout
        self.credentials = credentials
        self.group = LOG_GROUP.format(endpoint=endpoint)
        self.streams: list[LogStream] = []
        self.flusher: Flusher | None = None
        if log_writer is not None:
            log_writer.ensure_group(self.group)
            self.flusher = Flusher(self.streams)
            self.flusher.start()

    def launch(self, variant: str, containers: list[Container], timeout: float | None = None) -> Instance:
        instance_id = "i-" + uuid.uuid4().hex[:17]
        tail: collections.deque[str] = collections.deque(maxlen=20)
        stream = None
        servers = []
        lease = self._lease(containers)
        try:
            for index, container in enumerate(containers):
                server = self.runtime.start_server(ServerSpec(
                    endpoint=self.endpoint, variant=variant, instance_id=instance_id, image=container.image,
                    root=self.work / variant / instance_id / str(index), model_dir=container.model_dir,
                    environment=self._environment(container, lease), hostname=container.hostname))
                servers.append(server)
                if index == 0:  # made while the first container boots; its output waits in the pipe
                    stream = self._stream(f"{variant}/{instance_id}")
                threading.Thread(target=_pump, args=(server, stream, tail), daemon=True).start()
            for server, container in zip(servers, containers):
                self._await_health(server, container, variant, timeout or self.startup_timeout, tail)
        except Exception:
            for server in servers:
                server.stop(1.0)
            lease.release()
            raise
        arn = (f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.group}:log-stream:{variant}/{instance_id}")
        return Instance(instance_id, servers, [c.hostname for c in containers], log_stream_arn=arn,
                        release=lease.release)

    def _lease(self, containers: list[Container]) -> Lease:
        """The credentials of the model's execution role, for every container of one instance."""
        role = containers[0].role_arn if containers else ""
        try:
            return self.credentials(self.account, role, self.endpoint, self.region)
        except ValueError as exc:
            raise RuntimeUnavailable(f"ClientError: {exc}") from None

    def _environment(self, container: Container, lease: Lease) -> dict:
        """The model's variables over how the container reaches smlocal as AWS (region, endpoint,
        credentials)."""
        return {**contract.aws_environment(self.region, self.runtime.container_endpoint_url(), lease.environment),
                **container.environment}

    def _stream(self, name: str) -> LogStream | None:
        if self.log_writer is None:
            return None
        stream = LogStream(self.log_writer, name, self.group)
        self.streams.append(stream)
        return stream

    def _await_health(self, server, container: Container, variant: str, timeout: float, tail) -> None:
        pool = urllib3.connection_from_url(server.url, maxsize=1, retries=False)
        deadline, pause = time.monotonic() + timeout, 0.01
        try:
            while True:
                code = server.exit_code()
                if code is not None:
                    raise RuntimeUnavailable(self._reason(
                        f"The container {container.hostname} of production variant {variant} exited with code "
                        f"{code} before it passed the ping health check.", tail))
                try:
                    if pool.request("GET", "/ping", timeout=_PING_TIMEOUT).status == 200:
                        return
                except urllib3.exceptions.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeUnavailable(self._reason(
                        f"The primary container for production variant {variant} did not pass the ping health "
                        f"check within {timeout:.0f} seconds.", tail))
                time.sleep(pause)
                pause = min(pause * 1.5, _PING_MAX_PAUSE)
        finally:
            pool.close()

    def _reason(self, text: str, tail) -> str:
        time.sleep(0.2)  # let the last lines of a dying container arrive
        lines = " | ".join(list(tail)[-5:])
        return (f"{text} Please check CloudWatch logs for this endpoint ({self.group})."
                + (f" Last log lines: {lines}" if lines else ""))[:1024]

    def close(self) -> None:
        if self.flusher is not None:
            self.flusher.stop()


def _pump(server, stream: LogStream | None, tail) -> None:
    for line in server.lines():
        tail.append(line)
        if stream is not None:
            stream.write(line)
