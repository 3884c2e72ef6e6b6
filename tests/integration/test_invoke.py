"""InvokeEndpoint through the router, on the in-process echo runtime: weights, TargetVariant, scaling,
blue/green updates under load, rollback, replacement of dead instances, and AWS's errors."""

from __future__ import annotations

import collections
import threading
import time


from tests.integration.helpers import (IMAGE, ROLE, code_and_message, error_of, make_config, make_endpoint,
                                       make_model, unique, wait_for)


def two_variants(sm, weights=(9, 1), counts=(1, 1)):
    a, b = make_model(sm), make_model(sm)
    return make_config(sm, a, variants=[
        {"VariantName": "A", "ModelName": a, "InstanceType": "ml.m5.large", "InitialInstanceCount": counts[0],
         "InitialVariantWeight": weights[0]},
        {"VariantName": "B", "ModelName": b, "InstanceType": "ml.m5.large", "InitialInstanceCount": counts[1],
         "InitialVariantWeight": weights[1]},
    ])


def in_service(sm, name):
    return wait_for(lambda: sm.describe_endpoint(EndpointName=name), lambda d: d["EndpointStatus"] == "InService")


def invoke(smr, name, body=b"1,2,3", **kwargs):
    return smr.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv", **kwargs)


def test_echo_round_trip_with_headers(sm, smr):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    answer = invoke(smr, name, body=b"4,5,6", Accept="text/csv", CustomAttributes="trace=1")
    assert answer["Body"].read() == b"4,5,6"
    assert answer["ContentType"] == "text/csv"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["CustomAttributes"] == "trace=1"


def test_weights_nine_to_one_over_2000_calls(sm, smr):
    name = make_endpoint(sm, two_variants(sm))
    counts = collections.Counter(invoke(smr, name)["InvokedProductionVariant"] for _ in range(2000))
    share = counts["A"] / 2000
    assert 0.87 <= share <= 0.93, counts


def test_target_variant_always_wins_and_unknown_is_an_error(sm, smr):
    name = make_endpoint(sm, two_variants(sm))
    assert {invoke(smr, name, TargetVariant="B")["InvokedProductionVariant"] for _ in range(50)} == {"B"}
    err = error_of(invoke, smr, name, TargetVariant="Z")
    assert code_and_message(err)[0] == "ValidationError"


def test_weights_to_zero_one_send_everything_to_b(sm, smr):
    name = make_endpoint(sm, two_variants(sm))
    sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "A", "DesiredWeight": 0}, {"VariantName": "B", "DesiredWeight": 1}])
    in_service(sm, name)
    assert {invoke(smr, name)["InvokedProductionVariant"] for _ in range(200)} == {"B"}


def instance_ids(server, name):
    route = server.app.router.find("123456789012", "us-east-1", name)
    return {v: [i.id for i in r.instances] for v, r in route.variants.items()}


def test_scaling_one_to_three_to_one(sm, smr, server):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    for count in (3, 1):
        sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": count}])
        described = wait_for(lambda: sm.describe_endpoint(EndpointName=name),
                             lambda d: d["EndpointStatus"] == "InService"
                             and d["ProductionVariants"][0]["CurrentInstanceCount"] == count)
        assert described["ProductionVariants"][0]["DesiredInstanceCount"] == count
        assert len(instance_ids(server, name)["AllTraffic"]) == count
        for _ in range(10):
            assert invoke(smr, name)["Body"].read() == b"1,2,3"


def test_update_endpoint_under_load_loses_no_call(sm, smr, server):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    before = instance_ids(server, name)["AllTraffic"]
    failures, calls, stop = [], collections.Counter(), threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                calls[invoke(smr, name)["InvokedProductionVariant"]] += 1
            except Exception as exc:  # any failed call fails the test
                failures.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=two_variants(sm, weights=(1, 1)))
    wait_for(lambda: sm.describe_endpoint(EndpointName=name),
             lambda d: d["EndpointStatus"] == "InService" and len(d["ProductionVariants"]) == 2)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert calls["AllTraffic"] > 0 and calls["A"] > 0 and calls["B"] > 0
    assert not set(before) & {i for ids in instance_ids(server, name).values() for i in ids}


def test_failing_new_config_rolls_back(sm, smr, server):
    old_config = make_config(sm, make_model(sm))
    name = make_endpoint(sm, old_config)
    broken = unique("broken")
    server.app.runtime.fail_images.add(f"{IMAGE}-{broken}")
    sm.create_model(ModelName=broken, PrimaryContainer={"Image": f"{IMAGE}-{broken}"}, ExecutionRoleArn=ROLE)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=make_config(sm, broken))
    described = wait_for(lambda: sm.describe_endpoint(EndpointName=name),
                         lambda d: d["EndpointStatus"] == "InService" and "FailureReason" in d)
    assert described["EndpointConfigName"] == old_config
    assert "exited with code 1" in described["FailureReason"]
    assert invoke(smr, name)["InvokedProductionVariant"] == "AllTraffic"


def test_killed_instance_is_replaced(sm, smr, server):
    name = make_endpoint(sm, make_config(sm, make_model(sm), variants=None))
    sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    wait_for(lambda: len(instance_ids(server, name)["AllTraffic"]), lambda n: n == 2)
    victim = instance_ids(server, name)["AllTraffic"][0]
    server.app.runtime.servers[victim].kill()
    for _ in range(20):  # the other instance keeps answering meanwhile
        assert invoke(smr, name)["Body"].read() == b"1,2,3"
    ids = wait_for(lambda: instance_ids(server, name)["AllTraffic"], lambda v: victim not in v and len(v) == 2)
    assert len(ids) == 2


def test_errors_as_aws_words_them(sm, smr):
    err = error_of(invoke, smr, "no-such-endpoint")
    assert code_and_message(err) == ("ValidationError", "Endpoint no-such-endpoint of account 123456789012 not found.")
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    assert code_and_message(error_of(invoke, smr, name.upper()))[0] == "ValidationError"  # exact name to invoke
    err = error_of(invoke, smr, name, body=b"fail")
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err.response["Error"]["Code"] == "ModelError"
    assert err.response["OriginalStatusCode"] == 500
    assert err.response["OriginalMessage"] == "the model failed"
    assert err.response["LogStreamArn"].startswith(f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/{name}")
    assert 'Received server error (500) from primary with message "the model failed"' in err.response["Error"]["Message"]
    err = error_of(invoke, smr, name, body=b"bad")
    assert err.response["OriginalStatusCode"] == 400 and "Received client error (400)" in err.response["Error"]["Message"]
    err = error_of(invoke, smr, name, body=b"x" * (6 * 1024 * 1024 + 1))
    assert code_and_message(err)[0] == "ValidationError"


def test_input_constraints_are_checked_on_every_call(sm, smr):
    """The checked rest of a call is remembered (emulator/protocol/restjson.py): a bad one must
    still be refused every time, and must not spoil the good calls around it."""
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    too_long = "a" * 1025
    for _ in range(2):
        assert invoke(smr, name, CustomAttributes="ok")["CustomAttributes"] == "ok"
        code, message = code_and_message(error_of(invoke, smr, name, CustomAttributes=too_long))
        assert code == "ValidationException"  # the shape validator's code, as for every service
        assert "at 'customAttributes' failed to satisfy constraint: Member must have length less than or equal to 1024" in message


def test_endpoint_not_yet_in_service_is_not_found(sm, smr, server):
    gate = server.app.runtime.gate
    gate.clear()
    try:
        name = make_endpoint(sm, make_config(sm, make_model(sm)), wait=False)
        err = error_of(invoke, smr, name)
        assert code_and_message(err) == ("ValidationError", f"Endpoint {name} of account 123456789012 not found.")
    finally:
        gate.set()
    in_service(sm, name)


def test_delete_endpoint_stops_every_server(sm, smr, server):
    name = make_endpoint(sm, two_variants(sm, counts=(2, 1)))
    ids = [i for v in instance_ids(server, name).values() for i in v]
    sm.delete_endpoint(EndpointName=name)
    wait_for(lambda: sm.list_endpoints(NameContains=name)["Endpoints"], lambda v: v == [])
    assert all(server.app.runtime.servers[i].exit_code() is not None for i in ids)
    assert code_and_message(error_of(invoke, smr, name))[0] == "ValidationError"


def test_container_logs_reach_cloudwatch(sm, smr, session, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    invoke(smr, name)
    logs = session.client("logs", endpoint_url=endpoint_url)
    group = f"/aws/sagemaker/Endpoints/{name}"

    def messages():
        streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
        return [s["logStreamName"] for s in streams], [
            e["message"] for s in streams
            for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]]

    streams, lines = wait_for(messages, lambda v: any("POST /invocations" in m for m in v[1]))
    assert streams[0].startswith("AllTraffic/i-")


def test_response_stream_carries_the_body_as_payload_parts(sm, smr):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    body = b"x" * 200_000
    answer = smr.invoke_endpoint_with_response_stream(EndpointName=name, Body=body, ContentType="text/plain",
                                                      CustomAttributes="c=1")
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["ContentType"] == "text/plain" and answer["CustomAttributes"] == "c=1"
    parts = [event["PayloadPart"]["Bytes"] for event in answer["Body"]]
    assert b"".join(parts) == body and len(parts) >= 1
    err = error_of(smr.invoke_endpoint_with_response_stream, EndpointName=name, Body=b"fail", ContentType="text/plain")
    assert err.response["Error"]["Code"] == "ModelError"


def test_async_invocation_writes_output_and_failure_to_s3(sm, smr, s3):
    bucket = unique("async")
    s3.create_bucket(Bucket=bucket)
    model = make_model(sm)
    config = make_config(sm, model, AsyncInferenceConfig={"OutputConfig": {
        "S3OutputPath": f"s3://{bucket}/out", "S3FailurePath": f"s3://{bucket}/failed"}})
    name = make_endpoint(sm, config)
    s3.put_object(Bucket=bucket, Key="in/request.csv", Body=b"7,8,9")
    answer = smr.invoke_endpoint_async(EndpointName=name, InputLocation=f"s3://{bucket}/in/request.csv",
                                       ContentType="text/csv", InferenceId="req-1")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert answer["InferenceId"] == "req-1"
    assert answer["OutputLocation"] == f"s3://{bucket}/out/req-1.out"
    assert answer["FailureLocation"] == f"s3://{bucket}/failed/req-1-error.out"
    out = wait_for(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="out/").get("Contents", []), lambda v: v)
    assert s3.get_object(Bucket=bucket, Key=out[0]["Key"])["Body"].read() == b"7,8,9"
    s3.put_object(Bucket=bucket, Key="in/bad.csv", Body=b"fail")
    failed = smr.invoke_endpoint_async(EndpointName=name, InputLocation=f"s3://{bucket}/in/bad.csv")
    key = failed["FailureLocation"].split(f"s3://{bucket}/")[1]
    wait_for(lambda: s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0), lambda n: n == 1)
    assert b"Received server error (500)" in s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    sync_only = make_endpoint(sm, make_config(sm, model))
    err = error_of(smr.invoke_endpoint_async, EndpointName=sync_only, InputLocation=f"s3://{bucket}/in/request.csv")
    assert code_and_message(err)[0] == "ValidationError"


def test_invocation_metrics_reach_cloudwatch(sm, smr, server, session, endpoint_url):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    for _ in range(5):
        invoke(smr, name)
    error_of(invoke, smr, name, body=b"fail")
    server.app.metrics.flush()
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint_url)
    dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}]

    def total(metric):
        import datetime as dt
        now = dt.datetime.now(dt.timezone.utc)
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dims, StartTime=now - dt.timedelta(hours=1),
            EndTime=now + dt.timedelta(minutes=5), Period=60, Statistics=["Sum", "SampleCount"])["Datapoints"]
        return sum(p["Sum"] for p in points), sum(p["SampleCount"] for p in points)

    assert total("Invocations")[0] == 5
    assert total("Invocation5XXErrors")[0] == 1
    assert total("ModelLatency")[1] == 5 and total("OverheadLatency")[1] == 5


def test_inference_pipeline_passes_each_answer_on(sm, smr, server):
    name = unique("pipeline")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, Containers=[
        {"Image": IMAGE, "ContainerHostname": "first"}, {"Image": IMAGE, "ContainerHostname": "second"}])
    endpoint = make_endpoint(sm, make_config(sm, name))
    instance = server.app.router.find("123456789012", "us-east-1", endpoint).variants["AllTraffic"].instances[0]
    assert instance.hostnames == ["first", "second"] and len(instance.servers) == 2
    answer = invoke(smr, endpoint, body=b"through both")
    assert answer["Body"].read() == b"through both"
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert len(described["ProductionVariants"][0]["DeployedImages"]) == 2


def test_direct_invocation_needs_a_target_container(sm, smr):
    name = unique("direct")
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, InferenceExecutionConfig={"Mode": "Direct"},
                    Containers=[{"Image": IMAGE, "ContainerHostname": "a"}, {"Image": IMAGE, "ContainerHostname": "b"}])
    endpoint = make_endpoint(sm, make_config(sm, name))
    assert invoke(smr, endpoint, body=b"hi", TargetContainerHostname="b")["Body"].read() == b"hi"
    assert code_and_message(error_of(invoke, smr, endpoint))[0] == "ValidationError"


def test_serverless_variant_starts_on_first_call(sm, smr, server):
    model = make_model(sm)
    config = make_config(sm, model, variants=[{"VariantName": "sls", "ModelName": model,
                                               "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}}])
    endpoint = make_endpoint(sm, config)
    variant = server.app.router.find("123456789012", "us-east-1", endpoint).variants["sls"]
    assert variant.instances == []  # nothing runs until the first call
    assert invoke(smr, endpoint)["InvokedProductionVariant"] == "sls"
    assert len(variant.instances) == 1
    summary = sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert summary["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
