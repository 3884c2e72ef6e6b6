"""Endpoint configurations through boto3: stored as given, validated as AWS validates them."""

from __future__ import annotations

from tests.integration.helpers import code_and_message, error_of, make_config, make_endpoint, make_model, unique


def test_config_stored_as_given_with_weights_serverless_and_capture(sm):
    model_a, model_b = make_model(sm), make_model(sm)
    name = unique("config")
    capture = {
        "EnableCapture": True, "InitialSamplingPercentage": 50,
        "DestinationS3Uri": "s3://bucket/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }
    arn = sm.create_endpoint_config(EndpointConfigName=name, DataCaptureConfig=capture, ProductionVariants=[
        {"VariantName": "A", "ModelName": model_a, "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 2, "InitialVariantWeight": 9},
        {"VariantName": "B", "ModelName": model_b, "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}},
    ])["EndpointConfigArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}"
    described = sm.describe_endpoint_config(EndpointConfigName=name)
    variants = {v["VariantName"]: v for v in described["ProductionVariants"]}
    assert variants["A"]["InitialVariantWeight"] == 9.0
    assert variants["A"]["InitialInstanceCount"] == 2
    assert variants["B"]["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert described["DataCaptureConfig"]["InitialSamplingPercentage"] == 50
    assert described["EndpointConfigArn"] == arn


def test_default_weight_is_one(sm):
    name = make_config(sm, make_model(sm))
    assert sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"][0]["InitialVariantWeight"] == 1.0


def test_missing_model_is_refused(sm):
    err = error_of(sm.create_endpoint_config, EndpointConfigName=unique("c"), ProductionVariants=[
        {"VariantName": "v", "ModelName": "ghost", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    assert code_and_message(err) == (
        "ValidationException", 'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/ghost".')


def test_duplicate_config_and_duplicate_variant_names(sm):
    model = make_model(sm)
    name = make_config(sm, model)
    err = error_of(make_config, sm, model, name)
    assert code_and_message(err) == (
        "ValidationException",
        f'Cannot create already existing endpoint configuration '
        f'"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}".',
    )
    variant = {"VariantName": "same", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    err = error_of(sm.create_endpoint_config, EndpointConfigName=unique("c"), ProductionVariants=[variant, variant])
    assert code_and_message(err)[0] == "ValidationException"


def test_variant_needs_instances_or_serverless(sm):
    err = error_of(sm.create_endpoint_config, EndpointConfigName=unique("c"), ProductionVariants=[
        {"VariantName": "v", "ModelName": make_model(sm)}])
    assert code_and_message(err)[0] == "ValidationException"


def test_missing_config_describe_and_delete(sm):
    for call in (sm.describe_endpoint_config, sm.delete_endpoint_config):
        err = error_of(call, EndpointConfigName="ghost")
        assert code_and_message(err) == (
            "ValidationException",
            'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/ghost".',
        )


def test_deleting_a_config_in_use_is_allowed_and_the_endpoint_keeps_it(sm):
    config = make_config(sm, make_model(sm))
    endpoint = make_endpoint(sm, config)
    sm.delete_endpoint_config(EndpointConfigName=config)
    assert code_and_message(error_of(sm.describe_endpoint_config, EndpointConfigName=config))[0] == "ValidationException"
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == config


def test_deleting_a_model_in_use_is_allowed(sm):
    model = make_model(sm)
    make_config(sm, model)
    sm.delete_model(ModelName=model)
    assert code_and_message(error_of(sm.describe_model, ModelName=model))[0] == "ValidationException"


def test_instance_quota(sm):
    err = error_of(sm.create_endpoint_config, EndpointConfigName=unique("c"), ProductionVariants=[
        {"VariantName": "v", "ModelName": make_model(sm), "InstanceType": "ml.m5.large", "InitialInstanceCount": 21}])
    assert code_and_message(err)[0] == "ResourceLimitExceeded"
