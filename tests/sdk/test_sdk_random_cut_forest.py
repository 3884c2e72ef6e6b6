"""The anomaly-detection lab on the unchanged SageMaker Python SDK v2:
`RandomCutForest(...).fit(rcf.record_set(series))` (a ManifestFile channel, ShardedByS3Key) →
`deploy()` → `predict()` with the lab's CSVSerializer + JSONDeserializer and with the predictor's
default recordio-protobuf → `delete_endpoint()`, on a 1-D and a 48-wide shingled series."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.algorithms.test_random_cut_forest import SHINGLE, seasonal_series, shingle, spiked_shingles
from tests.training.helpers import ROLE


@pytest.fixture()
def quick_endpoint_polls(monkeypatch):
    """`deploy()` polls DescribeEndpoint every 30 s; poll every second instead (behaviour unchanged)."""
    import sagemaker.session

    original = sagemaker.session._wait_until
    monkeypatch.setattr(sagemaker.session, "_wait_until", lambda fn, poll=5: original(fn, min(poll, 1)))


def _forest(session, **hyperparameters):
    import sagemaker

    return sagemaker.RandomCutForest(role=ROLE, instance_count=1, instance_type="ml.m5.large",
                                     sagemaker_session=session, **hyperparameters)


def test_lab_one_dimensional_series_csv_in_json_out(algo_sdk_session, quick_endpoint_polls, capsys):
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import CSVSerializer

    values, mask = seasonal_series(n=2000, spikes=12, seed=8)
    rcf = _forest(algo_sdk_session, num_samples_per_tree=512, num_trees=50)
    records = rcf.record_set(values.reshape(-1, 1))
    assert records.distribution == "ShardedByS3Key" and records.s3_data_type == "ManifestFile"
    rcf.fit(records)
    assert "Training finished" in capsys.readouterr().out  # the job's log, printed by fit()
    predictor = rcf.deploy(initial_instance_count=1, instance_type="ml.m5.large",
                           serializer=CSVSerializer(), deserializer=JSONDeserializer())
    try:
        results = predictor.predict(values.reshape(-1, 1))
        scores = np.array([r["score"] for r in results["scores"]])
        assert len(scores) == len(values)
        assert roc_auc_score(mask, scores) >= 0.9
    finally:
        predictor.delete_endpoint()


def test_lab_shingled_series_with_the_default_record_serializer(algo_sdk_session, quick_endpoint_polls):
    values, mask = seasonal_series()
    rows = shingle(values).astype(np.float64)  # as the lab builds it: a float64 numpy array
    rcf = _forest(algo_sdk_session, num_samples_per_tree=256, num_trees=100)
    rcf.fit(rcf.record_set(rows), logs=False)
    predictor = rcf.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        results = predictor.predict(rows[:1000])  # RecordSerializer → recordio-protobuf
        scores = np.array([r.label["score"].float32_tensor.values[0] for r in results])
        assert roc_auc_score(spiked_shingles(mask)[:1000], scores) >= 0.9
        assert rows.shape[1] == SHINGLE
    finally:
        predictor.delete_endpoint()
