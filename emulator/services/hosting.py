"""Endpoint lifecycles: Creating → InService | Failed, Updating → InService, Deleting → gone.

The service owns each endpoint's fleet (the runtime's server handles per variant) and drives the
runtime from background workers; the provider only validates and records what was asked.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict

from emulator.context import Clock
from emulator.runtime.base import Runtime, RuntimeUnavailable, ServerHandle, ServerSpec
from emulator.services.workers import Workers
from emulator.store import Resource, Store

log = logging.getLogger("smlocal.hosting")

IN_SERVICE, CREATING, UPDATING, DELETING, FAILED = "InService", "Creating", "Updating", "Deleting", "Failed"


class HostingService:
    def __init__(self, store: Store, runtime: Runtime, workers: Workers, clock: Clock | None = None):
        self.store = store
        self.runtime = runtime
        self.workers = workers
        self.clock = clock or Clock()
        self.fleets: dict[str, dict[str, list[ServerHandle]]] = {}  # endpoint arn → variant → servers
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)

    # -- what the provider asks for -----------------------------------------------------------

    def create(self, endpoint: Resource, config: dict) -> None:
        self.workers.submit(self._bring_up, endpoint.arn, config)

    def update(self, endpoint: Resource, config: dict) -> None:
        self.workers.submit(self._switch, endpoint.arn, config)

    def update_weights(self, endpoint: Resource) -> None:
        self.workers.submit(self._apply_weights, endpoint.arn)

    def delete(self, endpoint: Resource) -> None:
        self.workers.submit(self._tear_down, endpoint.arn)

    def recover(self) -> None:
        """At start: endpoints that were live or in flight are brought back up (or removed)."""
        for status in (CREATING, UPDATING, IN_SERVICE):
            for res in self.store.all("endpoint", status):
                self.workers.submit(self._bring_up, res.arn, res.data.get("_Config", {}))
        for res in self.store.all("endpoint", DELETING):
            self.workers.submit(self._tear_down, res.arn)

    # -- the work -----------------------------------------------------------------------------

    def _bring_up(self, arn: str, config: dict) -> None:
        with self._locks[arn]:
            res = self.store.get_by_arn(arn)
            if res is None or res.status == DELETING:
                return
            try:
                fleet = self._start_fleet(res, config)
            except RuntimeUnavailable as exc:
                self._set(res, FAILED, FailureReason=str(exc))
                return
            self.fleets[arn] = fleet
            res.data["ProductionVariants"] = [
                self._summary(v, len(fleet[v["VariantName"]])) for v in config.get("ProductionVariants", [])
            ]
            res.data.pop("FailureReason", None)
            self._set(res, IN_SERVICE)

    def _switch(self, arn: str, config: dict) -> None:
        """Blue/green: the new fleet comes up while the old one serves, then traffic moves."""
        with self._locks[arn]:
            res = self.store.get_by_arn(arn)
            if res is None:
                return
            try:
                fleet = self._start_fleet(res, config)
            except RuntimeUnavailable as exc:
                res.data.update(res.data.pop("_Previous", {}))
                self._set(res, IN_SERVICE, FailureReason=str(exc))
                return
            old = self.fleets.get(arn, {})
            self.fleets[arn] = fleet
            res.data.pop("_Previous", None)
            res.data["ProductionVariants"] = [
                self._summary(v, len(fleet[v["VariantName"]])) for v in config.get("ProductionVariants", [])
            ]
            self._set(res, IN_SERVICE)
        self._stop_fleet(old)

    def _apply_weights(self, arn: str) -> None:
        with self._locks[arn]:
            res = self.store.get_by_arn(arn)
            if res is None:
                return
            for summary in res.data.get("ProductionVariants", []):
                summary["CurrentWeight"] = summary.get("DesiredWeight", summary.get("CurrentWeight"))
                if "DesiredInstanceCount" in summary:
                    self._resize(arn, res, summary)
            self._set(res, IN_SERVICE)

    def _resize(self, arn: str, res: Resource, summary: dict) -> None:
        servers = self.fleets.setdefault(arn, {}).setdefault(summary["VariantName"], [])
        want = summary["DesiredInstanceCount"]
        template = servers[0].spec if servers else None
        while len(servers) < want and template is not None:
            spec = ServerSpec(**{**template.__dict__, "instance_id": _instance_id()})
            servers.append(self.runtime.start_server(spec))
        while len(servers) > want:
            self.runtime.stop_server(servers.pop())
        summary["CurrentInstanceCount"] = len(servers)

    def _tear_down(self, arn: str) -> None:
        with self._locks[arn]:
            self._stop_fleet(self.fleets.pop(arn, {}))
            self.store.delete(arn)
        self._locks.pop(arn, None)

    # -- helpers ------------------------------------------------------------------------------

    def _start_fleet(self, res: Resource, config: dict) -> dict[str, list[ServerHandle]]:
        fleet: dict[str, list[ServerHandle]] = {}
        try:
            for variant in config.get("ProductionVariants", []):
                model = self.store.get("model", res.account, res.region, variant["ModelName"])
                if model is None:
                    raise RuntimeUnavailable(f"Model {variant['ModelName']} no longer exists.")
                container = model.data.get("PrimaryContainer") or model.data["Containers"][0]
                count = variant.get("InitialInstanceCount", 1)
                fleet[variant["VariantName"]] = [
                    self.runtime.start_server(ServerSpec(
                        endpoint=res.name, variant=variant["VariantName"], instance_id=_instance_id(),
                        image=container.get("Image", ""), model_data_url=container.get("ModelDataUrl"),
                        environment=dict(container.get("Environment", {})),
                    ))
                    for _ in range(count)
                ]
        except RuntimeUnavailable:
            self._stop_fleet(fleet)
            raise
        return fleet

    def _stop_fleet(self, fleet: dict[str, list[ServerHandle]]) -> None:
        for servers in fleet.values():
            for handle in servers:
                try:
                    self.runtime.stop_server(handle)
                except Exception:
                    log.exception("stopping %s failed", handle.spec.instance_id)

    @staticmethod
    def _summary(variant: dict, count: int) -> dict:
        summary = {"VariantName": variant["VariantName"]}
        if "ServerlessConfig" in variant:
            summary["CurrentServerlessConfig"] = variant["ServerlessConfig"]
            summary["DesiredServerlessConfig"] = variant["ServerlessConfig"]
            summary["CurrentWeight"] = summary["DesiredWeight"] = variant.get("InitialVariantWeight", 1.0)
            return summary
        weight = variant.get("InitialVariantWeight", 1.0)
        summary.update(CurrentWeight=weight, DesiredWeight=weight,
                       CurrentInstanceCount=count, DesiredInstanceCount=variant.get("InitialInstanceCount", 1))
        return summary

    def _set(self, res: Resource, status: str, **fields) -> None:
        res.status = res.data["EndpointStatus"] = status
        res.data.update(fields)
        res.modified = res.data["LastModifiedTime"] = self.clock.now()
        self.store.update(res, fields.get("FailureReason"))

    def close(self) -> None:
        for arn in list(self.fleets):
            self._stop_fleet(self.fleets.pop(arn))


def _instance_id() -> str:
    return "i-" + uuid.uuid4().hex[:17]
