"""List operations: pagination, SortBy/SortOrder, NameContains, StatusEquals and time filters.

A private server per module, so the counts below are exact.
"""

from __future__ import annotations

import datetime as dt
import time

import boto3
import pytest

from emulator.testing import LocalServer
from tests.conftest import NO_RETRY
from tests.integration.helpers import IMAGE, ROLE, code_and_message, error_of, training_request


@pytest.fixture(scope="module")
def private_sm():
    with LocalServer(ephemeral=True, runtime="fake") as srv:
        yield boto3.client("sagemaker", endpoint_url=srv.url, config=NO_RETRY)


@pytest.fixture(scope="module")
def models(private_sm):
    names = [f"model-{i:02d}" for i in range(25)]
    for name in names:
        private_sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
        time.sleep(0.002)  # distinct creation times
    return names


def test_default_order_is_newest_first_and_page_size_ten(private_sm, models):
    page = private_sm.list_models()
    assert [m["ModelName"] for m in page["Models"]] == list(reversed(models))[:10]
    assert "NextToken" in page


def test_paginator_walks_every_page_once(private_sm, models):
    pages = list(private_sm.get_paginator("list_models").paginate(PaginationConfig={"PageSize": 7}))
    assert [len(p["Models"]) for p in pages] == [7, 7, 7, 4]
    assert sorted(m["ModelName"] for p in pages for m in p["Models"]) == models


def test_sort_by_name_both_ways(private_sm, models):
    ascending = private_sm.list_models(SortBy="Name", SortOrder="Ascending", MaxResults=100)["Models"]
    descending = private_sm.list_models(SortBy="Name", SortOrder="Descending", MaxResults=100)["Models"]
    assert [m["ModelName"] for m in ascending] == sorted(models)
    assert [m["ModelName"] for m in descending] == sorted(models, reverse=True)


def test_name_contains_is_case_insensitive(private_sm, models):
    found = private_sm.list_models(NameContains="MODEL-1", MaxResults=100)["Models"]
    assert sorted(m["ModelName"] for m in found) == [f"model-{i}" for i in range(10, 20)]


def test_creation_time_filters(private_sm, models):
    # boto3 sends timestamps as whole epoch seconds, so the pivot needs a clear second of gap.
    time.sleep(1.1)
    pivot = dt.datetime.now(dt.timezone.utc)
    time.sleep(1.1)
    late = ["late-0", "late-1"]
    for name in late:
        private_sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    try:
        after = private_sm.list_models(CreationTimeAfter=pivot, MaxResults=100)["Models"]
        before = private_sm.list_models(CreationTimeBefore=pivot, MaxResults=100)["Models"]
        assert sorted(m["ModelName"] for m in after) == late
        assert sorted(m["ModelName"] for m in before) == models
        future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
        assert private_sm.list_models(CreationTimeAfter=future)["Models"] == []
    finally:
        for name in late:
            private_sm.delete_model(ModelName=name)


def test_status_filter_and_sort_by_status_for_training_jobs(private_sm):
    for i in range(6):
        private_sm.create_training_job(**training_request(f"job-{i}"))
    for i in range(2):
        private_sm.stop_training_job(TrainingJobName=f"job-{i}")
    deadline = time.monotonic() + 5
    while private_sm.list_training_jobs(StatusEquals="Stopping")["TrainingJobSummaries"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped = private_sm.list_training_jobs(StatusEquals="Stopped")["TrainingJobSummaries"]
    running = private_sm.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]
    assert sorted(j["TrainingJobName"] for j in stopped) == ["job-0", "job-1"]
    assert len(running) == 4
    by_status = private_sm.list_training_jobs(SortBy="Status", SortOrder="Ascending")["TrainingJobSummaries"]
    assert [j["TrainingJobStatus"] for j in by_status] == ["InProgress"] * 4 + ["Stopped"] * 2
    modified_after = private_sm.list_training_jobs(LastModifiedTimeAfter=stopped[0]["CreationTime"])
    assert {"job-0", "job-1"} <= {j["TrainingJobName"] for j in modified_after["TrainingJobSummaries"]}


def test_bad_next_token(private_sm, models):
    err = error_of(private_sm.list_models, NextToken="garbage")
    assert code_and_message(err)[0] == "ValidationException"
    other_kind = private_sm.list_training_jobs(MaxResults=1).get("NextToken")
    if other_kind:
        assert code_and_message(error_of(private_sm.list_models, NextToken=other_kind))[0] == "ValidationException"


def test_list_endpoint_configs_and_endpoints_paginate(private_sm, models):
    for i in range(3):
        private_sm.create_endpoint_config(EndpointConfigName=f"cfg-{i}", ProductionVariants=[
            {"VariantName": "v", "ModelName": models[0], "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        private_sm.create_endpoint(EndpointName=f"ep-{i}", EndpointConfigName=f"cfg-{i}")
    configs = [c for p in private_sm.get_paginator("list_endpoint_configs").paginate(PaginationConfig={"PageSize": 2})
               for c in p["EndpointConfigs"]]
    endpoints = [e for p in private_sm.get_paginator("list_endpoints").paginate(PaginationConfig={"PageSize": 2})
                 for e in p["Endpoints"]]
    assert sorted(c["EndpointConfigName"] for c in configs) == ["cfg-0", "cfg-1", "cfg-2"]
    assert sorted(e["EndpointName"] for e in endpoints) == ["ep-0", "ep-1", "ep-2"]
