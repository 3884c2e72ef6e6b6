"""Models through boto3: create, describe, list, delete, and AWS's errors for each."""

from __future__ import annotations

from tests.integration.helpers import IMAGE, ROLE, code_and_message, error_of, make_model, unique


def test_create_and_describe_model_round_trips_every_member(sm):
    name = unique("model")
    arn = sm.create_model(
        ModelName=name,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bucket/model.tar.gz",
                          "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}, "Mode": "SingleModel"},
        ExecutionRoleArn=ROLE,
        VpcConfig={"SecurityGroupIds": ["sg-12345678"], "Subnets": ["subnet-12345678"]},
        EnableNetworkIsolation=True,
        Tags=[{"Key": "team", "Value": "ml"}],
    )["ModelArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:model/{name}"
    described = sm.describe_model(ModelName=name)
    assert described["ModelName"] == name
    assert described["ModelArn"] == arn
    assert described["PrimaryContainer"]["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}
    assert described["PrimaryContainer"]["ModelDataUrl"] == "s3://bucket/model.tar.gz"
    assert described["VpcConfig"]["Subnets"] == ["subnet-12345678"]
    assert described["EnableNetworkIsolation"] is True
    assert described["CreationTime"].year >= 2024
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]


def test_model_with_containers_pipeline(sm):
    name = unique("pipeline")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                    Containers=[{"Image": IMAGE, "ContainerHostname": "first"},
                                {"Image": IMAGE, "ContainerHostname": "second"}],
                    InferenceExecutionConfig={"Mode": "Direct"})
    described = sm.describe_model(ModelName=name)
    assert [c["ContainerHostname"] for c in described["Containers"]] == ["first", "second"]
    assert described["InferenceExecutionConfig"] == {"Mode": "Direct"}


def test_arn_is_lower_case_and_names_are_case_insensitive(sm):
    name = unique("MixedCase")
    arn = sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)["ModelArn"]
    assert arn.endswith("model/" + name.lower())
    assert sm.describe_model(ModelName=name.lower())["ModelName"] == name
    err = error_of(sm.create_model, ModelName=name.upper(), PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    assert code_and_message(err)[0] == "ValidationException"


def test_duplicate_model_is_refused_with_aws_wording(sm):
    name = make_model(sm)
    err = error_of(sm.create_model, ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    assert code_and_message(err) == (
        "ValidationException",
        f'Cannot create already existing model "arn:aws:sagemaker:us-east-1:123456789012:model/{name}".',
    )


def test_missing_model_describe_and_delete(sm):
    for call in (sm.describe_model, sm.delete_model):
        err = error_of(call, ModelName="no-such-model")
        assert code_and_message(err) == (
            "ValidationException",
            'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/no-such-model".',
        )


def test_model_needs_a_container(sm):
    err = error_of(sm.create_model, ModelName=unique("empty"), ExecutionRoleArn=ROLE)
    assert code_and_message(err)[0] == "ValidationException"
    err = error_of(sm.create_model, ModelName=unique("both"), ExecutionRoleArn=ROLE,
                   PrimaryContainer={"Image": IMAGE}, Containers=[{"Image": IMAGE}])
    assert code_and_message(err)[0] == "ValidationException"


def test_delete_model_removes_it_and_its_tags(sm):
    name = make_model(sm, Tags=[{"Key": "a", "Value": "b"}])
    sm.delete_model(ModelName=name)
    assert code_and_message(error_of(sm.describe_model, ModelName=name))[0] == "ValidationException"
    assert name not in [m["ModelName"] for m in sm.list_models(NameContains=name)["Models"]]
    # the name is free again
    make_model(sm, name)
    assert sm.describe_model(ModelName=name)["ModelName"] == name
