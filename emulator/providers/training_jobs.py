"""Training jobs: Create/Describe/List/Stop/DeleteTrainingJob.

The whole request is validated and stored as DescribeTrainingJob will show it (with SageMaker's
defaults filled in); the training service runs it and moves its statuses.
"""

from __future__ import annotations

import copy
import re

from emulator import errors
from emulator.providers.base import Provider, check_instances, copy_members
from emulator.providers.containers import TRAINING_CROSS_REGION, check_environment, check_image
from emulator.services.training.metrics import builtin_metric_definitions

STORED = ("TrainingJobName", "HyperParameters", "AlgorithmSpecification", "RoleArn", "InputDataConfig",
          "OutputDataConfig", "ResourceConfig", "VpcConfig", "StoppingCondition",
          "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining",
          "CheckpointConfig", "DebugHookConfig", "DebugRuleConfigurations", "TensorBoardOutputConfig",
          "ExperimentConfig", "ProfilerConfig", "ProfilerRuleConfigurations", "Environment",
          "RetryStrategy", "RemoteDebugConfig", "InfraCheckConfig", "ServerlessJobConfig",
          "MlflowConfig", "ModelPackageConfig")
TERMINAL = ("Completed", "Failed", "Stopped")


class TrainingJobsProvider(Provider):
    kind = "training-job"

    def create_training_job(self, ctx, params):
        name = params["TrainingJobName"]
        _check_request(params)
        _check_container(params, ctx.region)
        data = copy.deepcopy(copy_members(params, STORED))
        _fill_defaults(data)
        _attach_builtin_metrics(data["AlgorithmSpecification"])
        res = self.new_resource(ctx, name, data, status="InProgress")
        data.update(
            TrainingJobArn=res.arn, TrainingJobStatus="InProgress", SecondaryStatus="Starting",
            CreationTime=ctx.now, LastModifiedTime=ctx.now,
            SecondaryStatusTransitions=[{
                "Status": "Starting", "StartTime": ctx.now,
                "StatusMessage": "Starting the training job",
            }],
        )
        self.insert_with_tags(
            res, params.get("Tags"),
            errors.in_use(
                "Training job names must be unique within an AWS account and region, and a training"
                f" job with this name already exists ({res.arn})"
            ),
        )
        self.services.training.launch(res)
        return {"TrainingJobArn": res.arn}

    def describe_training_job(self, ctx, params):
        return self._get(ctx, params["TrainingJobName"]).data

    def list_training_jobs(self, ctx, params):
        if params.get("WarmPoolStatusEquals") or params.get("TrainingPlanArnEquals"):
            return {"TrainingJobSummaries": []}  # smlocal keeps no warm pools or training plans
        page = self.page(ctx, params, {"Name": "name", "CreationTime": "created", "Status": "status"},
                         fields=("SecondaryStatus", "TrainingEndTime"))
        return self.listed(page, "TrainingJobSummaries", [_summary(r) for r in page.items])

    def stop_training_job(self, ctx, params):
        res = self._get(ctx, params["TrainingJobName"])
        if res.status != "InProgress":
            raise errors.validation(
                f"The request was rejected because the training job is in status {res.status}."
            )
        self.services.training.stop(res)
        return {}

    def delete_training_job(self, ctx, params):
        res = self._get(ctx, params["TrainingJobName"])
        if res.status not in TERMINAL:
            raise errors.validation(
                f"Training job {res.name} is in status {res.status}; only jobs that are Completed,"
                " Failed or Stopped can be deleted. Stop it first."
            )
        self.store.delete(res.arn)
        return {}

    def _get(self, ctx, name):
        res = self.find(ctx, name)
        if res is None:
            # SageMaker answers a missing job with ValidationException, not ResourceNotFound
            raise errors.validation("Requested resource not found.")
        return res


def _summary(res) -> dict:
    data = res.data
    summary = {
        "TrainingJobName": res.name, "TrainingJobArn": res.arn, "CreationTime": res.created,
        "LastModifiedTime": res.modified, "TrainingJobStatus": res.status,
        "SecondaryStatus": data.get("SecondaryStatus"),
    }
    if "TrainingEndTime" in data:
        summary["TrainingEndTime"] = data["TrainingEndTime"]
    return summary


def _check_request(params: dict) -> None:
    """Rules the shapes cannot express, in SageMaker's words where we know them."""
    spec = params.get("AlgorithmSpecification")
    if spec is None:
        raise errors.validation("AlgorithmSpecification is required for a training job.")
    if bool(spec.get("TrainingImage")) == bool(spec.get("AlgorithmName")):
        raise errors.validation("Exactly one of TrainingImage or AlgorithmName must be specified.")
    if "ResourceConfig" not in params and "ServerlessJobConfig" not in params:
        raise errors.validation("ResourceConfig is required for a training job.")
    resources = params.get("ResourceConfig", {})
    if "ResourceConfig" in params and not resources.get("InstanceGroups"):
        for key in ("InstanceType", "InstanceCount", "VolumeSizeInGB"):
            if key not in resources:
                raise errors.validation(f"ResourceConfig.{key} is required.")
    if "ResourceConfig" in params and not resources.get("InstanceGroups") and resources.get("InstanceCount") == 0:
        raise errors.validation("1 validation error detected: Value '0' at 'resourceConfig.instanceCount' failed to "
                                "satisfy constraint: Member must have value greater than or equal to 1")
    check_instances(resources.get("InstanceType", ""), resources.get("InstanceCount", 0), "training job")
    _check_channel_names([c["ChannelName"] for c in params.get("InputDataConfig", [])])
    for channel in params.get("InputDataConfig", []):
        source = channel["DataSource"]
        if not any(k in source for k in ("S3DataSource", "FileSystemDataSource", "DatasetSource")):
            raise errors.validation(f"Channel {channel['ChannelName']} has no data source.")
    for metric in spec.get("MetricDefinitions", []):
        try:
            re.compile(metric["Regex"])
        except re.error as exc:
            raise errors.validation(
                f"Metric definition {metric['Name']} has an invalid regex {metric['Regex']!r}: {exc}."
            ) from None


def _check_channel_names(names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise errors.validation(f"Channel names must be unique; repeated: {', '.join(repeated)}.")
    for name in names:
        if name in (".", ".."):  # the pattern allows them, but no folder /opt/ml/input/data/<name> could
            raise errors.validation(
                f"The channel name '{name}' is reserved: each channel is the folder /opt/ml/input/data/<ChannelName>, "
                f"and '{name}' names a folder that already exists. Choose another name.")


def _check_container(params: dict, region: str) -> None:
    check_image(params["AlgorithmSpecification"].get("TrainingImage") or "", region, params.get("RoleArn", ""),
                TRAINING_CROSS_REGION)
    check_environment(params.get("Environment"), "the training job")


def _attach_builtin_metrics(spec: dict) -> None:
    """A built-in algorithm's image without MetricDefinitions gets the algorithm's own, as on AWS:
    stored here, they show in DescribeTrainingJob and drive FinalMetricDataList."""
    if not spec.get("MetricDefinitions"):
        definitions = builtin_metric_definitions(spec.get("TrainingImage", ""))
        if definitions:
            spec["MetricDefinitions"] = definitions


def _fill_defaults(data: dict) -> None:
    """What DescribeTrainingJob shows for members the caller left out."""
    data.setdefault("HyperParameters", {})
    data.setdefault("StoppingCondition", {"MaxRuntimeInSeconds": 86400})
    data["StoppingCondition"].setdefault("MaxRuntimeInSeconds", 86400)
    for key in ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining"):
        data.setdefault(key, False)
    for channel in data.get("InputDataConfig", []):
        channel.setdefault("CompressionType", "None")
        channel.setdefault("RecordWrapperType", "None")
        s3 = channel["DataSource"].get("S3DataSource")
        if s3 is not None:
            s3.setdefault("S3DataDistributionType", "FullyReplicated")
