"""Factorization Machines through boto3 on every runtime: recordio-protobuf only (dense and
sparse; CSV is a ClientError naming the supported type), SageMaker's hyperparameters and
ClientErrors, the test metrics its tuning regexes read, the `model_algo-1` zip that AWS examples
open with MXNet, the answers (JSON and recordio in, no CSV), multi-host training on all shards,
and quality: an FM beats a linear model on data with pairwise interactions."""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest
import scipy.sparse
from sklearn.linear_model import LogisticRegression, Ridge

from algorithms.common.mxnet_checkpoint import read_params
from algorithms.io import encode_records, ndarray, read_records
from tests.algorithms.conftest import (assert_metrics_logged, deploy, invoke, job_logs, model_artifacts, model_error,
                                       train, upload)
from tests.algorithms.test_linear_learner import run_in_mxnet

RECORDIO = "application/x-recordio-protobuf"
TUNING_REGEXES = {  # the tuning metrics SageMaker documents for factorization-machines
    "test:binary_classification_accuracy": r"#quality_metric: host=\S+, test binary_classification_accuracy <score>=(\S+)",
    "test:binary_classification_cross_entropy": r"#quality_metric: host=\S+, test binary_classification_cross_entropy <loss>=(\S+)",
    "test:binary_f_beta": r"#quality_metric: host=\S+, test binary_f_beta <score>=(\S+)",
}


def ratings(seed: int = 3, users: int = 60, items: int = 40, n: int = 20000):
    """A recommender-style problem: one-hot user and item, a label from the users' and items'
    latent tastes. Its signal is all in the user × item interaction, which no linear model has."""
    rng = np.random.default_rng(seed)
    tastes, traits = rng.normal(size=(users, 3)), rng.normal(size=(items, 3))
    u, i = rng.integers(users, size=n), rng.integers(items, size=n)
    y = ((tastes[u] * traits[i]).sum(axis=1) + rng.normal(scale=0.3, size=n) > 0).astype(np.float32)
    columns = np.column_stack([u, users + i]).ravel()
    X = scipy.sparse.csr_matrix((np.ones(2 * n, np.float32), columns, np.arange(0, 2 * n + 1, 2)),
                                shape=(n, users + items))
    return X, y


def interactions(seed: int = 4, n: int = 12000, d: int = 10):
    """Dense features; a regression target with pairwise interactions of rank 2 (x_i x_j weighted
    by <v_i, v_j>, i < j), a linear part and noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    v, c = rng.normal(size=(d, 2)), rng.normal(size=d)
    pairs = 0.5 * ((X @ v) ** 2 - (X ** 2) @ (v ** 2)).sum(axis=1)
    y = pairs + X @ c + rng.normal(scale=0.3, size=n)
    return X, y.astype(np.float32)


def open_model(stack, job) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(model_artifacts(stack, job)["model_algo-1"])) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def fm_scores(files: dict[str, bytes], X) -> np.ndarray:
    """ŷ computed as AWS's examples do from the extracted w0, w1 and V."""
    params = read_params(files["params"])
    w0, w, v = params["w0_weight"], params["w1_weight"], params["v"]
    xv = np.asarray(X @ v)
    pairs = 0.5 * (xv ** 2 - np.asarray(X.multiply(X) @ v ** 2 if scipy.sparse.issparse(X) else (X ** 2) @ v ** 2)).sum(1)
    return w0[0] + np.asarray(X @ w).ravel() + pairs


# -- binary classifier on sparse data ---------------------------------------------------------


@pytest.fixture(scope="module")
def sparse_data():
    X, y = ratings()
    return {"train": (X[:16000], y[:16000]), "test": (X[16000:], y[16000:])}


@pytest.fixture(scope="module")
def binary_job(algo_stack, sparse_data):
    (X, y), (Xt, yt) = sparse_data["train"], sparse_data["test"]
    train_uri = upload(algo_stack, {"a.pbr": encode_records(X[:8000], y[:8000]), "b.pbr": encode_records(X[8000:], y[8000:])})
    test_uri = upload(algo_stack, {"test.pbr": encode_records(Xt, yt)})
    job = train(algo_stack, "factorization-machines", {
        "feature_dim": 100, "num_factors": 8, "predictor_type": "binary_classifier", "epochs": 20,
        "mini_batch_size": 200, "factors_lr": 0.01, "linear_lr": 0.01, "factors_init_sigma": 0.1,
        "_tuning_objective_metric": "test:binary_classification_accuracy"},
        {"train": (train_uri, RECORDIO), "test": (test_uri, RECORDIO)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job


@pytest.fixture(scope="module")
def binary_endpoint(algo_stack, binary_job):
    return deploy(algo_stack, "factorization-machines", binary_job)


def test_test_metrics_and_progress_lines(algo_stack, binary_job):
    lines = job_logs(algo_stack, binary_job["TrainingJobName"])
    assert_metrics_logged(lines, TUNING_REGEXES)
    assert any(line.startswith("#test_score (algo-1) : ('binary_classification_accuracy', 0.") for line in lines)
    assert any(re.search(r"#quality_metric: host=algo-1, epoch=19, train binary_classification_cross_entropy <loss>=", line)
               for line in lines)
    assert any(re.search(r"#progress_metric: host=algo-1, completed 100 % of epochs", line) for line in lines)
    assert any(re.search(r"#throughput_metric: host=algo-1, train throughput=\S+ records/second", line) for line in lines)


def test_artifact_is_the_zip_aws_examples_unpack(algo_stack, binary_job):
    files = open_model(algo_stack, binary_job)
    assert sorted(files) == ["meta.json", "params", "symbol.json"]
    arrays = ndarray.loads(files["params"])  # as mx.nd.load returns it
    assert {k: v.shape for k, v in arrays.items()} == {"arg:w0_weight": (1,), "arg:w1_weight": (100, 1), "arg:v": (100, 8)}
    meta = json.loads(files["meta.json"])
    assert meta["training_parameters"]["feature_dim"] == 100 and meta["predictor_type"] == "binary_classifier"


def test_fm_beats_logistic_regression_on_interactions(algo_stack, binary_job, sparse_data):
    (X, y), (Xt, yt) = sparse_data["train"], sparse_data["test"]
    ours = np.mean((fm_scores(open_model(algo_stack, binary_job), Xt) > 0) == yt)
    linear = LogisticRegression(max_iter=5000).fit(X, y).score(Xt, yt)
    print(f"binary accuracy: FM {ours:.4f}, scikit-learn LogisticRegression {linear:.4f}")
    assert ours > 0.9 and ours > linear + 0.2


def test_artifact_loads_in_mxnet_as_aws_examples_do(algo_stack, binary_job, sparse_data):
    files = open_model(algo_stack, binary_job)
    Xt = sparse_data["test"][0][:5]
    renamed = {"model-symbol.json": files["symbol.json"], "model-0000.params": files["params"], "meta.json": files["meta.json"]}
    script = """
m = mx.module.Module.load('./model', 0, False, label_names=['out_label'])
print(json.dumps({k: list(v.shape) for k, v in m._arg_params.items()}))
print(json.load(open('meta.json'))['training_parameters']['feature_dim'])
m.bind(data_shapes=[('data', X.shape)], for_training=False)
print(json.dumps(m.predict(mx.io.NDArrayIter(X, batch_size=len(X))).asnumpy().ravel().tolist()))
"""
    shapes, feature_dim, predictions = run_in_mxnet(renamed, Xt.toarray(), script)
    assert json.loads(shapes) == {"w0_weight": [1], "w1_weight": [100, 1], "v": [100, 8]} and feature_dim == "100"
    assert np.allclose(json.loads(predictions), 1 / (1 + np.exp(-fm_scores(files, Xt))), rtol=1e-4)


def test_endpoint_answers_json_and_recordio(algo_stack, binary_job, binary_endpoint, sparse_data):
    X = sparse_data["test"][0][:4]
    expected = 1 / (1 + np.exp(-fm_scores(open_model(algo_stack, binary_job), X)))
    dense = {"instances": [{"features": row.tolist()} for row in X.toarray()]}
    body, mime = invoke(algo_stack, binary_endpoint, json.dumps(dense).encode(), "application/json")
    predictions = json.loads(body)["predictions"]
    assert mime == "application/json" and list(predictions[0]) == ["score", "predicted_label"]
    assert np.allclose([p["score"] for p in predictions], expected, rtol=1e-4)
    assert [p["predicted_label"] for p in predictions] == [int(s >= 0.5) for s in expected]
    sparse = {"instances": [{"data": {"features": {"keys": row.indices.tolist(), "values": row.data.tolist(),
                                                   "shape": [100]}}} for row in X]}
    body, mime = invoke(algo_stack, binary_endpoint, json.dumps(sparse).encode(), "application/json", "application/jsonlines")
    assert mime == "application/jsonlines" and [json.loads(line) for line in body.decode().splitlines()] == predictions
    body, mime = invoke(algo_stack, binary_endpoint, encode_records(X), RECORDIO, RECORDIO)  # sparse records
    records = read_records(io.BytesIO(body))
    assert np.allclose([r.label["score"].values[0] for r in records], expected, rtol=1e-4)
    assert [r.label["predicted_label"].values[0] for r in records] == [p["predicted_label"] for p in predictions]


def test_endpoint_refuses_csv_and_reports_bad_requests(algo_stack, binary_endpoint):
    assert model_error(algo_stack, binary_endpoint, b"1,0,0", "text/csv") == 415
    one = json.dumps({"instances": [{"features": [0.0] * 100}]}).encode()
    assert model_error(algo_stack, binary_endpoint, one, "application/json", "text/csv") == 406
    assert model_error(algo_stack, binary_endpoint, b"{not json", "application/json") == 400
    assert model_error(algo_stack, binary_endpoint, b'{"instances": [[1, 2]]}', "application/json") == 400


# -- regression on dense data, Pipe mode ----------------------------------------------------------


def test_regressor_beats_ridge_on_pairwise_interactions_in_pipe_mode(algo_stack):
    X, y = interactions()
    uri = upload(algo_stack, {"train.pbr": encode_records(X[:10000], y[:10000])})
    test_uri = upload(algo_stack, {"test.pbr": encode_records(X[10000:], y[10000:])})
    job = train(algo_stack, "factorization-machines", {
        "feature_dim": 10, "num_factors": 4, "predictor_type": "regressor", "epochs": 12, "mini_batch_size": 100,
        "factors_lr": 0.01, "linear_lr": 0.01, "factors_init_sigma": 0.1},
        {"train": (uri, RECORDIO), "test": (test_uri, RECORDIO)}, mode="Pipe")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = job_logs(algo_stack, job["TrainingJobName"])
    assert len([line for line in lines if re.search(r"#quality_metric: host=algo-1, epoch=\d+, train rmse <loss>=", line)]) == 12
    test_rmse = [float(m.group(1)) for line in lines if (m := re.search(r"#quality_metric: host=\S+, test rmse <loss>=(\S+)", line))]
    assert any(line.startswith("#test_score (algo-1) : ('rmse', ") for line in lines)
    files = open_model(algo_stack, job)
    ours = np.sqrt(np.mean((fm_scores(files, X[10000:]) - y[10000:]) ** 2))
    linear = np.sqrt(np.mean((Ridge().fit(X[:10000], y[:10000]).predict(X[10000:]) - y[10000:]) ** 2))
    print(f"regression RMSE: FM {ours:.4f}, scikit-learn Ridge {linear:.4f}")
    assert test_rmse == [pytest.approx(ours, rel=1e-3)] and ours < 0.5 * linear
    endpoint = deploy(algo_stack, "factorization-machines", job)
    body, _ = invoke(algo_stack, endpoint, encode_records(X[:2]), RECORDIO, "application/json")
    predictions = json.loads(body)["predictions"]
    assert [list(p) for p in predictions] == [["score"], ["score"]]
    assert np.allclose([p["score"] for p in predictions], fm_scores(files, X[:2]), rtol=1e-4, atol=1e-5)


# -- multi-host ----------------------------------------------------------------------------------


def test_two_hosts_sharded_by_s3_key_train_on_both_shards(algo_stack):
    # Each shard holds one class only: a model that saw one shard could only answer that class.
    rng = np.random.default_rng(6)
    X = rng.normal(size=(4000, 5)).astype(np.float32)
    X[:, 0] = np.abs(X[:, 0]) + 0.2
    negatives, positives = X[:2000] * np.array([-1, 1, 1, 1, 1], np.float32), X[2000:]
    uri = upload(algo_stack, {"shard-a.pbr": encode_records(negatives, np.zeros(2000, np.float32)),
                              "shard-b.pbr": encode_records(positives, np.ones(2000, np.float32))})
    job = train(algo_stack, "factorization-machines", {"feature_dim": 5, "num_factors": 2, "predictor_type": "binary_classifier",
                                                       "epochs": 5, "linear_lr": 0.05, "mini_batch_size": 100},
                {"train": (uri, RECORDIO)}, instances=2, distribution="ShardedByS3Key")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    test = np.concatenate([negatives[:200], positives[:200]])
    predicted = fm_scores(open_model(algo_stack, job), test) > 0
    assert np.mean(predicted == np.r_[np.zeros(200), np.ones(200)]) > 0.97


# -- ClientErrors -------------------------------------------------------------------------------


def test_csv_training_data_is_a_client_error_naming_recordio(algo_stack):
    uri = upload(algo_stack, {"train.csv": b"1,0.5,0.25\n0,0.1,0.2\n"})
    job = train(algo_stack, "factorization-machines", {"feature_dim": 2, "num_factors": 2, "predictor_type": "regressor"},
                {"train": (uri, "text/csv")})
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == ("ClientError: Channel 'train' has content type 'text/csv'; Factorization Machines "
                                    "trains on application/x-recordio-protobuf (Float32 tensors) only")


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"feature_dim": 2, "predictor_type": "regressor"},
     "ClientError: No value(s) were specified for 'num_factors' which are required hyperparameter(s)"),
    ({"feature_dim": 2, "num_factors": 2, "predictor_type": "multiclass_classifier"},
     "ClientError: Unable to parse hyperparameter 'predictor_type'"),
    ({"feature_dim": 2, "num_factors": 2, "predictor_type": "regressor", "factors_lr": "-0.1"},
     "ClientError: Hyperparameter 'factors_lr' must be a non-negative float"),
])
def test_bad_hyperparameters_fail_before_any_data_is_read(algo_stack, hyperparameters, reason):
    uri = upload(algo_stack, {"x.pbr": b"not recordio at all"})  # reading it would fail differently
    job = train(algo_stack, "factorization-machines", hyperparameters, {"train": (uri, RECORDIO)})
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(reason), job["FailureReason"]


def test_float64_records_are_a_client_error(algo_stack):
    uri = upload(algo_stack, {"x.pbr": encode_records(np.ones((10, 2)), np.ones(10))})
    job = train(algo_stack, "factorization-machines", {"feature_dim": 2, "num_factors": 2, "predictor_type": "regressor"},
                {"train": (uri, RECORDIO)})
    assert job["FailureReason"].startswith("ClientError: Channel 'train' holds Float64Tensor features; Factorization "
                                           "Machines reads recordio-protobuf Float32Tensor data only")
