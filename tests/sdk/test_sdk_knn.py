"""Built-in k-NN from the unchanged SageMaker Python SDK v2: `sagemaker.KNN(...)`,
`fit(record_set(...))` (a ManifestFile channel of recordio-protobuf shards), `deploy` (a
KNNPredictor with RecordSerializer/RecordDeserializer), `predict`, and `delete_endpoint`;
predictions equal brute-force nearest neighbours."""

from __future__ import annotations

import numpy as np

from tests.training.helpers import ROLE


def test_knn_fit_record_set_deploy_predict(algo_stack, algo_sdk_session):
    import sagemaker

    rng = np.random.default_rng(8)
    centres = rng.normal(0, 3, (3, 10))
    labels = rng.integers(0, 3, 600).astype(np.float32)
    points = (centres[labels.astype(int)] + rng.normal(0, 1, (600, 10))).astype(np.float32)

    knn = sagemaker.KNN(role=ROLE, instance_count=1, instance_type="ml.m5.large", k=5, sample_size=1000,
                        predictor_type="classifier", sagemaker_session=algo_sdk_session)
    knn.fit(knn.record_set(points[:500], labels=labels[:500]), mini_batch_size=100, logs=False)
    job = algo_stack.sm.describe_training_job(TrainingJobName=knn.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed" and job["HyperParameters"]["feature_dim"] == "10"

    predictor = knn.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        records = predictor.predict(points[500:])
        predicted = [record.label["predicted_label"].float32_tensor.values[0] for record in records]
    finally:
        predictor.delete_endpoint()

    distances = ((points[500:, None, :] - points[None, :500, :]) ** 2).sum(-1)
    nearest = labels[:500][np.argsort(distances, axis=1, kind="stable")[:, :5]]
    expected = []
    for row in nearest:
        counts = {v: (row == v).sum() for v in row}
        expected.append(next(v for v in row if counts[v] == max(counts.values())))
    assert predicted == expected
