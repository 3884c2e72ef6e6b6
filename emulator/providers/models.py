"""Models: CreateModel, DescribeModel, ListModels, DeleteModel."""

from __future__ import annotations

from emulator import errors
from emulator.providers.base import Provider, copy_members
from emulator.providers.containers import MODEL_CROSS_REGION, check_environment, check_image

STORED = ("ModelName", "PrimaryContainer", "Containers", "InferenceExecutionConfig",
          "ExecutionRoleArn", "VpcConfig", "EnableNetworkIsolation")


class ModelsProvider(Provider):
    kind = "model"

    def create_model(self, ctx, params):
        name = params["ModelName"]
        primary, containers = params.get("PrimaryContainer"), params.get("Containers")
        if primary is None and not containers:
            raise errors.validation("Either PrimaryContainer or Containers must be provided.")
        if primary is not None and containers:
            raise errors.validation("PrimaryContainer and Containers cannot both be provided.")
        for container in [primary] if primary is not None else containers:
            check_image(container.get("Image") or "", ctx.region, params.get("ExecutionRoleArn", ""), MODEL_CROSS_REGION)
            check_environment(container.get("Environment"), f"the container {container.get('Image', '')}")
        data = copy_members(params, STORED)
        data.setdefault("EnableNetworkIsolation", False)
        res = self.new_resource(ctx, name, data)
        data["ModelArn"], data["CreationTime"] = res.arn, ctx.now
        self.insert_with_tags(
            res, params.get("Tags"),
            errors.validation(f'Cannot create already existing model "{res.arn}".'),
        )
        return {"ModelArn": res.arn}

    def describe_model(self, ctx, params):
        return self._get(ctx, params["ModelName"]).data

    def delete_model(self, ctx, params):
        # AWS lets a model be deleted while endpoint configs still name it; running
        # endpoints keep serving it.
        self.store.delete(self._get(ctx, params["ModelName"]).arn)
        return {}

    def list_models(self, ctx, params):
        page = self.page(ctx, params, {"Name": "name", "CreationTime": "created"}, fields=())
        return self.listed(page, "Models", [
            {"ModelName": r.name, "ModelArn": r.arn, "CreationTime": r.created} for r in page.items
        ])

    def _get(self, ctx, name):
        res = self.find(ctx, name)
        if res is None:
            raise errors.validation(f'Could not find model "{ctx.arn(self.kind, name)}".')
        return res
