"""`sagemaker.PCA(...).fit(pca.record_set(X))` → `deploy()` → `predict()` on the unchanged SageMaker
Python SDK v2: projections come back as recordio-protobuf records (`label["projection"]`) and equal
scikit-learn's on the same data (SageMaker's column order: the top component last)."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from tests.algorithms.test_pca import _low_rank
from tests.sdk.test_sdk_random_cut_forest import quick_endpoint_polls  # noqa: F401  (fixture)
from tests.training.helpers import ROLE


def test_fit_deploy_predict_projections(algo_sdk_session, quick_endpoint_polls):  # noqa: F811
    import sagemaker

    data = _low_rank(np.random.default_rng(21), 800, [8, 5, 3, 1])
    pca = sagemaker.PCA(role=ROLE, instance_count=1, instance_type="ml.m5.large", num_components=3,
                        sagemaker_session=algo_sdk_session)
    pca.fit(pca.record_set(data), logs=False)
    predictor = pca.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        records = predictor.predict(data[:4])
        ours = np.array([r.label["projection"].float32_tensor.values for r in records])
        expected = PCA(3).fit(data).transform(data[:4])[:, ::-1]
        signs = np.sign((ours * expected).sum(axis=0))
        np.testing.assert_allclose(ours * signs, expected, atol=2e-3)
    finally:
        predictor.delete_endpoint()
