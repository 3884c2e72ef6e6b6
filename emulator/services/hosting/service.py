"""Endpoint lifecycles: Creating → InService | Failed, Updating → InService, Deleting → gone.

The service owns each endpoint's fleet (instances per variant), publishes the router's routes,
replaces instances that die, and changes fleets blue/green: a new fleet comes up and turns healthy
while the old one serves, the route switches in one step, and the old fleet drains, then stops. If
the new fleet fails, the old one keeps serving and the endpoint goes back to InService with the
failure in FailureReason.

After a restart, an endpoint that was InService says Updating until its new fleet answers /ping,
and calls that arrive meanwhile wait for it (the router's `restoring` registry) rather than hear
that it does not exist.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from emulator.context import Clock
from emulator.runtime.base import Runtime, RuntimeUnavailable
from emulator.services.credentials import Issuer, fixed_pair
from emulator.services.hosting.fleet import Container, InstanceLauncher, containers_with_hostnames, prepare_model
from emulator.services.hosting.router import Instance, Route, Router, VariantRoute
from emulator.services.background import BackgroundTasks
from emulator.store import Resource, Store

log = logging.getLogger("smlocal.hosting")

IN_SERVICE, CREATING, UPDATING, DELETING, FAILED = "InService", "Creating", "Updating", "Deleting", "Failed"
DRAIN_SECONDS = 60.0


@dataclass
class Fleet:
    launcher: InstanceLauncher
    work: Path
    variants: dict[str, VariantRoute]
    containers: dict[str, list[Container]]
    replacing: set = field(default_factory=set)


class HostingService:
    def __init__(self, store: Store, runtime: Runtime, background: BackgroundTasks, router: Router, clients=None,
                 work_dir: Path | None = None, startup_timeout: float = 240.0, stop_grace_seconds: float = 30.0,
                 clock: Clock | None = None, credentials: Issuer = fixed_pair):
        self.store, self.runtime, self.background, self.router = store, runtime, background, router
        self.credentials = credentials  # each instance's containers: their model's role's credentials
        self.clients, self.work_dir = clients, work_dir
        self.startup_timeout, self.stop_grace = startup_timeout, min(stop_grace_seconds, 30.0)
        self.clock = clock or Clock()
        self.fleets: dict[str, Fleet] = {}
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._closing = threading.Event()
        self._monitor = threading.Thread(target=self._watch, name="hosting-monitor", daemon=True)
        self._monitor.start()

    # -- what the provider asks for -----------------------------------------------------------

    def create(self, endpoint: Resource, config: dict) -> None:
        self.background.submit(self._bring_up, endpoint.arn, config)

    def update(self, endpoint: Resource, config: dict) -> None:
        self.background.submit(self._switch, endpoint.arn, config)

    def update_weights(self, endpoint: Resource) -> None:
        self.background.submit(self._apply_weights, endpoint.arn)

    def delete(self, endpoint: Resource) -> None:
        self.background.submit(self._tear_down, endpoint.arn)

    def recover(self) -> None:
        """At start: endpoints that were live or in flight come back up; deletions finish."""
        for status in (CREATING, UPDATING, IN_SERVICE):
            for res in self.store.all("endpoint", status):
                key = (res.account, res.region, res.name)
                self.router.restoring[key] = threading.Event()
                if status == IN_SERVICE:  # not yet: its containers are not there
                    self._set(res, UPDATING)
                self.background.submit(self._restore, res.arn, key, res.data.get("_Config", {}))
        for res in self.store.all("endpoint", DELETING):
            self.background.submit(self._tear_down, res.arn)

    def _restore(self, arn: str, key: tuple[str, str, str], config: dict) -> None:
        """Bring an endpoint back after a restart; calls waiting for it go on once it serves or failed."""
        try:
            self._bring_up(arn, config)
        finally:
            self.router.restoring.pop(key).set()

    # -- lifecycles ---------------------------------------------------------------------------

    def _bring_up(self, arn: str, config: dict) -> None:
        with self._locks[arn]:
            res = self.store.get_by_arn(arn)
            if res is None or res.status == DELETING:
                return
            try:
                fleet = self._build(res, config)
            except RuntimeUnavailable as exc:
                self._set(res, FAILED, FailureReason=str(exc))
                return
            self.fleets[arn] = fleet
            self.router.publish(self._route(res, fleet))
            res.data["ProductionVariants"] = self._summaries(config, fleet)
            res.data.pop("FailureReason", None)
            self._set(res, IN_SERVICE)

    def _switch(self, arn: str, config: dict) -> None:
        with self._locks[arn]:
            res = self.store.get_by_arn(arn)
            if res is None:
                return
            try:
                fleet = self._build(res, config)
            except RuntimeUnavailable as exc:  # roll back: the old fleet never stopped serving
                res.data.update(res.data.pop("_Previous", {}))
                self._set(res, IN_SERVICE, FailureReason=str(exc))
                return
            old = self.fleets.get(arn)
            self.fleets[arn] = fleet
            self.router.publish(self._route(res, fleet))
            res.data.pop("_Previous", None)
            res.data["ProductionVariants"] = self._summaries(config, fleet)
            self._set(res, IN_SERVICE)
        if old is not None:
            self.background.submit(self._retire, old)

    def _apply_weights(self, arn: str) -> None:
        with self._locks[arn]:
            res = self.store.get_by_arn(arn)
            fleet = self.fleets.get(arn)
            if res is None or fleet is None:
                return
            dropped: list[Instance] = []
            failure = {}
            try:
                for summary in res.data.get("ProductionVariants", []):
                    variant = fleet.variants[summary["VariantName"]]
                    if "DesiredInstanceCount" in summary and variant.on_demand is None:
                        dropped += self._resize(fleet, variant, summary["DesiredInstanceCount"])
                        summary["CurrentInstanceCount"] = len(variant.instances)
                    variant.weight = summary["CurrentWeight"] = summary.get("DesiredWeight", variant.weight)
            except RuntimeUnavailable as exc:
                failure = {"FailureReason": str(exc)}
            self.router.publish(self._route(res, fleet))  # no new call goes to a dropped instance
            if dropped:
                self.background.submit(self._drain_and_stop, dropped)
            self._set(res, IN_SERVICE, **failure)

    def _tear_down(self, arn: str) -> None:
        with self._locks[arn]:
            res = self.store.get_by_arn(arn)
            if res is not None:
                self.router.withdraw(res.account, res.region, res.name)
            fleet = self.fleets.pop(arn, None)
            if fleet is not None:
                self._stop_fleet(fleet, drain=False)
            self.store.delete(arn)
        self._locks.pop(arn, None)

    # -- fleets -------------------------------------------------------------------------------

    def _build(self, res: Resource, config: dict) -> Fleet:
        work = Path(self.work_dir) / "endpoints" / f"{res.name}-{uuid.uuid4().hex[:8]}"
        s3 = self.clients.s3(res.account, res.region) if self.clients else None
        log_writer = self.clients.log_writer(res.account, res.region) if self.clients else None
        launcher = InstanceLauncher(self.runtime, log_writer, res.account, res.region, res.name, work,
                                    self.startup_timeout, self.credentials)
        fleet = Fleet(launcher, work, {}, {})
        try:
            for variant in config.get("ProductionVariants", []):
                self._build_variant(res, fleet, variant, s3)
        except Exception as exc:
            self._stop_fleet(fleet, drain=False)
            if isinstance(exc, RuntimeUnavailable):
                raise
            log.exception("bringing up %s failed", res.name)
            raise RuntimeUnavailable(f"InternalServerError: {exc}") from None
        return fleet

    def _build_variant(self, res: Resource, fleet: Fleet, variant: dict, s3) -> None:
        name = variant["VariantName"]
        model = self.store.get("model", res.account, res.region, variant["ModelName"])
        if model is None:
            raise RuntimeUnavailable(f'Could not find model "{res.arn.split(":endpoint/")[0]}:model/'
                                     f'{variant["ModelName"].lower()}".')
        containers = [
            Container(c.get("Image", ""), dict(c.get("Environment", {})),
                      prepare_model(s3, c, fleet.work / name / f"model-{i}") if s3 else fleet.work / name,
                      c["ContainerHostname"], model.data.get("ExecutionRoleArn", ""))
            for i, c in enumerate(containers_with_hostnames(model.data))
        ]
        fleet.containers[name] = containers
        timeout = variant.get("ContainerStartupHealthCheckTimeoutInSeconds")
        direct = (model.data.get("InferenceExecutionConfig") or {}).get("Mode") == "Direct"
        route = VariantRoute(name, float(variant.get("InitialVariantWeight", 1.0)), direct=direct)
        fleet.variants[name] = route
        if "ServerlessConfig" in variant:
            route.on_demand = self._on_demand(fleet, route)
            return
        count = variant.get("InitialInstanceCount", 1)
        route.instances = self._launch_many(fleet, name, count, timeout)

    def _launch_many(self, fleet: Fleet, variant: str, count: int, timeout=None) -> list[Instance]:
        if count <= 0:
            return []
        with ThreadPoolExecutor(max_workers=min(count, 8)) as pool:
            futures = [pool.submit(fleet.launcher.launch, variant, fleet.containers[variant], timeout)
                       for _ in range(count)]
            instances, failure = [], None
            for future in futures:
                try:
                    instances.append(future.result())
                except Exception as exc:
                    failure = failure or exc
        if failure is not None:
            self._stop_instances(instances)
            raise failure if isinstance(failure, RuntimeUnavailable) else RuntimeUnavailable(str(failure))
        return instances

    def _on_demand(self, fleet: Fleet, route: VariantRoute):
        """Serverless: one instance, started by the first call (a cold start)."""
        lock = threading.Lock()

        def start() -> Instance | None:
            with lock:
                healthy = route.pick()
                if healthy is not None:
                    return healthy
                route.instances = self._launch_many(fleet, route.name, 1)
                return route.pick()

        return start

    def _resize(self, fleet: Fleet, variant: VariantRoute, want: int) -> list[Instance]:
        """Start or drop instances; returns the dropped ones, for the caller to drain and stop once
        the route without them is published."""
        have = len(variant.instances)
        if want > have:
            variant.instances = variant.instances + self._launch_many(fleet, variant.name, want - have)
        elif want < have:
            variant.instances, dropped = variant.instances[:want], variant.instances[want:]
            return dropped
        return []

    def _retire(self, fleet: Fleet) -> None:
        self._stop_fleet(fleet, drain=True)

    def _stop_fleet(self, fleet: Fleet, drain: bool) -> None:
        instances = [i for v in fleet.variants.values() for i in v.instances]
        if drain:
            self._drain_and_stop(instances)
        else:
            self._stop_instances(instances)
        fleet.launcher.close()
        shutil.rmtree(fleet.work, ignore_errors=True)

    def _drain_and_stop(self, instances: list[Instance]) -> None:
        deadline = time.monotonic() + DRAIN_SECONDS
        while self.router.busy(instances) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop_instances(instances)

    def _stop_instances(self, instances: list[Instance]) -> None:
        """Stop every container at once: each may take its whole grace period."""
        for instance in instances:
            instance.healthy = False
        servers = [(i, s) for i in instances for s in i.servers]
        if servers:
            with ThreadPoolExecutor(max_workers=min(len(servers), 16)) as pool:
                list(pool.map(lambda pair: self._stop_server(*pair), servers))
        for instance in instances:
            instance.close()

    def _stop_server(self, instance: Instance, server) -> None:
        try:
            server.stop(self.stop_grace)
        except Exception:
            log.exception("stopping instance %s failed", instance.id)

    # -- health -------------------------------------------------------------------------------

    def _watch(self) -> None:
        """Replace instances whose container died; traffic meanwhile goes to the others."""
        while not self._closing.wait(0.5):
            for arn, fleet in list(self.fleets.items()):
                for variant in list(fleet.variants.values()):
                    for instance in list(variant.instances):
                        dead = any(s.exit_code() is not None for s in instance.servers)
                        if (dead or not instance.healthy) and instance.id not in fleet.replacing:
                            instance.healthy = False
                            fleet.replacing.add(instance.id)
                            self.background.submit(self._replace, arn, fleet, variant, instance)

    def _replace(self, arn: str, fleet: Fleet, variant: VariantRoute, dead: Instance) -> None:
        try:
            fresh = fleet.launcher.launch(variant.name, fleet.containers[variant.name])
        except Exception:
            log.exception("replacing instance %s of %s failed; will retry", dead.id, arn)
            time.sleep(2.0)
            fleet.replacing.discard(dead.id)
            return
        if self.fleets.get(arn) is not fleet:  # the fleet was replaced or deleted meanwhile
            self._stop_instances([fresh])
        else:
            variant.instances = [fresh if i is dead else i for i in variant.instances]
            self._republish(arn, fleet)
        self._stop_instances([dead])
        fleet.replacing.discard(dead.id)

    def _republish(self, arn: str, fleet: Fleet) -> None:
        """A fleet changed in place (an instance replaced): route calls by its new instances."""
        with self._locks[arn]:
            res = self.store.get_by_arn(arn)
            if res is not None and self.fleets.get(arn) is fleet:
                self.router.publish(self._route(res, fleet))

    # -- records ------------------------------------------------------------------------------

    @staticmethod
    def _route(res: Resource, fleet: Fleet) -> Route:
        config = res.data.get("_Config", {})
        return Route(res.name, res.arn, res.account, res.region, dict(fleet.variants),
                     async_config=config.get("AsyncInferenceConfig"))

    def _summaries(self, config: dict, fleet: Fleet) -> list[dict]:
        now = self.clock.now()
        summaries = []
        for variant in config.get("ProductionVariants", []):
            route = fleet.variants[variant["VariantName"]]
            summary = {"VariantName": route.name, "CurrentWeight": route.weight, "DesiredWeight": route.weight,
                       "DeployedImages": [{"SpecifiedImage": c.image, "ResolvedImage": c.image,
                                           "ResolutionTime": now} for c in fleet.containers[route.name]]}
            if "ServerlessConfig" in variant:
                summary.update(CurrentServerlessConfig=variant["ServerlessConfig"],
                               DesiredServerlessConfig=variant["ServerlessConfig"])
            else:
                summary.update(CurrentInstanceCount=len(route.instances),
                               DesiredInstanceCount=variant.get("InitialInstanceCount", 1))
            summaries.append(summary)
        return summaries

    def _set(self, res: Resource, status: str, **fields) -> None:
        res.status = res.data["EndpointStatus"] = status
        res.data.update(fields)
        res.modified = res.data["LastModifiedTime"] = self.clock.now()
        self.store.update(res, fields.get("FailureReason"))

    def stop_watching(self) -> None:
        """smlocal is stopping: an instance that dies from now on is not replaced."""
        self._closing.set()

    def close(self) -> None:
        self._closing.set()
        fleets = [self.fleets.pop(arn) for arn in list(self.fleets)]
        self._stop_instances([i for f in fleets for v in f.variants.values() for i in v.instances])
        for fleet in fleets:
            fleet.launcher.close()
            shutil.rmtree(fleet.work, ignore_errors=True)
