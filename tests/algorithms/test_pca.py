"""PCA through boto3 on every runtime: SageMaker's hyperparameters, channels (recordio-protobuf
dense and sparse, CSV; File and Pipe; two hosts on ShardedByS3Key), log lines, the NDArray-dict
artifact and the answers in every format, and quality against scikit-learn on the same data."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.sparse
from sklearn.decomposition import PCA

from algorithms.io import encode_records, ndarray, read_records
from algorithms.pca.algorithm import DENSE_LIMIT
from tests.algorithms.conftest import (bad_requests, deploy, invoke, job_logs, model_artifacts, model_error, to_csv,
                                       train, upload)

RECORDIO = "application/x-recordio-protobuf"
DIM, K = 12, 4


def _low_rank(rng, n: int, scales, noise: float = 0.05) -> np.ndarray:
    basis = np.linalg.qr(rng.normal(size=(DIM, DIM)))[0][:, :len(scales)]
    latent = rng.normal(size=(n, len(scales))) * np.asarray(scales)
    return (latent @ basis.T + noise * rng.normal(size=(n, DIM)) + 7.0).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return _low_rank(np.random.default_rng(11), 1500, [9, 6, 4, 2.5, 1.5])


@pytest.fixture(scope="module")
def trained(algo_stack, data):
    parts = np.array_split(data, 3)
    uri = upload(algo_stack, {f"part-{i}.pbr": encode_records(features=p) for i, p in enumerate(parts)})
    test_uri = upload(algo_stack, {"test.csv": to_csv(data[:300], exact=True)})
    job = train(algo_stack, "pca", {"feature_dim": DIM, "num_components": K, "mini_batch_size": 500,
                                    "_kvstore": "dist_sync"},
                {"train": (uri, RECORDIO), "test": (test_uri, "text/csv;label_size=0")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job


@pytest.fixture(scope="module")
def endpoint(algo_stack, trained):
    return deploy(algo_stack, "pca", trained)


def _model(stack, job) -> dict[str, np.ndarray]:
    files = model_artifacts(stack, job)
    assert list(files) == ["model_algo-1"]
    arrays = ndarray.loads(files["model_algo-1"])
    assert isinstance(arrays, dict) and sorted(arrays) == ["mean", "s", "v"]
    return arrays


def assert_same_components(v: np.ndarray, reference: np.ndarray, atol: float = 1e-4) -> None:
    """`v` (d × k, ascending) against scikit-learn's `components_` (k × d, descending), up to sign."""
    ours = v[:, ::-1].T
    signs = np.sign((ours * reference).sum(axis=1))
    np.testing.assert_allclose(ours * signs[:, None], reference, atol=atol)


def test_artifact_is_sagemakers_ndarray_dict_with_sklearns_components(algo_stack, trained, data):
    model = _model(algo_stack, trained)
    assert model["mean"].shape == (1, DIM) and model["s"].shape == (K,) and model["v"].shape == (DIM, K)
    assert all(a.dtype == np.float32 for a in model.values())
    assert np.all(np.diff(model["s"]) > 0), "components are stored in ascending order, the top one last"
    reference = PCA(K).fit(data)
    np.testing.assert_allclose(model["s"][::-1], reference.singular_values_, rtol=1e-4)
    np.testing.assert_allclose(model["mean"][0], reference.mean_, rtol=1e-5)
    assert_same_components(model["v"], reference.components_)


def test_logs_carry_the_metric_lines(algo_stack, trained):
    lines = job_logs(algo_stack, trained["TrainingJobName"])
    prefix = "#quality_metric: host=algo-1, train explained_variance_ratio <score>="
    assert any(line.startswith(prefix) for line in lines)
    assert any(line.startswith("#progress_metric: host=algo-1, completed 100 % of epochs") for line in lines)
    assert any(line.startswith("#test_score (algo-1) : ('reconstruction_error', ") for line in lines)


def test_projections_in_every_format_equal_sklearns(algo_stack, endpoint, data):
    rows = data[:5]
    expected = PCA(K).fit(data).transform(rows)[:, ::-1]  # SageMaker's column order: top last
    body, content_type = invoke(algo_stack, endpoint, to_csv(rows, exact=True), "text/csv")
    assert content_type == "application/json"
    projections = json.loads(body)["projections"]
    assert len(projections) == 5 and set(projections[0]) == {"projection"}
    ours = np.array([p["projection"] for p in projections])
    np.testing.assert_allclose(np.abs(ours), np.abs(expected), atol=2e-3)
    signs = np.sign(ours[0] * expected[0])
    np.testing.assert_allclose(ours * signs, expected, atol=2e-3)

    instances = json.dumps({"instances": [{"features": r.tolist()} for r in rows]}).encode()
    body, content_type = invoke(algo_stack, endpoint, instances, "application/json", "application/jsonlines")
    assert content_type == "application/jsonlines"
    lines = [json.loads(line) for line in body.decode().splitlines()]
    np.testing.assert_allclose([line["projection"] for line in lines], ours, rtol=1e-5, atol=1e-5)

    body, _ = invoke(algo_stack, endpoint, encode_records(features=rows), RECORDIO, RECORDIO)
    records = read_records(io.BytesIO(body))
    np.testing.assert_allclose([r.label["projection"].values for r in records], ours, rtol=1e-5, atol=1e-5)

    jsonlines = "\n".join(json.dumps({"features": r.tolist()}) for r in rows).encode()
    body, content_type = invoke(algo_stack, endpoint, jsonlines, "application/jsonlines", "text/csv")
    assert content_type == "text/csv"
    np.testing.assert_allclose(np.loadtxt(io.StringIO(body.decode()), delimiter=","), ours, rtol=1e-4, atol=1e-4)


def test_sparse_requests_are_projected_like_dense_ones(algo_stack, endpoint, data):
    row = data[0].copy()
    row[::2] = 0
    dense = json.loads(invoke(algo_stack, endpoint, to_csv(row[None], exact=True), "text/csv")[0])["projections"][0]["projection"]
    keys = np.flatnonzero(row)
    tensor = {"keys": keys.tolist(), "values": row[keys].tolist(), "shape": [DIM]}
    sparse = {"instances": [{"data": {"features": tensor}}]}
    answer = json.loads(invoke(algo_stack, endpoint, json.dumps(sparse).encode(), "application/json")[0])
    np.testing.assert_allclose(answer["projections"][0]["projection"], dense, rtol=1e-5, atol=1e-5)
    body, _ = invoke(algo_stack, endpoint, encode_records(features=scipy.sparse.csr_matrix(row[None])),
                     RECORDIO, RECORDIO)
    record = read_records(io.BytesIO(body))[0]
    np.testing.assert_allclose(record.label["projection"].values, dense, rtol=1e-5, atol=1e-5)


def test_csv_in_pipe_mode_and_sparse_recordio_train_the_same_model(algo_stack, data):
    reference = PCA(K).fit(data)
    csv_uri = upload(algo_stack, {"a.csv": to_csv(data[:700], exact=True), "b.csv": to_csv(data[700:], exact=True)})
    job = train(algo_stack, "pca", {"feature_dim": DIM, "num_components": K, "mini_batch_size": 100},
                {"train": (csv_uri, "text/csv;label_size=0")}, mode="Pipe")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert_same_components(_model(algo_stack, job)["v"], reference.components_)

    sparse = data.copy()
    sparse[np.random.default_rng(3).random(sparse.shape) < 0.5] = 0
    sparse_uri = upload(algo_stack, {"s.pbr": encode_records(features=scipy.sparse.csr_matrix(sparse))})
    job = train(algo_stack, "pca", {"feature_dim": DIM, "num_components": K, "mini_batch_size": 100},
                {"train": (sparse_uri, RECORDIO)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = _model(algo_stack, job)
    sparse_reference = PCA(K).fit(sparse)
    np.testing.assert_allclose(model["s"][::-1], sparse_reference.singular_values_, rtol=1e-4)
    assert_same_components(model["v"], sparse_reference.components_)


def test_randomized_mode_and_subtract_mean_false(algo_stack):
    rng = np.random.default_rng(5)
    wide = np.concatenate([_low_rank(rng, 400, [10, 7, 5]) for _ in range(1)])
    uri = upload(algo_stack, {"x.pbr": encode_records(features=wide)})
    job = train(algo_stack, "pca", {"feature_dim": DIM, "num_components": 2, "mini_batch_size": 50,
                                    "algorithm_mode": "randomized", "extra_components": 2},
                {"train": (uri, RECORDIO)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = _model(algo_stack, job)
    reference = PCA(2).fit(wide)
    cosines = np.abs((model["v"][:, ::-1].T * reference.components_).sum(axis=1))
    assert np.all(cosines > 0.999), cosines
    np.testing.assert_allclose(model["s"][::-1], reference.singular_values_, rtol=1e-2)

    job = train(algo_stack, "pca", {"feature_dim": DIM, "num_components": 2, "mini_batch_size": 50,
                                    "subtract_mean": "False"}, {"train": (uri, RECORDIO)})
    model = _model(algo_stack, job)
    assert not model["mean"].any()
    _, singular, vt = np.linalg.svd(wide.astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(model["s"][::-1], singular[:2], rtol=1e-4)
    assert_same_components(model["v"], vt[:2], atol=1e-3)


def test_randomized_mode_on_wide_sparse_data_streams_a_sketch(algo_stack):
    # Wider than DENSE_LIMIT: the d × d scatter is never formed (a 5000 × 5000 float64 matrix).
    rng = np.random.default_rng(13)
    width, rows = DENSE_LIMIT + 904, 300
    topics = np.zeros((3, width))
    for t in range(3):
        topics[t, rng.choice(width, 40, replace=False)] = rng.uniform(1, 2, 40)
    weights = rng.normal(size=(rows, 3)) * [6, 3, 1.5]
    dense = (weights @ topics).astype(np.float32)
    uri = upload(algo_stack, {"wide.pbr": encode_records(features=scipy.sparse.csr_matrix(dense))})
    job = train(algo_stack, "pca", {"feature_dim": width, "num_components": 2, "mini_batch_size": 100,
                                    "algorithm_mode": "randomized"}, {"train": (uri, RECORDIO)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = job_logs(algo_stack, job["TrainingJobName"])
    assert any("solved with the sketch method (12 columns)" in line for line in lines)
    model = _model(algo_stack, job)
    reference = PCA(2).fit(dense)
    np.testing.assert_allclose(model["s"][::-1], reference.singular_values_, rtol=1e-3)
    assert_same_components(model["v"], reference.components_, atol=1e-3)


def test_two_hosts_sharded_by_s3_key_combine_both_shards(algo_stack):
    # Each shard varies along its own axes; only the combined data has all four directions.
    rng = np.random.default_rng(9)
    first = np.zeros((600, DIM), np.float32)
    first[:, :2] = rng.normal(size=(600, 2)) * [8, 5]
    second = np.zeros((600, DIM), np.float32)
    second[:, 2:4] = rng.normal(size=(600, 2)) * [7, 4]
    second += 3.0
    both = np.concatenate([first, second])
    uri = upload(algo_stack, {"shard-0.pbr": encode_records(features=first),
                              "shard-1.pbr": encode_records(features=second)})
    job = train(algo_stack, "pca", {"feature_dim": DIM, "num_components": K, "mini_batch_size": 100},
                {"train": (uri, RECORDIO)}, instances=2, distribution="ShardedByS3Key")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model = _model(algo_stack, job)
    reference = PCA(K).fit(both)
    np.testing.assert_allclose(model["s"][::-1], reference.singular_values_, rtol=1e-4)
    np.testing.assert_allclose(model["mean"][0], both.mean(axis=0), atol=1e-4)
    assert_same_components(model["v"], reference.components_, atol=1e-3)
    lines = job_logs(algo_stack, job["TrainingJobName"])
    assert any("combining 2 host(s): [600, 600] records" in line for line in lines)


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"feature_dim": DIM, "mini_batch_size": 10},
     "ClientError: No value(s) were specified for 'num_components' which are required hyperparameter(s)"),
    ({"feature_dim": DIM, "num_components": 2},
     "ClientError: No value(s) were specified for 'mini_batch_size' which are required hyperparameter(s)"),
    ({"feature_dim": DIM, "mini_batch_size": 10, "num_components": 20},
     f"ClientError: num_components (20) must not be greater than feature_dim ({DIM})"),
    ({"feature_dim": DIM, "mini_batch_size": 10, "num_components": 2, "algorithm_mode": "fast"},
     "ClientError: Unable to parse hyperparameter 'algorithm_mode'"),
    ({"feature_dim": DIM, "mini_batch_size": 10, "num_components": 2, "extra_components": -3},
     "ClientError: Hyperparameter 'extra_components' must be an integer greater than or equal to 0, or -1"),
    ({"feature_dim": DIM + 1, "mini_batch_size": 10, "num_components": 2},
     f"ClientError: The data has {DIM} features, but feature_dim is {DIM + 1}"),
])
def test_bad_hyperparameters_fail_with_client_error(algo_stack, data, hyperparameters, reason):
    uri = upload(algo_stack, {"x.csv": to_csv(data[:20], exact=True)})
    job = train(algo_stack, "pca", hyperparameters, {"train": (uri, "text/csv;label_size=0")})
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(reason), job["FailureReason"]


def test_bad_requests_are_model_errors(algo_stack, endpoint):
    for body, content_type, accept, status in bad_requests(DIM):
        assert model_error(algo_stack, endpoint, body, content_type, accept) == status, (body, content_type, accept)


def test_sketch_of_dense_batches_is_the_full_scatter_times_the_test_matrix():
    """The randomized (sketch) accumulator on dense data keeps Σ yᵀ(yΩ): the full scatter times Ω."""
    from algorithms.pca import moments as mom

    rng = np.random.default_rng(7)
    batches = [rng.normal(3.0, 1.0, (200, 40)).astype(np.float32) for _ in range(3)]
    omega = mom.test_matrix(40, 6)
    sketch, full = mom.Accumulator(40, omega), mom.Accumulator(40, None)
    for batch in batches:
        sketch.add(batch)
        full.add(batch)
    assert sketch.scatter.shape == (40, 6)
    np.testing.assert_allclose(sketch.scatter, full.scatter @ omega, rtol=1e-3, atol=1e-2)
