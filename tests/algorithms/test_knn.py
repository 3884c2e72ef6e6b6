"""Built-in k-NN through boto3 on every runtime: SageMaker's hyperparameters, formats, sampling,
test scores, `model_algo-1` artifact (a faiss index and its labels) and answers, and Flat-index
predictions that equal brute-force nearest neighbours computed with numpy."""

from __future__ import annotations

import io
import json

import faiss
import numpy as np
import pytest

from algorithms.io import encode_records, read_records
from algorithms.knn import index as knn_index
from tests.algorithms.conftest import deploy, invoke, job_logs, model_artifacts, model_error, to_csv, train, upload


@pytest.fixture(scope="module")
def clusters():
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 2.2, (4, 12))
    y = rng.integers(0, 4, 1800).astype(np.float32)
    X = (centres[y.astype(int)] + rng.normal(0, 1.0, (1800, 12))).astype(np.float32)
    return X[:1500], y[:1500], X[1500:], y[1500:]


def brute_force(train_X, train_y, queries, k):
    """(squared distances, neighbour labels, majority label), nearest first; ties to the nearest."""
    d = ((queries[:, None, :].astype(np.float64) - train_X[None].astype(np.float64)) ** 2).sum(-1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    labels = train_y[order]
    votes = []
    for row in labels:
        counts = {v: (row == v).sum() for v in row}
        best = max(counts.values())
        votes.append(next(v for v in row if counts[v] == best))
    return np.take_along_axis(d, order, 1), labels, np.array(votes)


def load_artifact(stack, job):
    files = model_artifacts(stack, job)
    assert list(files) == ["model_algo-1"]
    # read_artifact reads the current layout and the earlier .npz (which an algorithms image built
    # before 2026-12-05 still writes); test_artifact_round_trip_and_the_earlier_npz_layout pins the layout
    model = knn_index.read_artifact(files["model_algo-1"])
    return model.index, model.labels, model.config


def score_in(lines, name):
    for line in lines:
        if line.startswith(f"#test_score (algo-1) : ('{name}', "):
            return float(line.rsplit(", ", 1)[1].rstrip(")"))
    raise AssertionError(f"no {name} test score in {lines}")


# -- classifier, Flat L2: exact against brute force --------------------------------------------------

HP = {"feature_dim": 12, "k": 7, "predictor_type": "classifier", "sample_size": 5000}


@pytest.fixture(scope="module")
def flat_job(algo_stack, clusters):
    X, y, Xt, yt = clusters
    uri = upload(algo_stack, {"train/a.csv": to_csv(X[:800], y[:800]), "train/b.csv": to_csv(X[800:], y[800:]),
                              "test/t.csv": to_csv(Xt, yt)})
    job = train(algo_stack, "knn", {**HP, "_kvstore": "dist_async", "_num_gpus": "auto"},
                {"train": (uri + "/train", "text/csv"), "test": (uri + "/test", "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job


@pytest.fixture(scope="module")
def flat_endpoint(algo_stack, flat_job):
    return deploy(algo_stack, "knn", flat_job)


def test_flat_training_indexes_every_record_and_reports_the_test_accuracy(algo_stack, flat_job, clusters):
    X, y, Xt, yt = clusters
    index, labels, config = load_artifact(algo_stack, flat_job)
    assert index.ntotal == 1500 and index.d == 12 and np.array_equal(labels, y)
    assert config["k"] == 7 and config["predictor_type"] == "classifier"
    lines = job_logs(algo_stack, flat_job["TrainingJobName"])
    expected = float(np.mean(brute_force(X, y, Xt, 7)[2] == yt))
    assert score_in(lines, "accuracy") == pytest.approx(expected) and expected > 0.9
    assert f"#quality_metric: host=algo-1, test accuracy <score>={score_in(lines, 'accuracy')}" in lines


def test_flat_predictions_equal_brute_force_neighbours(algo_stack, flat_endpoint, clusters):
    X, y, Xt, yt = clusters
    distances, neighbours, votes = brute_force(X, y, Xt[:40], 7)
    body, content_type = invoke(algo_stack, flat_endpoint, to_csv(Xt[:40]), "text/csv")
    assert content_type == "application/json"
    assert [p["predicted_label"] for p in json.loads(body)["predictions"]] == votes.tolist()
    body, _ = invoke(algo_stack, flat_endpoint, to_csv(Xt[:40]), "text/csv", "application/json; verbose=true")
    predictions = json.loads(body)["predictions"]
    assert [p["labels"] for p in predictions] == neighbours.tolist()
    for p, row in zip(predictions, distances):
        assert p["distances"] == sorted(p["distances"]) and p["distances"] == pytest.approx(row, rel=1e-4)


def test_every_request_and_response_format(algo_stack, flat_endpoint, clusters):
    X, y, Xt, yt = clusters
    votes = brute_force(X, y, Xt[:5], 7)[2].tolist()
    instances = {"instances": [{"features": Xt[0].tolist()}] + [{"data": {"features": {"values": r.tolist()}}}
                                                                 for r in Xt[1:5]]}
    body, _ = invoke(algo_stack, flat_endpoint, json.dumps(instances).encode(), "application/json")
    assert [p["predicted_label"] for p in json.loads(body)["predictions"]] == votes
    jsonl = "\n".join(json.dumps({"features": r.tolist()}) for r in Xt[:5]).encode()
    body, content_type = invoke(algo_stack, flat_endpoint, jsonl, "application/jsonlines", "application/jsonlines")
    assert content_type == "application/jsonlines"
    assert [json.loads(line)["predicted_label"] for line in body.splitlines()] == votes
    body, content_type = invoke(algo_stack, flat_endpoint, encode_records(features=Xt[:5]),
                                "application/x-recordio-protobuf", "application/x-recordio-protobuf; verbose=true")
    records = read_records(io.BytesIO(body))
    assert content_type == "application/x-recordio-protobuf"
    assert [float(r.label["predicted_label"].values[0]) for r in records] == votes
    assert all(len(r.label["distances"].values) == 7 and len(r.label["labels"].values) == 7 for r in records)
    body, _ = invoke(algo_stack, flat_endpoint, to_csv(Xt[:5]), "text/csv;label_size=0", "*/*")
    assert [p["predicted_label"] for p in json.loads(body)["predictions"]] == votes


def test_error_codes(algo_stack, flat_endpoint, clusters):
    Xt = clusters[2]
    for body, content_type, accept, code in [(to_csv(Xt[:2]), "text/plain", None, 415),
                                             (b"1,2,x", "text/csv", None, 400),
                                             (to_csv(Xt[:2, :5]), "text/csv", None, 400),
                                             (to_csv(Xt[:2]), "text/csv", "image/png", 406)]:
        assert model_error(algo_stack, flat_endpoint, body, content_type, accept) == code, (content_type, accept)


# -- regressor, recordio, sampling ---------------------------------------------------------------------


def test_regressor_on_recordio_reports_the_test_mse(algo_stack, clusters):
    X, _, Xt, _ = clusters
    target = (X[:, 0] * 2 + X[:, 1]).astype(np.float32)
    target_t = (Xt[:, 0] * 2 + Xt[:, 1]).astype(np.float32)
    uri = upload(algo_stack, {"train/a.pbr": encode_records(features=X, labels=target),
                              "test/t.pbr": encode_records(features=Xt, labels=target_t)})
    job = train(algo_stack, "knn", {**HP, "predictor_type": "regressor", "k": 4},
                {"train": (uri + "/train", "application/x-recordio-protobuf"),
                 "test": (uri + "/test", "application/x-recordio-protobuf")}, mode="Pipe")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    neighbours = brute_force(X, target, Xt, 4)[1]
    expected = float(np.mean((target_t.astype(np.float64) - neighbours.mean(axis=1)) ** 2))
    lines = job_logs(algo_stack, job["TrainingJobName"])
    assert score_in(lines, "mse") == pytest.approx(expected, rel=1e-4)
    assert any(line.startswith("#quality_metric: host=algo-1, test mse <loss>=") for line in lines)


def test_sample_size_keeps_a_uniform_sample_of_the_training_records(algo_stack, clusters):
    X, y, _, _ = clusters
    uri = upload(algo_stack, {"train/a.csv": to_csv(X, y)})
    job = train(algo_stack, "knn", {**HP, "sample_size": 300}, {"train": (uri + "/train", "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    index, labels, _ = load_artifact(algo_stack, job)
    assert index.ntotal == 300 and len(labels) == 300
    points = index.reconstruct_n(0, 300)
    rows = {r.tobytes(): i for i, r in enumerate(X)}
    positions = [rows[p.tobytes()] for p in points]  # every indexed point is a training record
    assert positions == sorted(positions) and positions[-1] > 1000  # kept in order, drawn from the whole stream
    assert np.array_equal(labels, y[positions])


# -- other indexes, metrics and dimension reduction --------------------------------------------------


@pytest.mark.parametrize("extra", [
    {"index_type": "faiss.IVFFlat"},
    {"index_type": "faiss.IVFFlat", "faiss_index_ivf_nlists": "10", "dimension_reduction_type": "fjlt",
     "dimension_reduction_target": "8"},
    {"index_type": "faiss.IVFPQ", "faiss_index_pq_m": "4"},
    {"index_type": "faiss.IVFPQ", "faiss_index_pq_m": "8", "dimension_reduction_type": "sign",
     "dimension_reduction_target": "10"},
    {"index_metric": "COSINE"},
    {"index_metric": "INNER_PRODUCT", "index_type": "faiss.IVFFlat"},
])
def test_index_types_metrics_and_dimension_reduction(algo_stack, clusters, extra):
    X, y, Xt, yt = clusters
    uri = upload(algo_stack, {"train/a.csv": to_csv(X, y), "test/t.csv": to_csv(Xt, yt)})
    job = train(algo_stack, "knn", {**HP, **extra}, {"train": (uri + "/train", "text/csv"),
                                                     "test": (uri + "/test", "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    index, labels, config = load_artifact(algo_stack, job)
    assert index.ntotal == 1500 and config["index_metric"] == extra.get("index_metric", "L2")
    dim = int(extra.get("dimension_reduction_target", 12))
    assert index.d == dim + ((-dim) % int(extra.get("faiss_index_pq_m", 1)))  # IVFPQ pads to a multiple of m
    floor = 0.6 if extra.get("index_metric") == "INNER_PRODUCT" else 0.85
    assert score_in(job_logs(algo_stack, job["TrainingJobName"]), "accuracy") > floor


def test_cosine_flat_equals_brute_force_cosine_neighbours(algo_stack, clusters):
    X, y, Xt, yt = clusters
    uri = upload(algo_stack, {"train/a.csv": to_csv(X, y)})
    job = train(algo_stack, "knn", {**HP, "k": 3, "index_metric": "COSINE"}, {"train": (uri + "/train", "text/csv")})
    endpoint = deploy(algo_stack, "knn", job)
    body, _ = invoke(algo_stack, endpoint, to_csv(Xt[:10]), "text/csv", "application/json;verbose=true")
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    queries = Xt[:10] / np.linalg.norm(Xt[:10], axis=1, keepdims=True)
    similarity = queries.astype(np.float64) @ unit.T.astype(np.float64)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :3]
    for p, row, sims in zip(json.loads(body)["predictions"], order, similarity):
        assert p["labels"] == y[row].tolist()
        assert p["distances"] == pytest.approx((1 - sims[row]).tolist(), abs=1e-5)


# -- several hosts --------------------------------------------------------------------------------------


def test_two_hosts_sample_their_shards_and_algo_1_indexes_both(algo_stack, clusters):
    X, y, _, _ = clusters
    order = np.argsort(X[:, 0])
    halves = [order[:700], order[700:1400]]
    uri = upload(algo_stack, {f"train/half-{i}.csv": to_csv(X[h], y[h]) for i, h in enumerate(halves)})
    job = train(algo_stack, "knn", {**HP, "sample_size": 1000}, {"train": (uri + "/train", "text/csv")},
                instances=2, distribution="ShardedByS3Key")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    index, labels, _ = load_artifact(algo_stack, job)
    indexed = {p.tobytes() for p in index.reconstruct_n(0, index.ntotal)}
    assert index.ntotal == 1400 and indexed == {r.tobytes() for r in X[np.concatenate(halves)]}


# -- failures ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"feature_dim": 12, "predictor_type": "classifier", "sample_size": 10},
     "ClientError: No value(s) were specified for 'k' which are required hyperparameter(s)"),
    ({**HP, "predictor_type": "ranker"}, "ClientError: Unable to parse hyperparameter 'predictor_type'"),
    ({**HP, "dimension_reduction_type": "sign"}, "ClientError: dimension_reduction_target is required"),
    ({**HP, "dimension_reduction_type": "sign", "dimension_reduction_target": 12},
     "ClientError: dimension_reduction_target must be less than feature_dim"),
    ({**HP, "index_type": "faiss.IVFPQ", "index_metric": "COSINE"},
     "ClientError: index_metric COSINE is not supported with index_type faiss.IVFPQ"),
    ({**HP, "faiss_index_pq_m": 5}, "ClientError: Hyperparameter 'faiss_index_pq_m' must be one of"),
    ({**HP, "feature_dim": 3}, "ClientError: The data has 12 features, but feature_dim is 3"),
    ({**HP, "k": 50, "sample_size": 20}, "ClientError: k=50 neighbours need at least 50 training records"),
])
def test_bad_hyperparameters_and_data_are_client_errors(algo_stack, clusters, hyperparameters, reason):
    X, y, _, _ = clusters
    uri = upload(algo_stack, {"train/a.csv": to_csv(X[:100], y[:100])})
    job = train(algo_stack, "knn", hyperparameters, {"train": (uri + "/train", "text/csv")})
    assert job["TrainingJobStatus"] == "Failed" and job["FailureReason"].startswith(reason), job["FailureReason"]


# -- the artifact's layout -----------------------------------------------------------------------


def test_artifact_round_trip_and_the_earlier_npz_layout(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 6)).astype(np.float32), rng.integers(0, 3, 50).astype(np.float32)
    hp = {"feature_dim": 6, "k": 3, "predictor_type": "classifier", "dimension_reduction_type": "sign",
          "dimension_reduction_target": 4, "index_type": "faiss.Flat", "index_metric": "L2",
          "faiss_index_ivf_nlists": "auto", "faiss_index_pq_m": None}
    model = knn_index.build(X, y, hp)
    knn_index.save(model, tmp_path / "new")
    assert faiss.read_index(str(tmp_path / "new")).ntotal == 50  # faiss opens the file as it is
    with open(tmp_path / "old", "wb") as f:  # what versions before 2026-12-05 wrote
        np.savez(f, index=faiss.serialize_index(model.index), labels=model.labels, projection=model.projection,
                 config=np.array(json.dumps(model.config)))
    expected = model.predict(X[:10])
    for name in ("new", "old"):
        loaded = knn_index.load(tmp_path / name)
        assert loaded.config == model.config
        np.testing.assert_array_equal(loaded.labels, model.labels)
        np.testing.assert_array_equal(loaded.projection, model.projection)
        for key, values in loaded.predict(X[:10]).items():
            np.testing.assert_array_equal(values, expected[key])
