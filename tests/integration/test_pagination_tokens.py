"""NextToken is a position in the order asked for, not an offset: deleting or creating resources
between pages neither skips nor repeats anything that was there all along, for every SortBy and
SortOrder; a token that smlocal did not issue for this listing is ValidationException.

Each test walks a botocore paginator lazily and changes the resources between its pages.
"""

from __future__ import annotations

import time

import boto3
import pytest

from emulator.testing import LocalServer
from tests.conftest import NO_RETRY
from tests.integration.helpers import IMAGE, ROLE, code_and_message, error_of, training_request, unique

PAGE = 3


@pytest.fixture(scope="module")
def sm():
    with LocalServer(ephemeral=True, runtime="fake") as srv:
        yield boto3.client("sagemaker", endpoint_url=srv.url, config=NO_RETRY)


def _create_models(sm, prefix: str, count: int) -> list[str]:
    names = [f"{prefix}-{i:02d}" for i in range(count)]
    for i, name in enumerate(names):
        sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
        if i % 3 == 2:
            time.sleep(0.002)  # some creation times differ, some may tie: the name breaks ties
    return names


def _walk(pages, key: str, name: str, between) -> list[str]:
    """Every name the paginator yields, calling `between(seen so far)` after each page."""
    seen: list[str] = []
    for page in pages:
        seen.extend(item[name] for item in page[key])
        between(seen)
    return seen


def _assert_stable(seen: list[str], always_there: set[str], never_there: set[str]) -> None:
    assert len(seen) == len(set(seen)), f"repeated: {sorted(n for n in set(seen) if seen.count(n) > 1)}"
    assert always_there <= set(seen), f"skipped: {sorted(always_there - set(seen))}"
    assert not never_there & set(seen)


ORDERS = [(by, order) for by in ("Name", "CreationTime") for order in ("Ascending", "Descending")]


@pytest.mark.parametrize("sort_by,sort_order", ORDERS)
def test_deleting_seen_and_unseen_models_between_pages(sm, sort_by, sort_order):
    prefix = unique("del").lower()
    names = _create_models(sm, prefix, 14)
    deleted: set[str] = set()

    def delete_some(seen):
        unseen = [n for n in names if n not in seen and n not in deleted]
        doomed = {seen[-1], seen[0]} | set(unseen[-1:])  # two already listed, one still to come
        for name in doomed - deleted:
            sm.delete_model(ModelName=name)
        deleted.update(doomed)

    pages = sm.get_paginator("list_models").paginate(NameContains=prefix, SortBy=sort_by, SortOrder=sort_order,
                                                     PaginationConfig={"PageSize": PAGE})
    seen = _walk(pages, "Models", "ModelName", delete_some)
    _assert_stable(seen, set(names) - deleted, deleted - set(seen))
    # names are numbered in creation order and a tie in time falls back to the name: either sort
    # lists them in the names' order
    assert seen == sorted(seen, reverse=sort_order == "Descending")


@pytest.mark.parametrize("sort_by,sort_order", ORDERS)
def test_creating_models_between_pages_repeats_nothing(sm, sort_by, sort_order):
    prefix = unique("ins").lower()
    names = _create_models(sm, prefix, 10)
    created: list[str] = []

    def create_some(seen):
        batch = [f"{prefix}-{len(names) + len(created) + i:02d}" for i in range(2)] + [f"{prefix}-00-{len(created)}"]
        for name in batch:
            sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
        created.extend(batch)

    pages = sm.get_paginator("list_models").paginate(NameContains=prefix, SortBy=sort_by, SortOrder=sort_order,
                                                     PaginationConfig={"PageSize": PAGE, "MaxItems": 60})
    seen = _walk(pages, "Models", "ModelName", create_some)
    _assert_stable(seen, set(names), set())


def test_creation_order_survives_deletes(sm):
    prefix = unique("ord").lower()
    names = _create_models(sm, prefix, 12)

    def delete_next(seen):
        following = [n for n in names if n not in seen]
        if following:
            sm.delete_model(ModelName=following[0])
            names.remove(following[0])

    pages = sm.get_paginator("list_models").paginate(NameContains=prefix, SortBy="CreationTime",
                                                     SortOrder="Ascending", PaginationConfig={"PageSize": PAGE})
    seen = _walk(pages, "Models", "ModelName", delete_next)
    assert seen == names  # every survivor once, in creation order


@pytest.mark.parametrize("sort_order", ["Ascending", "Descending"])
def test_training_jobs_by_status_with_deletes(sm, sort_order):
    prefix = unique("job").lower()
    jobs = [f"{prefix}-{i:02d}" for i in range(10)]
    for job in jobs:
        sm.create_training_job(**training_request(job))
    for job in jobs[::2]:
        sm.stop_training_job(TrainingJobName=job)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
            sm.describe_training_job(TrainingJobName=j)["TrainingJobStatus"] != "Stopped" for j in jobs[::2]):
        time.sleep(0.05)
    deleted: set[str] = set()

    def delete_stopped(seen):
        for job in jobs[::2]:
            if job not in deleted and (job in seen[-1:] or job not in seen):
                sm.delete_training_job(TrainingJobName=job)
                deleted.add(job)
                return

    pages = sm.get_paginator("list_training_jobs").paginate(NameContains=prefix, SortBy="Status",
                                                            SortOrder=sort_order, PaginationConfig={"PageSize": PAGE})
    seen = _walk(pages, "TrainingJobSummaries", "TrainingJobName", delete_stopped)
    _assert_stable(seen, set(jobs) - deleted, deleted - set(seen))


def test_endpoints_and_configs_with_deletes(sm):
    model = _create_models(sm, unique("epm").lower(), 1)[0]
    prefix = unique("cfg").lower()
    configs = [f"{prefix}-{i:02d}" for i in range(8)]
    for name in configs:
        sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "v", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    deleted: set[str] = set()

    def delete_last_seen(seen):
        sm.delete_endpoint_config(EndpointConfigName=seen[-1])
        deleted.add(seen[-1])

    pages = sm.get_paginator("list_endpoint_configs").paginate(NameContains=prefix, SortBy="Name",
                                                               PaginationConfig={"PageSize": PAGE})
    seen = _walk(pages, "EndpointConfigs", "EndpointConfigName", delete_last_seen)
    assert seen == sorted(configs, reverse=True)


def test_tokens_smlocal_did_not_issue_are_refused(sm):
    prefix = unique("tok").lower()
    _create_models(sm, prefix, 4)
    token = sm.list_models(NameContains=prefix, SortBy="Name", MaxResults=1)["NextToken"]
    forged = [
        "garbage", token[:-4], token + "x", "eyJvIjogMiwgImsiOiAibW9kZWwifQ==",  # the old offset form
    ]
    for bad in forged:
        code, message = code_and_message(error_of(sm.list_models, NextToken=bad, SortBy="Name"))
        assert code == "ValidationException" and "token" in message.lower(), (bad, message)
    # a token is bound to the listing that issued it: another sort, order or operation refuses it
    for other in ({"SortBy": "CreationTime"}, {"SortBy": "Name", "SortOrder": "Ascending"}):
        assert code_and_message(error_of(sm.list_models, NextToken=token, **other))[0] == "ValidationException"
    assert code_and_message(error_of(sm.list_endpoint_configs, NextToken=token, SortBy="Name"))[0] == \
        "ValidationException"
    assert sm.list_models(NameContains=prefix, SortBy="Name", NextToken=token, MaxResults=10)["Models"]


def test_list_tags_refuses_tokens_it_did_not_issue(sm):
    arn = sm.describe_model(ModelName=_create_models(sm, unique("tag").lower(), 2)[0])["ModelArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(5)])
    other = sm.list_models(MaxResults=1)["NextToken"]
    for bad in ("garbage", other):
        assert code_and_message(error_of(sm.list_tags, ResourceArn=arn, NextToken=bad))[0] == "ValidationException"
    assert [t["Key"] for t in sm.list_tags(ResourceArn=arn)["Tags"]] == [f"k{i}" for i in range(5)]
