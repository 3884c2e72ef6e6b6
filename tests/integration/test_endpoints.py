"""Endpoints through boto3: lifecycle states, updates, weights and AWS's errors.

These run on the fake runtime (nothing is served); the hosting issue's tests cover real fleets.
"""

from __future__ import annotations

from tests.integration.helpers import (code_and_message, error_of, make_config, make_endpoint, make_model,
                                       unique, wait_for)


def two_variant_config(sm, weights=(9, 1)):
    model_a, model_b = make_model(sm), make_model(sm)
    return make_config(sm, model_a, variants=[
        {"VariantName": "A", "ModelName": model_a, "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1, "InitialVariantWeight": weights[0]},
        {"VariantName": "B", "ModelName": model_b, "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 2, "InitialVariantWeight": weights[1]},
    ])


def test_create_goes_creating_then_in_service_with_variant_summaries(sm):
    config = two_variant_config(sm)
    name = unique("endpoint")
    arn = sm.create_endpoint(EndpointName=name, EndpointConfigName=config, Tags=[{"Key": "k", "Value": "v"}])["EndpointArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"
    first = sm.describe_endpoint(EndpointName=name)
    assert first["EndpointStatus"] in ("Creating", "InService")
    described = wait_for(lambda: sm.describe_endpoint(EndpointName=name), lambda d: d["EndpointStatus"] == "InService")
    variants = {v["VariantName"]: v for v in described["ProductionVariants"]}
    assert variants["A"]["CurrentWeight"] == 9.0 and variants["B"]["CurrentWeight"] == 1.0
    assert variants["B"]["CurrentInstanceCount"] == 2 and variants["B"]["DesiredInstanceCount"] == 2
    assert described["EndpointConfigName"] == config
    assert described["LastModifiedTime"] >= described["CreationTime"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]


def test_boto3_waiter_sees_in_service(sm):
    name = make_endpoint(sm, make_config(sm, make_model(sm)), wait=False)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"


def test_missing_config_and_missing_endpoint(sm):
    err = error_of(sm.create_endpoint, EndpointName=unique("e"), EndpointConfigName="ghost")
    assert code_and_message(err) == (
        "ValidationException",
        'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/ghost".',
    )
    for call in (sm.describe_endpoint, sm.delete_endpoint):
        assert code_and_message(error_of(call, EndpointName="ghost")) == (
            "ValidationException", 'Could not find endpoint "ghost".')


def test_duplicate_endpoint(sm):
    config = make_config(sm, make_model(sm))
    name = make_endpoint(sm, config)
    err = error_of(sm.create_endpoint, EndpointName=name, EndpointConfigName=config)
    assert code_and_message(err) == (
        "ValidationException",
        f'Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}".',
    )


def test_update_weights_and_capacities(sm):
    name = make_endpoint(sm, two_variant_config(sm))
    sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "A", "DesiredWeight": 0}, {"VariantName": "B", "DesiredWeight": 1, "DesiredInstanceCount": 3}])
    described = wait_for(lambda: sm.describe_endpoint(EndpointName=name), lambda d: d["EndpointStatus"] == "InService")
    variants = {v["VariantName"]: v for v in described["ProductionVariants"]}
    assert variants["A"]["CurrentWeight"] == 0.0 and variants["A"]["DesiredWeight"] == 0.0
    assert variants["B"]["CurrentInstanceCount"] == 3 and variants["B"]["DesiredInstanceCount"] == 3


def test_update_weights_unknown_variant(sm):
    name = make_endpoint(sm, two_variant_config(sm))
    err = error_of(sm.update_endpoint_weights_and_capacities, EndpointName=name,
                   DesiredWeightsAndCapacities=[{"VariantName": "Z", "DesiredWeight": 1}])
    code, message = code_and_message(err)
    assert code == "ValidationException" and "Z" in message


def test_update_endpoint_to_another_config(sm):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    new_config = two_variant_config(sm, weights=(1, 1))
    sm.update_endpoint(EndpointName=name, EndpointConfigName=new_config)
    described = wait_for(lambda: sm.describe_endpoint(EndpointName=name),
                         lambda d: d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == new_config)
    assert sorted(v["VariantName"] for v in described["ProductionVariants"]) == ["A", "B"]


def test_update_retaining_variant_properties(sm):
    model = make_model(sm)
    config = make_config(sm, model, variants=[{"VariantName": "A", "ModelName": model, "InstanceType": "ml.m5.large",
                                               "InitialInstanceCount": 1, "InitialVariantWeight": 1}])
    name = make_endpoint(sm, config)
    sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "A", "DesiredWeight": 5, "DesiredInstanceCount": 2}])
    wait_for(lambda: sm.describe_endpoint(EndpointName=name)["EndpointStatus"], lambda s: s == "InService")
    new_config = make_config(sm, model, variants=[{"VariantName": "A", "ModelName": model,
                                                   "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.update_endpoint(EndpointName=name, EndpointConfigName=new_config, RetainAllVariantProperties=True,
                       ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredWeight"}])
    described = wait_for(lambda: sm.describe_endpoint(EndpointName=name),
                         lambda d: d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == new_config)
    variant = described["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == 2  # retained
    assert variant["CurrentWeight"] == 1.0  # excluded from retention: the new config's weight


def test_update_and_describe_while_creating(sm, server):
    gate = server.app.runtime.gate
    gate.clear()  # hold the fleet in start-up
    try:
        config = make_config(sm, make_model(sm))
        name = make_endpoint(sm, config, wait=False)
        assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating"
        for call, kwargs in ((sm.update_endpoint, {"EndpointConfigName": config}),
                             (sm.update_endpoint_weights_and_capacities,
                              {"DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredWeight": 2}]})):
            err = error_of(call, EndpointName=name, **kwargs)
            arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}"
            assert code_and_message(err) == ("ValidationException", f'Cannot update in-progress endpoint "{arn}".')
    finally:
        gate.set()
    wait_for(lambda: sm.describe_endpoint(EndpointName=name)["EndpointStatus"], lambda s: s == "InService")


def test_delete_endpoint_goes_away(sm):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    sm.delete_endpoint(EndpointName=name)
    wait_for(lambda: [e["EndpointName"] for e in sm.list_endpoints(NameContains=name)["Endpoints"]], lambda v: v == [])
    assert code_and_message(error_of(sm.describe_endpoint, EndpointName=name))[0] == "ValidationException"


def test_endpoint_status_history_is_recorded(sm, server):
    name = make_endpoint(sm, make_config(sm, make_model(sm)))
    arn = sm.describe_endpoint(EndpointName=name)["EndpointArn"]
    assert [status for _, status, _ in server.app.store.history(arn)] == ["Creating", "InService"]
