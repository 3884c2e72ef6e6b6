"""Validation from the service model's constraints, worded as AWS words it.

Requests are sent with botocore's client-side validation off, so the server's own checks answer.
"""

from __future__ import annotations

import json

import pytest
import requests
from botocore.config import Config

from tests.integration.helpers import IMAGE, ROLE, code_and_message, error_of, unique


@pytest.fixture(scope="module")
def raw_sm(session, endpoint_url):
    return session.client("sagemaker", endpoint_url=endpoint_url,
                          config=Config(parameter_validation=False, retries={"max_attempts": 1}))


def post(endpoint_url, operation, body, content_type="application/x-amz-json-1.1"):
    return requests.post(endpoint_url, data=body if isinstance(body, (bytes, str)) else json.dumps(body),
                         headers={"X-Amz-Target": f"SageMaker.{operation}", "Content-Type": content_type,
                                  "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/"
                                                   "sagemaker/aws4_request, SignedHeaders=host, Signature=x"})


def test_missing_required_member(raw_sm):
    err = error_of(raw_sm.describe_model)
    assert code_and_message(err) == (
        "ValidationException",
        "1 validation error detected: Value null at 'modelName' failed to satisfy constraint: "
        "Member must not be null",
    )


def test_pattern_violation_names_the_pattern(raw_sm):
    err = error_of(raw_sm.create_model, ModelName="bad_name", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    code, message = code_and_message(err)
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value 'bad_name' at 'modelName' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern: ")


def test_length_and_several_errors_are_reported_together(raw_sm):
    err = error_of(raw_sm.create_model, ModelName="x" * 64, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn="r")
    code, message = code_and_message(err)
    assert code == "ValidationException"
    assert message.startswith("3 validation errors detected: ")  # name length; role length and pattern
    assert "Member must have length less than or equal to 63" in message
    assert "at 'executionRoleArn'" in message


def test_range_and_enum(raw_sm):
    err = error_of(raw_sm.list_models, MaxResults=0, SortBy="Size")
    code, message = code_and_message(err)
    assert code == "ValidationException"
    assert "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1" in message
    assert "Value 'Size' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [Name, CreationTime]" in message


def test_nested_paths_use_aws_member_paths(raw_sm):
    err = error_of(raw_sm.create_endpoint_config, EndpointConfigName=unique("c"), ProductionVariants=[
        {"VariantName": "v", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 0}])
    assert "at 'productionVariants.1.member.initialInstanceCount'" in code_and_message(err)[1]


def test_list_size_constraint(raw_sm):
    err = error_of(raw_sm.create_endpoint_config, EndpointConfigName=unique("c"), ProductionVariants=[])
    assert "Member must have length greater than or equal to 1" in code_and_message(err)[1]


def test_wrong_type_is_a_serialization_error(endpoint_url):
    response = post(endpoint_url, "ListModels", {"MaxResults": "ten"})
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"
    assert response.headers["X-Amzn-ErrorType"] == "SerializationException"


def test_bad_json_and_non_object_bodies(endpoint_url):
    for body in ("{not json", "[1, 2]", "\"text\"", b"\xff\xfe"):
        response = post(endpoint_url, "ListModels", body)
        assert response.status_code == 400, body
        assert response.json()["__type"] == "SerializationException"


def test_unknown_operation(endpoint_url):
    response = post(endpoint_url, "MakeCoffee", {})
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"


def test_unimplemented_operation_answers_501_naming_it(sm):
    err = error_of(sm.list_clusters)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert code_and_message(err) == ("NotImplementedException",
                                     "smlocal does not implement SageMaker operation ListClusters yet.")


def test_request_id_header_on_success_and_error(endpoint_url):
    ok = post(endpoint_url, "ListModels", {})
    bad = post(endpoint_url, "DescribeModel", {})
    assert ok.status_code == 200 and ok.headers["x-amzn-RequestId"]
    assert bad.status_code == 400 and bad.headers["x-amzn-RequestId"]
    assert ok.headers["Content-Type"] == "application/x-amz-json-1.1"
