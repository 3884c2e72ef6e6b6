"""`Estimator(image_uri=...).fit(logs=True)`, `deploy`, `predict`, `update_endpoint` and
`delete_endpoint` from the unchanged SageMaker Python SDK v2, on every runtime."""

from __future__ import annotations

import uuid


from tests.training.helpers import ROLE, model_files


def _estimator(stack, session, **kwargs):
    from sagemaker.estimator import Estimator

    hyperparameters = {"epochs": 2} if stack.runtime == "docker" else {"epochs": 2, "dns_timeout": 0}
    return Estimator(image_uri=stack.image, role=ROLE, instance_count=1, instance_type="ml.m5.large",
                     sagemaker_session=session, hyperparameters=hyperparameters,
                     output_path=f"s3://{session.default_bucket()}/sdk-output", **kwargs)


def test_fit_prints_the_container_logs_and_returns_the_model(stack, sdk_session, capsys):
    train = sdk_session.upload_data(path=__file__, key_prefix=f"sdk/{uuid.uuid4().hex[:6]}/train")
    estimator = _estimator(stack, sdk_session)
    estimator.fit({"training": train}, logs=True)
    printed = capsys.readouterr().out
    assert "current host: algo-1" in printed and "training complete" in printed
    job = stack.sm.describe_training_job(TrainingJobName=estimator.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed"
    assert estimator.model_data == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert "report-algo-1.json" in model_files(stack, job)


def test_deploy_predict_update_delete(stack, sdk_session):
    from sagemaker.deserializers import StringDeserializer
    from sagemaker.serializers import CSVSerializer

    train = sdk_session.upload_data(path=__file__, key_prefix=f"sdk/{uuid.uuid4().hex[:6]}/train")
    estimator = _estimator(stack, sdk_session)
    estimator.fit({"training": train}, logs=False)
    predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                                 serializer=CSVSerializer(), deserializer=StringDeserializer())
    try:
        assert predictor.predict([[1, 2, 3], [4, 5, 6]]) == "1,2,3,5\n4,5,6,5\n"
        predictor.update_endpoint(initial_instance_count=2, instance_type="ml.m5.xlarge")
        described = stack.sm.describe_endpoint(EndpointName=predictor.endpoint_name)
        assert described["EndpointStatus"] == "InService"
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
        assert predictor.predict([[7, 8]]) == "7,8,3\n"
    finally:
        predictor.delete_endpoint()
    names = [e["EndpointName"] for e in stack.sm.list_endpoints()["Endpoints"]]
    assert predictor.endpoint_name not in names or stack.sm.describe_endpoint(
        EndpointName=predictor.endpoint_name)["EndpointStatus"] == "Deleting"
