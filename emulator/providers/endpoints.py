"""Endpoints: Create/Describe/List/Delete/UpdateEndpoint and UpdateEndpointWeightsAndCapacities.

The provider validates and records; the hosting service brings fleets up and down. The endpoint
keeps a copy of the configuration it deployed (`_Config`), because AWS lets the configuration be
deleted while the endpoint runs on it. Members starting with `_` never reach the wire: the
serializer writes only the output shape's members.
"""

from __future__ import annotations

import copy

from emulator import errors
from emulator.providers.base import Provider, check_instances

CONFIG_MEMBERS = ("DataCaptureConfig", "AsyncInferenceConfig", "ExplainerConfig",
                  "ShadowProductionVariants", "MetricsConfig")


class EndpointsProvider(Provider):
    kind = "endpoint"

    def __init__(self, store, services, configs):
        super().__init__(store, services)
        self.configs = configs  # the endpoint-config provider, for its lookup and wording

    def create_endpoint(self, ctx, params):
        name = params["EndpointName"]
        config = self.configs.get(ctx, params["EndpointConfigName"]).data
        data = {
            "EndpointName": name,
            "EndpointConfigName": config["EndpointConfigName"],
            "EndpointStatus": "Creating",
            "CreationTime": ctx.now,
            "LastModifiedTime": ctx.now,
            "_Config": copy.deepcopy(config),
            **{k: config[k] for k in CONFIG_MEMBERS if k in config},
        }
        if "DeploymentConfig" in params:
            data["LastDeploymentConfig"] = params["DeploymentConfig"]
        res = self.new_resource(ctx, name, data, status="Creating")
        data["EndpointArn"] = res.arn
        self.insert_with_tags(
            res, params.get("Tags"),
            errors.validation(f'Cannot create already existing endpoint "{res.arn}".'),
        )
        self.services.hosting.create(res, config)
        return {"EndpointArn": res.arn}

    def describe_endpoint(self, ctx, params):
        return self.get(ctx, params["EndpointName"]).data

    def list_endpoints(self, ctx, params):
        page = self.page(ctx, params, {"Name": "name", "CreationTime": "created", "Status": "status"},
                         fields=())
        return self.listed(page, "Endpoints", [
            {"EndpointName": r.name, "EndpointArn": r.arn, "CreationTime": r.created,
             "LastModifiedTime": r.modified, "EndpointStatus": r.status}
            for r in page.items
        ])

    def delete_endpoint(self, ctx, params):
        res = self.get(ctx, params["EndpointName"])
        if res.status != "Deleting":
            self._set_status(ctx, res, "Deleting")
            self.services.hosting.delete(res)
        return {}

    def update_endpoint(self, ctx, params):
        res = self._updatable(ctx, params["EndpointName"])
        config = copy.deepcopy(self.configs.get(ctx, params["EndpointConfigName"]).data)
        if params.get("RetainAllVariantProperties"):
            self._retain(res, config, {p["VariantPropertyType"] for p in params.get("ExcludeRetainedVariantProperties", [])})
        res.data["_Previous"] = {k: copy.deepcopy(res.data[k])
                                 for k in ("EndpointConfigName", "_Config") if k in res.data}
        res.data["EndpointConfigName"], res.data["_Config"] = config["EndpointConfigName"], config
        if "DeploymentConfig" in params:
            res.data["LastDeploymentConfig"] = params["DeploymentConfig"]
        res.data.pop("FailureReason", None)
        self._set_status(ctx, res, "Updating")
        self.services.hosting.update(res, config)
        return {"EndpointArn": res.arn}

    def update_endpoint_weights_and_capacities(self, ctx, params):
        res = self._updatable(ctx, params["EndpointName"])
        summaries = {s["VariantName"]: s for s in res.data.get("ProductionVariants", [])}
        desired = params["DesiredWeightsAndCapacities"]
        missing = [d["VariantName"] for d in desired if d["VariantName"] not in summaries]
        if missing:
            raise errors.validation(
                f"The variant(s) \"[{', '.join(missing)}]\" are not present in endpoint \"{res.arn}\"."
            )
        for item in desired:
            if "DesiredWeight" not in item and "DesiredInstanceCount" not in item and "ServerlessUpdateConfig" not in item:
                raise errors.validation(
                    f"Variant {item['VariantName']}: specify DesiredWeight, DesiredInstanceCount or ServerlessUpdateConfig."
                )
        for item in desired:
            check_instances("", item.get("DesiredInstanceCount", 0), "endpoint")
        for item in desired:
            summary = summaries[item["VariantName"]]
            for key in ("DesiredWeight", "DesiredInstanceCount"):
                if key in item:
                    summary[key] = item[key]
        self._set_status(ctx, res, "Updating")
        self.services.hosting.update_weights(res)
        return {"EndpointArn": res.arn}

    # -- helpers ------------------------------------------------------------------------------

    def get(self, ctx, name):
        res = self.find(ctx, name)
        if res is None:
            raise errors.validation(f'Could not find endpoint "{name}".')
        return res

    def _updatable(self, ctx, name):
        res = self.get(ctx, name)
        if res.status != "InService":
            raise errors.validation(
                f'Cannot update in-progress endpoint "{res.arn}".' if res.status in ("Creating", "Updating", "Deleting", "SystemUpdating")
                else f'Cannot update endpoint "{res.arn}" in status {res.status}.'
            )
        return res

    @staticmethod
    def _retain(res, config, excluded):
        """RetainAllVariantProperties: keep the live weights and counts of variants that stay."""
        live = {s["VariantName"]: s for s in res.data.get("ProductionVariants", [])}
        for variant in config["ProductionVariants"]:
            current = live.get(variant["VariantName"])
            if current is None:
                continue
            if "DesiredWeight" not in excluded and "CurrentWeight" in current:
                variant["InitialVariantWeight"] = current["CurrentWeight"]
            if "DesiredInstanceCount" not in excluded and "CurrentInstanceCount" in current:
                variant["InitialInstanceCount"] = current["CurrentInstanceCount"]
        if "DataCaptureConfig" not in excluded and "DataCaptureConfig" in res.data:
            config["DataCaptureConfig"] = res.data["DataCaptureConfig"]

    def _set_status(self, ctx, res, status):
        res.status = res.data["EndpointStatus"] = status
        res.modified = res.data["LastModifiedTime"] = ctx.now
        self.store.update(res)
