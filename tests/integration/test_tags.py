"""AddTags, ListTags, DeleteTags on every resource kind by ARN."""

from __future__ import annotations

from tests.integration.helpers import (code_and_message, error_of, make_config, make_endpoint, make_model,
                                       training_request, unique)


def arns(sm):
    model = make_model(sm)
    config = make_config(sm, model)
    endpoint = make_endpoint(sm, config)
    job = unique("job")
    sm.create_training_job(**training_request(job))
    return [sm.describe_model(ModelName=model)["ModelArn"],
            sm.describe_endpoint_config(EndpointConfigName=config)["EndpointConfigArn"],
            sm.describe_endpoint(EndpointName=endpoint)["EndpointArn"],
            sm.describe_training_job(TrainingJobName=job)["TrainingJobArn"]]


def test_add_list_overwrite_delete_on_every_kind(sm):
    for arn in arns(sm):
        added = sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
        assert added["Tags"] == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "changed"}])
        assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "changed"}, {"Key": "b", "Value": "2"}]
        sm.delete_tags(ResourceArn=arn, TagKeys=["a", "not-there"])
        assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]


def test_list_tags_paginates(sm):
    arn = sm.describe_model(ModelName=make_model(sm))["ModelArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i:02d}", "Value": str(i)} for i in range(50)])
    pages = list(sm.get_paginator("list_tags").paginate(ResourceArn=arn, PaginationConfig={"PageSize": 50}))
    assert sum(len(p["Tags"]) for p in pages) == 50
    first = sm.list_tags(ResourceArn=arn, MaxResults=50)
    assert len(first["Tags"]) == 50 and "NextToken" not in first


def test_tag_limit_and_reserved_prefix(sm):
    arn = sm.describe_model(ModelName=make_model(sm))["ModelArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    err = error_of(sm.add_tags, ResourceArn=arn, Tags=[{"Key": "one-too-many", "Value": "v"}])
    assert code_and_message(err)[0] == "ResourceLimitExceeded"
    assert len(sm.list_tags(ResourceArn=arn, MaxResults=100)["Tags"]) == 50
    other = sm.describe_model(ModelName=make_model(sm))["ModelArn"]
    err = error_of(sm.add_tags, ResourceArn=other, Tags=[{"Key": "aws:owner", "Value": "v"}])
    assert code_and_message(err)[0] == "ValidationException"


def test_unknown_arn(sm):
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model/ghost"
    for call, kwargs in ((sm.add_tags, {"Tags": [{"Key": "a", "Value": "b"}]}), (sm.list_tags, {}),
                         (sm.delete_tags, {"TagKeys": ["a"]})):
        err = error_of(call, ResourceArn=arn, **kwargs)
        assert code_and_message(err) == ("ValidationException", f'Could not find resource "{arn}".')
