"""Training jobs through boto3: the whole request stored and validated, stop, delete, errors.

Execution (containers, data, artifacts) is the training issue's; here the job waits in Starting.
"""

from __future__ import annotations

from tests.integration.helpers import code_and_message, error_of, training_request, unique, wait_for


def test_create_stores_the_whole_request_with_defaults(sm):
    name = unique("job")
    request = training_request(name, Tags=[{"Key": "project", "Value": "x"}], EnableNetworkIsolation=True)
    arn = sm.create_training_job(**request)["TrainingJobArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "InProgress"
    assert job["SecondaryStatus"] == "Starting"
    assert job["HyperParameters"] == {"epochs": "3", "lr": "0.1"}
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]
    channel = job["InputDataConfig"][0]
    assert channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    assert channel["CompressionType"] == "None" and channel["RecordWrapperType"] == "None"
    assert job["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10}
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert job["CheckpointConfig"] == {"S3Uri": "s3://bucket/checkpoints"}
    assert job["Environment"] == {"MY_FLAG": "1"}
    assert job["EnableNetworkIsolation"] is True and job["EnableManagedSpotTraining"] is False
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "project", "Value": "x"}]


def test_default_stopping_condition(sm):
    name = unique("job")
    request = training_request(name)
    del request["StoppingCondition"]
    sm.create_training_job(**request)
    assert sm.describe_training_job(TrainingJobName=name)["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}


def test_duplicate_training_job_is_resource_in_use(sm):
    name = unique("job")
    sm.create_training_job(**training_request(name))
    err = error_of(sm.create_training_job, **training_request(name))
    code, message = code_and_message(err)
    assert code == "ResourceInUse"
    assert message.startswith("Training job names must be unique within an AWS account and region")


def test_missing_job(sm):
    for call in (sm.describe_training_job, sm.stop_training_job, sm.delete_training_job):
        assert code_and_message(error_of(call, TrainingJobName="ghost-job")) == (
            "ValidationException", "Requested resource not found.")


def test_semantic_validation(sm):
    bad_requests = [
        training_request(unique("j"), AlgorithmSpecification={"TrainingInputMode": "File"}),
        training_request(unique("j"), AlgorithmSpecification={"TrainingImage": "x", "AlgorithmName": "y",
                                                               "TrainingInputMode": "File"}),
        training_request(unique("j"), ResourceConfig={"InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}),
        training_request(unique("j"), InputDataConfig=[
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/a"}}},
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/b"}}},
        ]),
        training_request(unique("j"), AlgorithmSpecification={
            "TrainingImage": "x", "TrainingInputMode": "File", "MetricDefinitions": [{"Name": "m", "Regex": "(unclosed"}]}),
    ]
    for request in bad_requests:
        err = error_of(sm.create_training_job, **request)
        assert code_and_message(err)[0] == "ValidationException", request
        assert code_and_message(error_of(sm.describe_training_job, TrainingJobName=request["TrainingJobName"]))[0] \
            == "ValidationException"  # nothing was stored


def test_model_constraints_on_training_request(sm, session, endpoint_url):
    from botocore.config import Config
    raw = session.client("sagemaker", endpoint_url=endpoint_url, config=Config(parameter_validation=False))
    err = error_of(raw.create_training_job, **training_request(
        unique("j"), OutputDataConfig={"S3OutputPath": "not-s3"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 0}))
    code, message = code_and_message(err)
    assert code == "ValidationException" and message.startswith("2 validation errors detected")
    assert "at 'outputDataConfig.s3OutputPath'" in message and "at 'stoppingCondition.maxRuntimeInSeconds'" in message


def test_stop_then_stopped_with_transitions_and_end_time(sm):
    name = unique("job")
    sm.create_training_job(**training_request(name))
    sm.stop_training_job(TrainingJobName=name)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = wait_for(lambda: sm.describe_training_job(TrainingJobName=name), lambda j: j["TrainingJobStatus"] == "Stopped")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Stopping", "Stopped"]
    assert job["SecondaryStatus"] == "Stopped"
    assert job["TrainingEndTime"] >= job["CreationTime"]
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig={"Delay": 1})
    err = error_of(sm.stop_training_job, TrainingJobName=name)
    assert code_and_message(err) == (
        "ValidationException", "The request was rejected because the training job is in status Stopped.")


def test_delete_only_when_finished(sm):
    name = unique("job")
    sm.create_training_job(**training_request(name))
    assert code_and_message(error_of(sm.delete_training_job, TrainingJobName=name))[0] == "ValidationException"
    sm.stop_training_job(TrainingJobName=name)
    wait_for(lambda: sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"], lambda s: s == "Stopped")
    sm.delete_training_job(TrainingJobName=name)
    assert code_and_message(error_of(sm.describe_training_job, TrainingJobName=name))[0] == "ValidationException"


def test_summary_fields(sm):
    name = unique("summary-job")
    sm.create_training_job(**training_request(name))
    summaries = sm.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary["TrainingJobName"] == name and summary["TrainingJobStatus"] == "InProgress"
    assert summary["SecondaryStatus"] == "Starting" and "LastModifiedTime" in summary
