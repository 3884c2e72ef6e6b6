"""Built-in XGBoost from the unchanged SageMaker Python SDK v2, as AWS's notebooks use it:
`image_uris.retrieve("xgboost", region, "1.7-1")`, `Estimator.set_hyperparameters`, `fit` with
CSV `TrainingInput`s, `deploy`, `predict` with `CSVSerializer`, parsing the CSV answer, and
`delete_endpoint`; the model equals `xgboost.train` on the same data."""

from __future__ import annotations

import io
import uuid

import numpy as np

from tests.training.helpers import ROLE


def _csv(X, y=None) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, X if y is None else np.hstack([y[:, None], X]), delimiter=",", fmt="%.9g")
    return buffer.getvalue().encode()


def test_estimator_fit_deploy_predict_with_the_xgboost_image(algo_stack, algo_sdk_session, tmp_path, capsys):
    import sagemaker
    import xgboost
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.serializers import CSVSerializer

    rng = np.random.default_rng(21)
    X = rng.normal(size=(800, 6)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] ** 2 + 0.2 * rng.normal(size=800) > -0.5).astype(np.float32)
    prefix = f"sdk-xgb/{uuid.uuid4().hex[:6]}"
    for name, part in (("train", slice(0, 600)), ("validation", slice(600, 800))):
        (tmp_path / f"{name}.csv").write_bytes(_csv(X[part], y[part]))
        algo_sdk_session.upload_data(str(tmp_path / f"{name}.csv"), key_prefix=f"{prefix}/{name}")
    bucket = algo_sdk_session.default_bucket()

    image = sagemaker.image_uris.retrieve("xgboost", "us-east-1", "1.7-1")
    assert image == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    estimator = Estimator(image_uri=image, role=ROLE, instance_count=1, instance_type="ml.m5.large",
                          output_path=f"s3://{bucket}/{prefix}/output", sagemaker_session=algo_sdk_session)
    estimator.set_hyperparameters(objective="binary:logistic", num_round=25, max_depth=3, eta=0.2,
                                  eval_metric="auc", subsample=0.9, seed=7)
    estimator.fit({"train": TrainingInput(f"s3://{bucket}/{prefix}/train", content_type="text/csv"),
                   "validation": TrainingInput(f"s3://{bucket}/{prefix}/validation", content_type="text/csv")})
    printed = capsys.readouterr().out
    assert "[24]\ttrain-auc:" in printed and "\tvalidation-auc:" in printed

    reference = xgboost.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.2, "eval_metric": "auc",
                               "subsample": 0.9, "seed": 7}, xgboost.DMatrix(X[:600], label=y[:600]), 25)
    expected = reference.predict(xgboost.DMatrix(X[600:650]))
    predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large", serializer=CSVSerializer())
    try:
        answer = predictor.predict(X[600:650]).decode("utf-8")
        predictions = np.array(answer.split("\n")[:-1], dtype=np.float32)  # as the AWS notebooks parse it
        assert np.array_equal(predictions, expected)
        assert np.fromstring(answer, sep="\n", dtype=np.float32).tolist() == expected.tolist()
    finally:
        predictor.delete_endpoint()
    described = algo_stack.sm.list_endpoints(NameContains=predictor.endpoint_name)["Endpoints"]
    assert all(e["EndpointStatus"] == "Deleting" for e in described)
