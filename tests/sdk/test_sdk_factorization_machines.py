"""`sagemaker.FactorizationMachines` from the unchanged SageMaker Python SDK v2 against smlocal:
`record_set` → `fit` → `deploy` → `predict` with the default RecordSerializer/RecordDeserializer,
read as the SDK's users read it (`record.label["score"].float32_tensor.values[0]`) →
`delete_endpoint`."""

from __future__ import annotations

import numpy as np

from tests.algorithms.test_factorization_machines import interactions
from tests.training.helpers import ROLE


def test_factorization_machines_fit_deploy_predict(algo_sdk_session):
    import sagemaker

    X, y = interactions(n=6000)
    estimator = sagemaker.FactorizationMachines(
        role=ROLE, instance_count=1, instance_type="ml.m5.large", num_factors=4, predictor_type="regressor",
        epochs=15, factors_lr=0.01, linear_lr=0.01, factors_init_sigma=0.1, sagemaker_session=algo_sdk_session)
    estimator.fit(estimator.record_set(X[:5000].astype("float32"), labels=y[:5000].astype("float32")),
                  mini_batch_size=100)
    predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        records = predictor.predict(X[5000:5200])
    finally:
        predictor.delete_endpoint()
    scores = np.array([r.label["score"].float32_tensor.values[0] for r in records])
    assert len(records) == 200 and list(records[0].label) == ["score"]
    rmse = np.sqrt(np.mean((scores - y[5000:5200]) ** 2))
    assert rmse < 0.25 * np.std(y[5000:5200]), rmse  # the pairwise part is learnt, not just the mean
