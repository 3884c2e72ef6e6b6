"""Runs training hosts (and, later, serving instances) as Docker containers via docker-py.

SageMaker's way: `docker run IMAGE train` with the host's /opt/ml bind-mounted, hostname algo-N, a
bridge network per multi-host job on which hosts resolve each other by name, no network at all
under EnableNetworkIsolation, GPUs only where the engine has them. Containers reach smlocal (for
S3) on the default bridge's gateway address, where smlocal also listens.

Every container and network carries the server's owner id (label `smlocal.owner`, see
emulator/runtime/ownership.py): several servers share one engine, each removes only its own, and a
server restarted on the same data directory removes what its killed predecessor left.
"""

from __future__ import annotations

import calendar
import ipaddress
import os
import threading
import time
import uuid
from typing import Iterator

from emulator.runtime import contract
from emulator.runtime.base import (READ_PAUSE_SECONDS, Runtime, RuntimeUnavailable, ServerProcess, ServerSpec,
                                   TrainingHostSpec, TrainingProcess, split_lines)
from emulator.runtime.images import BUILTIN_IMAGE, resolve
from emulator.runtime.instance_types import resources

GPU_FAMILIES = ("ml.p", "ml.g", "ml.trn", "ml.inf")
LABEL = "smlocal"
OWNER_LABEL = f"{LABEL}.owner"


class Container(TrainingProcess):
    def __init__(self, client, container_id: str):
        self.client = client
        self.id = container_id
        self._code: int | None = None
        self._exited = threading.Event()
        threading.Thread(target=self._wait, name=f"wait-{container_id[:12]}", daemon=True).start()

    def _wait(self) -> None:
        try:
            self._code = self.client.api.wait(self.id)["StatusCode"]
        except Exception:
            self._code = -1
        self._exited.set()

    def lines(self) -> Iterator[str]:
        return split_lines(self._output())

    def stamped_lines(self) -> Iterator[tuple[float, str]]:
        """Each line with the time the engine received it, whenever it is read."""
        for line in split_lines(self._output(timestamps=True)):
            stamp, _, text = line.partition(" ")
            yield _seconds(stamp), text

    def _output(self, timestamps: bool = False) -> Iterator[bytes]:
        """stdout and stderr as Docker streams them (frames: an 8-byte header, then the bytes), read in
        batches. docker-py's own log stream makes two reads per frame and wakes its reader for every
        line; a server that logs every request then costs smlocal more CPU than the request itself.
        Here a reader that has been awake for more than a millisecond (it waited for output, or read
        a line at a time as a busy server wrote them) pauses a moment (READ_PAUSE_SECONDS), then
        drains what gathered meanwhile without waiting. The engine sends each write of the
        container as a chunk of its own, and a read returns one chunk: so it is the time awake, not
        one read's wait, that tells a reader keeping up with a stream of lines from one draining a
        backlog."""
        api = self.client.api
        try:
            response = api.get(f"{api.base_url}/v{api.api_version}/containers/{self.id}/logs",
                               params={"follow": 1, "stdout": 1, "stderr": 1, "timestamps": int(timestamps)},
                               stream=True, timeout=None)
            response.raise_for_status()
        except Exception:  # the container is gone already: nothing more to read
            return
        pending = b""
        try:
            awake_since = time.monotonic()
            while True:
                block = response.raw.read1(256 * 1024)
                if not block:
                    break
                payload, pending = _frames(pending + block)
                if payload:
                    yield payload
                if time.monotonic() - awake_since > 0.001:
                    time.sleep(READ_PAUSE_SECONDS)
                    awake_since = time.monotonic()
        except Exception:  # the connection dropped (the engine stopped, the container was removed)
            pass
        finally:
            response.close()

    def wait(self, timeout=None):
        self._exited.wait(timeout)
        return self._code if self._exited.is_set() else None

    def terminate(self, grace_seconds: float) -> None:
        try:
            self.client.api.stop(self.id, timeout=max(1, int(round(grace_seconds))))
        except Exception:
            pass
        self._exited.wait(30)

    def out_of_memory(self) -> bool:
        try:
            return bool(self.client.api.inspect_container(self.id)["State"].get("OOMKilled"))
        except Exception:  # removed already: nothing tells any more
            return False

    def remove(self) -> None:
        try:
            self.client.api.remove_container(self.id, force=True)
        except Exception:  # gone already, or the engine is: nothing left to free here
            pass
        self.removed = True


def _seconds(stamp: str) -> float:
    """Docker's RFC 3339 timestamp with nanoseconds (`2026-12-08T04:05:06.123456789Z`), in epoch
    seconds; now, if it is not one."""
    try:
        whole = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
        fraction = stamp[20:].rstrip("Z")
        return whole + (float("0." + fraction) if stamp[19:20] == "." and fraction.isdigit() else 0.0)
    except ValueError:
        return time.time()


def _frames(data: bytes) -> tuple[bytes, bytes]:
    """The payload of every whole frame in `data` (stdout and stderr as they came), and the rest."""
    pieces, at, end = [], 0, len(data)
    while at + 8 <= end:
        length = int.from_bytes(data[at + 4:at + 8], "big")
        if at + 8 + length > end:
            break
        pieces.append(data[at + 8:at + 8 + length])
        at += 8 + length
    return b"".join(pieces), data[at:]


class ContainerServer(Container, ServerProcess):
    def __init__(self, client, container_id: str, url: str):
        super().__init__(client, container_id)
        self.url = url

    def exit_code(self) -> int | None:
        return self.wait(0)

    def stop(self, grace_seconds: float) -> None:
        self.terminate(grace_seconds)
        self.remove()


class DockerRuntime(Runtime):
    name = "docker"

    def __init__(self, process_images: dict[str, str] | None = None):
        import docker

        super().__init__()
        self.client = docker.from_env(timeout=120)
        self.process_images = process_images or {}
        bridge = self.client.networks.get("bridge").attrs["IPAM"]["Config"][0]
        self.gateway = bridge.get("Gateway", "172.17.0.1")
        self.has_gpus = "nvidia" in (self.client.info().get("Runtimes") or {})
        self._addresses: dict[str, dict[str, str]] = {}  # job network → host → fixed address

    def listen_addresses(self) -> list[str]:
        return [self.gateway]

    def container_endpoint_url(self) -> str | None:
        url = getattr(self, "endpoint_url", None)
        if not url:
            return None
        port = url.rsplit(":", 1)[-1]
        return f"http://{self.gateway}:{port}"

    # -- training -----------------------------------------------------------------------------

    def run_training(self, spec: TrainingHostSpec) -> TrainingProcess:
        target = resolve(spec.image, self.process_images)
        image, command, entrypoint = self._command(target, spec)
        api = self.client.api
        host_config = api.create_host_config(
            binds={str(spec.root): {"bind": contract.OPT_ML, "mode": "rw"}},
            network_mode="none" if spec.network_isolation else (spec.network or "bridge"),
            device_requests=self._gpus(spec.instance_type),
            extra_hosts=self._hosts_file(spec),
            init=False,
            **self._limits(spec.instance_type),
        )
        networking = None
        if spec.network and not spec.network_isolation:
            address = self._addresses.get(spec.network, {}).get(spec.host)
            networking = api.create_networking_config(
                {spec.network: api.create_endpoint_config(aliases=[spec.host], ipv4_address=address)})
        created = self._create(
            image, command=command, entrypoint=entrypoint, environment=_environment(target, spec.environment),
            hostname=spec.host, name=f"smlocal-{spec.job_name}-{spec.host}-{uuid.uuid4().hex[:6]}",
            host_config=host_config, networking_config=networking,
            labels=self._labels("training", job=spec.job_name, host=spec.host),
        )
        container_id = created["Id"]
        try:
            if spec.network and not spec.network_isolation:
                self.client.networks.get("bridge").connect(container_id)  # to reach smlocal for S3
            api.start(container_id)
        except Exception as exc:
            api.remove_container(container_id, force=True)
            raise RuntimeUnavailable(f"Docker could not start {image}: {exc}") from None
        return self._track(Container(self.client, container_id))

    # -- serving ------------------------------------------------------------------------------

    def start_server(self, spec: ServerSpec) -> ServerProcess:
        target = resolve(spec.image, self.process_images)
        image = BUILTIN_IMAGE if target.builtin else spec.image
        command = (["python3", "-m", f"algorithms.{target.algorithm}", contract.SERVE] if target.builtin
                   else [contract.SERVE])
        port = int(spec.environment.get(contract.BIND_TO_PORT_ENV, contract.SERVING_PORT))
        api = self.client.api
        binds = {}
        if spec.model_dir is not None:
            binds[str(spec.model_dir)] = {"bind": f"{contract.OPT_ML}/model", "mode": "ro"}
        host_config = api.create_host_config(binds=binds, port_bindings={f"{port}/tcp": ("127.0.0.1", None)})
        created = self._create(
            image, command=command, environment=_environment(target, spec.environment),
            hostname=spec.hostname or spec.instance_id,
            name=f"smlocal-{spec.endpoint}-{spec.variant}-{spec.instance_id}"[:120].replace("/", "-"),
            host_config=host_config, ports=[port],
            labels=self._labels("serving", endpoint=spec.endpoint, variant=spec.variant),
        )
        container_id = created["Id"]
        try:
            api.start(container_id)
            published = api.port(container_id, port)[0]["HostPort"]
        except Exception as exc:
            api.remove_container(container_id, force=True)
            raise RuntimeUnavailable(f"Docker could not start {image}: {exc}") from None
        return self._track(ContainerServer(self.client, container_id, f"http://127.0.0.1:{published}"))

    def _labels(self, kind: str, **names: str) -> dict[str, str]:
        return {LABEL: kind, OWNER_LABEL: self.owner, **{f"{LABEL}.{k}": v for k, v in names.items()}}

    def remove_leftovers(self) -> None:
        """Containers, then networks, that carry this server's owner id: an earlier run left them."""
        mine = {"label": f"{OWNER_LABEL}={self.owner}"}
        for container in self.client.api.containers(all=True, filters=mine):
            try:
                self.client.api.remove_container(container["Id"], force=True)
            except Exception:  # removed meanwhile
                pass
        for network in self.client.networks.list(filters=mine):
            try:
                network.remove()
            except Exception:  # a container is still attached to it: left for the next start
                pass

    def _limits(self, instance_type: str) -> dict:
        """With --instance-limits, the instance type's vCPUs (at most this machine's) and memory,
        with no swap beyond it (SageMaker's hosts have none)."""
        given = resources(instance_type) if self.instance_limits else None
        if given is None:
            return {}
        cpus = min(given.cpus, os.cpu_count() or given.cpus)
        return {"nano_cpus": cpus * 10 ** 9, "mem_limit": given.memory_bytes, "memswap_limit": given.memory_bytes}

    def _hosts_file(self, spec: TrainingHostSpec) -> dict | None:
        if spec.network_isolation:
            return {spec.host: "127.0.0.1"}  # without a network a container cannot resolve itself
        return self._addresses.get(spec.network) if spec.network else None

    def _command(self, target, spec: TrainingHostSpec):
        if target.builtin:
            return BUILTIN_IMAGE, ["python3", "-m", f"algorithms.{target.algorithm}", contract.TRAIN], None
        return spec.image, list(spec.arguments or [contract.TRAIN]), spec.entrypoint

    def _create(self, image: str, **options) -> dict:
        """Create a container; a missing image is the caller's error (no separate image lookup
        first: the engine answers "No such image" to the create call itself, one round trip less)."""
        import docker.errors

        try:
            return self.client.api.create_container(image, **options)
        except docker.errors.ImageNotFound:
            raise RuntimeUnavailable(
                f"The image {image} is not in the local Docker engine, and smlocal pulls from no registry. "
                f"Build or load it first (docker build -t {image} ... or docker load)."
            ) from None

    def _gpus(self, instance_type: str):
        if not self.has_gpus or not instance_type.startswith(GPU_FAMILIES):
            return None  # GPU instance types are accepted and run on the CPU where there is none
        from docker.types import DeviceRequest

        return [DeviceRequest(count=-1, capabilities=[["gpu"]])]

    def create_network(self, job_name: str, hosts: list[str]) -> str | None:
        """A bridge network where every host has a fixed address written into every host's
        /etc/hosts: Docker's DNS forgets a container the moment it exits, but on SageMaker a host
        that finished early still resolves."""
        from docker.types import IPAMConfig, IPAMPool

        name = f"smlocal-{job_name}-{uuid.uuid4().hex[:6]}"
        labels = self._labels("training", job=job_name)
        probe = self.client.networks.create(name, driver="bridge", labels=labels)
        pool = probe.attrs["IPAM"]["Config"][0]
        probe.remove()  # keep the subnet Docker chose, but as a user-configured one (fixed IPs need that)
        self.client.networks.create(name, driver="bridge", labels=labels, ipam=IPAMConfig(
            pool_configs=[IPAMPool(subnet=pool["Subnet"], gateway=pool["Gateway"])]))
        addresses = ipaddress.ip_network(pool["Subnet"]).hosts()
        taken = {pool["Gateway"]}
        free = (str(a) for a in addresses if str(a) not in taken)
        self._addresses[name] = {host: next(free) for host in hosts}
        return name

    def remove_network(self, network: str | None) -> None:
        if network:
            self._addresses.pop(network, None)
            self.client.networks.get(network).remove()

    def close(self) -> None:
        self.client.close()


def _environment(target, environment: dict) -> dict:
    """A built-in algorithm also learns which image URI it stands for (contract.IMAGE_ENV)."""
    return {**environment, contract.IMAGE_ENV: target.uri} if target.builtin else environment
