"""Endpoint configurations: Create/Describe/List/DeleteEndpointConfig.

A configuration is stored exactly as given (variants, serverless, data capture, async config);
every variant must name an existing model and either an instance type or a ServerlessConfig.
"""

from __future__ import annotations

from emulator import errors
from emulator.providers.base import Provider, check_instances, copy_members

STORED = ("EndpointConfigName", "ProductionVariants", "DataCaptureConfig", "KmsKeyId",
          "AsyncInferenceConfig", "ExplainerConfig", "ShadowProductionVariants", "ExecutionRoleArn",
          "VpcConfig", "EnableNetworkIsolation", "MetricsConfig")


class EndpointConfigsProvider(Provider):
    kind = "endpoint-config"

    def create_endpoint_config(self, ctx, params):
        name = params["EndpointConfigName"]
        variants = params["ProductionVariants"] + params.get("ShadowProductionVariants", [])
        self._check_variants(ctx, variants)
        data = copy_members(params, STORED)
        for variant in data["ProductionVariants"]:
            if "InstanceType" in variant:
                variant.setdefault("InitialVariantWeight", 1.0)
        res = self.new_resource(ctx, name, data)
        data["EndpointConfigArn"], data["CreationTime"] = res.arn, ctx.now
        self.insert_with_tags(
            res, params.get("Tags"),
            errors.validation(f'Cannot create already existing endpoint configuration "{res.arn}".'),
        )
        return {"EndpointConfigArn": res.arn}

    def describe_endpoint_config(self, ctx, params):
        return self.get(ctx, params["EndpointConfigName"]).data

    def delete_endpoint_config(self, ctx, params):
        # AWS allows deleting a configuration that an endpoint is using; the endpoint keeps
        # running on what it already deployed.
        self.store.delete(self.get(ctx, params["EndpointConfigName"]).arn)
        return {}

    def list_endpoint_configs(self, ctx, params):
        page = self.page(ctx, params, {"Name": "name", "CreationTime": "created"}, fields=())
        return self.listed(page, "EndpointConfigs", [
            {"EndpointConfigName": r.name, "EndpointConfigArn": r.arn, "CreationTime": r.created}
            for r in page.items
        ])

    def get(self, ctx, name):
        res = self.find(ctx, name)
        if res is None:
            raise errors.validation(f'Could not find endpoint configuration "{ctx.arn(self.kind, name)}".')
        return res

    def _check_variants(self, ctx, variants):
        names = [v["VariantName"] for v in variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise errors.validation(f"Variant names must be unique; repeated: {', '.join(duplicates)}.")
        for variant in variants:
            serverless = variant.get("ServerlessConfig")
            if serverless is None and ("InstanceType" not in variant or "InitialInstanceCount" not in variant):
                raise errors.validation(
                    f"Variant {variant['VariantName']} needs InstanceType and InitialInstanceCount,"
                    " or a ServerlessConfig."
                )
            if serverless is not None and "InstanceType" in variant:
                raise errors.validation(
                    f"Variant {variant['VariantName']} cannot have both InstanceType and ServerlessConfig."
                )
            check_instances(variant.get("InstanceType", ""), variant.get("InitialInstanceCount", 0), "endpoint")
            model = variant.get("ModelName")
            if model and self.store.get("model", ctx.account, ctx.region, model) is None:
                raise errors.validation(f'Could not find model "{ctx.arn("model", model)}".')
