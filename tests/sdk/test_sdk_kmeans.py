"""The SDK's own K-Means estimator, as the first built-in users meet: `KMeans(...).fit(record_set)`,
`deploy`, `predict` with the default RecordSerializer/RecordDeserializer, `delete_endpoint`."""

from __future__ import annotations

import numpy as np

from tests.training.helpers import ROLE


def test_kmeans_estimator_fit_deploy_predict(algo_stack, algo_sdk_session):
    from sagemaker import KMeans

    rng = np.random.default_rng(3)
    data = np.concatenate([rng.normal(c, 0.5, (300, 6)) for c in (-5, 0, 5)]).astype("float32")
    kmeans = KMeans(role=ROLE, instance_count=1, instance_type="ml.m5.large", k=3,
                    sagemaker_session=algo_sdk_session,
                    output_path=f"s3://{algo_sdk_session.default_bucket()}/kmeans-output")
    kmeans.fit(kmeans.record_set(data), logs=False)
    job = algo_stack.sm.describe_training_job(TrainingJobName=kmeans.latest_training_job.name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"
    predictor = kmeans.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        records = predictor.predict(data[[0, 300, 600]])
        clusters = [r.label["closest_cluster"].float32_tensor.values[0] for r in records]
        assert len(set(clusters)) == 3  # three well-separated blobs, three clusters
        assert all(r.label["distance_to_cluster"].float32_tensor.values[0] < 3 for r in records)
    finally:
        predictor.delete_endpoint()
