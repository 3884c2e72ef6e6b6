"""`sagemaker.LinearLearner` from the unchanged SageMaker Python SDK v2 against smlocal:
`record_set` (a ManifestFile channel without a content type, as the SDK writes it) → `fit` with
its log polling → `deploy` → `predict` with the default RecordSerializer/RecordDeserializer,
read as the SDK's users read it → `delete_endpoint`."""

from __future__ import annotations

import numpy as np

from tests.algorithms.test_linear_learner import synthetic
from tests.training.helpers import ROLE


def test_linear_learner_fit_deploy_predict(algo_sdk_session, capsys):
    import sagemaker

    X, y = synthetic("binary", n=3000)
    estimator = sagemaker.LinearLearner(role=ROLE, instance_count=1, instance_type="ml.m5.large",
                                        predictor_type="binary_classifier", epochs=5,
                                        sagemaker_session=algo_sdk_session)
    estimator.fit(estimator.record_set(X[:2500].astype("float32"), labels=y[:2500].astype("float32")))
    printed = capsys.readouterr().out
    assert "#quality_metric: host=algo-1, validation" not in printed  # no validation channel was given
    assert "#quality_metric: host=algo-1, epoch=0, train binary_classification_cross_entropy_objective <loss>=" in printed
    predictor = estimator.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        records = predictor.predict(X[2500:])
        scores = np.array([r.label["score"].float32_tensor.values[0] for r in records])
        labels = np.array([r.label["predicted_label"].float32_tensor.values[0] for r in records])
    finally:
        predictor.delete_endpoint()
    assert len(records) == 500 and np.all((scores >= 0) & (scores <= 1))
    assert set(labels) <= {0.0, 1.0} and np.all(labels[scores > 0.9] == 1) and np.all(labels[scores < 0.1] == 0)
    assert np.mean(labels == y[2500:]) > 0.75
