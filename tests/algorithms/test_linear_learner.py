"""Linear Learner through boto3 on every runtime: SageMaker's hyperparameters and ClientErrors,
csv and recordio-protobuf channels (train, validation, test; File and Pipe), the metric lines its
tuning regexes read, the `model_algo-1` zip, every request and answer format, multi-host
training on all shards, and quality against scikit-learn on the same data."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tempfile
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from algorithms.common.mxnet_checkpoint import read_params
from algorithms.io import encode_records, ndarray, read_records
from tests.algorithms.conftest import (ROLE, assert_metrics_logged, deploy, image_uri, invoke, job_logs, model_artifacts,
                                       model_error, to_csv, train, upload)
from tests.algorithms.test_ndarray_mxnet import SETUP, VENV

RECORDIO = "application/x-recordio-protobuf"
# Regexes of SageMaker's own metric definitions for linear-learner (from a real tuning job).
TUNING_REGEXES = {
    "train:objective_loss": r"#quality_metric: host=\S+, epoch=\S+, train \S+_objective <loss>=(\S+)",
    "validation:objective_loss": r"#quality_metric: host=\S+, epoch=\S+, validation \S+_objective <loss>=(\S+)",
    "validation:binary_classification_accuracy": r"#quality_metric: host=\S+, validation binary_classification_accuracy <score>=(\S+)",
    "validation:roc_auc_score": r"#quality_metric: host=\S+, validation roc_auc_score <score>=(\S+)",
    "test:binary_f_beta": r"#quality_metric: host=\S+, test binary_f_\S+ <score>=(\S+)",
    "test:binary_classification_accuracy": r"#quality_metric: host=\S+, test binary_classification_accuracy <score>=(\S+)",
    "test:objective_loss": r"#quality_metric: host=\S+, test \S+_objective <loss>=(\S+)",
    "train:progress": r"#progress_metric: host=\S+, completed (\S+) %",
    "train:throughput": r"#throughput_metric: host=\S+, train throughput=(\S+) records/second",
}


def synthetic(kind: str, n: int = 9000, d: int = 24, seed: int = 11):
    """Features on very different scales and offsets (so normalisation matters) and labels from a
    sparse linear model: binary (logistic noise), regressor (gaussian noise), multiclass (4)."""
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) * rng.uniform(0.1, 20, d) + rng.uniform(-30, 30, d)).astype(np.float32)
    Z = (X - X.mean(0)) / X.std(0)
    w = rng.normal(size=d) * (rng.uniform(size=d) < 0.6)
    if kind == "binary":
        y = rng.uniform(size=n) < 1 / (1 + np.exp(-(Z @ w * 0.6 + 0.5)))
    elif kind == "regressor":
        y = Z @ w * 3 + 50 + rng.normal(scale=4, size=n)
    else:
        y = np.argmax(Z @ rng.normal(size=(d, 4)) + rng.gumbel(size=(n, 4)), axis=1)
    return X, y.astype(np.float32)


def logistic_regression():
    """scikit-learn's reference on standardised features (as Linear Learner's normalize_data), which
    is also what lets lbfgs converge quickly on features of very different scales."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def open_model(stack, job) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(model_artifacts(stack, job)["model_algo-1"])) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def weights_of(files: dict[str, bytes]):
    params = read_params(files["mx-mod-0000.params"])
    return params["fc0_weight"], params["fc0_bias"], json.loads(files["additional-params.json"])


def run_in_mxnet(files: dict[str, bytes], X: np.ndarray, script: str) -> list[str]:
    """Run ``script`` with the real mxnet 1.9.1 (its own venv, see test_ndarray_mxnet) in a folder
    holding ``files`` and with ``X`` loaded; its stdout lines. Skips without the venv (fails in CI)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        message = f"no mxnet venv at {VENV}; build it with `{SETUP}`"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"CI is set but {message}")
        pytest.skip(message)
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            (Path(folder) / name).write_bytes(data)
        np.save(Path(folder) / "x.npy", X)
        preamble = "import json, logging, warnings\nwarnings.simplefilter('ignore')\nimport numpy as np, mxnet as mx\n" \
                   "logging.disable(logging.WARNING)\nX = np.load('x.npy')\n"
        done = subprocess.run([str(python), "-c", preamble + script], cwd=folder, capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


# -- binary classifier: one job (recordio train in two files, csv validation, recordio test) ----


@pytest.fixture(scope="module")
def binary():
    X, y = synthetic("binary")
    return {"train": (X[:6000], y[:6000]), "validation": (X[6000:7500], y[6000:7500]), "test": (X[7500:], y[7500:])}


def _train_with_metric_definitions(stack, hyperparameters, channels) -> dict:
    """CreateTrainingJob with SageMaker's own metric definitions, as a tuning job sends them."""
    name = f"ll-metrics-{uuid.uuid4().hex[:8]}"
    bucket = channels["train"][0].split("/")[2]
    stack.sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE, HyperParameters={k: str(v) for k, v in hyperparameters.items()},
        AlgorithmSpecification={"TrainingImage": image_uri("linear-learner"), "TrainingInputMode": "File",
                                "MetricDefinitions": [{"Name": k, "Regex": v} for k, v in TUNING_REGEXES.items()]},
        InputDataConfig=[{"ChannelName": ch, "ContentType": ct, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
            for ch, (uri, ct) in channels.items()],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    stack.sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    return stack.sm.describe_training_job(TrainingJobName=name)


@pytest.fixture(scope="module")
def binary_job(algo_stack, binary):
    (X, y), (Xv, yv), (Xt, yt) = binary["train"], binary["validation"], binary["test"]
    channels = {
        "train": (upload(algo_stack, {"part-0.pbr": encode_records(X[:3000], y[:3000]),
                                      "part-1.pbr": encode_records(X[3000:], y[3000:])}), RECORDIO),
        "validation": (upload(algo_stack, {"validation.csv": to_csv(Xv, yv, exact=True)}), "text/csv"),
        "test": (upload(algo_stack, {"test.pbr": encode_records(Xt, yt)}), RECORDIO)}
    job = _train_with_metric_definitions(algo_stack, {
        "predictor_type": "binary_classifier", "feature_dim": X.shape[1], "mini_batch_size": 200,
        "_tuning_objective_metric": "validation:binary_classification_accuracy", "_kvstore": "dist_sync"}, channels)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job


@pytest.fixture(scope="module")
def binary_endpoint(algo_stack, binary_job):
    return deploy(algo_stack, "linear-learner", binary_job)


def test_metric_lines_match_sagemakers_tuning_regexes(algo_stack, binary_job):
    lines = job_logs(algo_stack, binary_job["TrainingJobName"])
    assert_metrics_logged(lines, TUNING_REGEXES)
    assert any(re.search(r"#test_score \(algo-1\) : \('binary_classification_accuracy', 0\.\d+\)", line) for line in lines)
    assert any("#validation_score (algo-1) : ('roc_auc_score'," in line for line in lines)
    assert any(re.search(r"#quality_metric: host=algo-1, epoch=0, validation binary_classification_accuracy <score>=0\.\d+",
                         line) for line in lines)
    assert any("#early_stopping_criteria_metric: host=algo-1, epoch=0, criteria=" in line for line in lines)
    assert any("Best model found for hyperparameters:" in line for line in lines)
    final = {m["MetricName"]: m["Value"] for m in binary_job["FinalMetricDataList"]}
    assert set(final) == set(TUNING_REGEXES)
    assert 0.7 < final["test:binary_classification_accuracy"] <= 1 and final["train:progress"] == 100


def test_artifact_is_a_zip_holding_an_mxnet_checkpoint(algo_stack, binary_job, binary):
    files = open_model(algo_stack, binary_job)
    assert sorted(files) == ["additional-params.json", "manifest.json", "mx-mod-0000.params", "mx-mod-symbol.json"]
    arrays = ndarray.loads(files["mx-mod-0000.params"])  # as mx.nd.load returns it
    assert sorted(arrays) == ["arg:fc0_bias", "arg:fc0_weight"]
    assert arrays["arg:fc0_weight"].shape == (24, 1) and arrays["arg:fc0_bias"].shape == (1,)
    assert arrays["arg:fc0_weight"].dtype == np.float32
    symbol = json.loads(files["mx-mod-symbol.json"])
    assert [n["name"] for n in symbol["nodes"] if n["op"] == "null"] == ["data", "fc0_weight", "fc0_bias", "out_label"]
    params = json.loads(files["additional-params.json"])
    assert params["predictor_type"] == "binary_classifier" and 0 < params["threshold"] < 1
    assert json.loads(files["manifest.json"])["files"] == sorted(files.keys() - {"manifest.json"})


def test_binary_accuracy_matches_logistic_regression(algo_stack, binary_job, binary):
    (X, y), (Xt, yt) = binary["train"], binary["test"]
    weights, bias, params = weights_of(open_model(algo_stack, binary_job))
    ours = np.mean((sigmoid(Xt @ weights + bias)[:, 0] >= params["threshold"]) == yt)
    reference = logistic_regression().fit(X, y).score(Xt, yt)
    print(f"binary accuracy: ours {ours:.4f}, scikit-learn LogisticRegression {reference:.4f}")
    assert ours >= reference - 0.01


def test_artifact_loads_in_mxnet_as_aws_examples_do(algo_stack, binary_job, binary):
    files = open_model(algo_stack, binary_job)
    weights, bias, _ = weights_of(files)
    Xt = binary["test"][0][:6]
    script = """
mod = mx.module.Module.load('mx-mod', 0)  # the Developer Guide's recipe
print(json.dumps(mod._arg_params['fc0_weight'].asnumpy().flatten().tolist()))
mod.bind(data_shapes=[('data', X.shape)])
print(json.dumps(mod.predict(mx.io.NDArrayIter(X, batch_size=len(X))).asnumpy().ravel().tolist()))
"""
    weight_line, predictions = run_in_mxnet(files, Xt, script)
    assert np.allclose(json.loads(weight_line), weights.ravel())
    assert np.allclose(json.loads(predictions), sigmoid(Xt @ weights + bias).ravel(), rtol=1e-4)


def test_endpoint_answers_every_request_and_accept_type(algo_stack, binary_job, binary_endpoint, binary):
    X = binary["test"][0][:5]
    weights, bias, params = weights_of(open_model(algo_stack, binary_job))
    expected = sigmoid(X @ weights + bias)[:, 0]
    body, mime = invoke(algo_stack, binary_endpoint, to_csv(X, exact=True), "text/csv")
    predictions = json.loads(body)["predictions"]
    assert mime == "application/json" and list(predictions[0]) == ["score", "predicted_label"]
    assert np.allclose([p["score"] for p in predictions], expected, rtol=1e-4)
    assert [p["predicted_label"] for p in predictions] == [int(s >= params["threshold"]) for s in expected]
    dense = {"instances": [{"features": row.tolist()} for row in X]}
    assert json.loads(invoke(algo_stack, binary_endpoint, json.dumps(dense).encode(), "application/json")[0]) \
        == {"predictions": predictions}
    keys = np.flatnonzero(X[0])
    sparse = {"instances": [{"data": {"features": {"keys": keys.tolist(), "values": X[0, keys].tolist(), "shape": [24]}}}]}
    answer = json.loads(invoke(algo_stack, binary_endpoint, json.dumps(sparse).encode(), "application/json")[0])
    assert answer["predictions"][0]["score"] == pytest.approx(predictions[0]["score"], rel=1e-4)
    lines = "".join(json.dumps({"features": row.tolist()}) + "\n" for row in X).encode()
    body, mime = invoke(algo_stack, binary_endpoint, lines, "application/jsonlines", "application/jsonlines")
    assert mime == "application/jsonlines" and [json.loads(line) for line in body.decode().splitlines()] == predictions
    body, mime = invoke(algo_stack, binary_endpoint, encode_records(X), RECORDIO, RECORDIO)
    records = read_records(io.BytesIO(body))
    assert mime == RECORDIO and np.allclose([r.label["score"].values[0] for r in records], expected, rtol=1e-4)
    assert [r.label["predicted_label"].values[0] for r in records] == [p["predicted_label"] for p in predictions]
    body, mime = invoke(algo_stack, binary_endpoint, to_csv(X[:1], exact=True), "text/csv", "text/csv")
    score, label = body.decode().strip().split(",")
    assert mime == "text/csv" and float(score) == pytest.approx(expected[0], rel=1e-4) and int(label) == predictions[0]["predicted_label"]


def test_endpoint_errors_are_model_errors_with_the_container_status(algo_stack, binary_endpoint):
    row = ",".join(["1.5"] * 24).encode()
    assert model_error(algo_stack, binary_endpoint, row, "text/plain") == 415
    assert model_error(algo_stack, binary_endpoint, b"1,2,x", "text/csv") == 400
    assert model_error(algo_stack, binary_endpoint, b"1,2,3", "text/csv") == 400  # 3 features, not 24
    assert model_error(algo_stack, binary_endpoint, row, "text/csv", "image/png") == 406


# -- regression and multiclass -------------------------------------------------------------


def test_regressor_r2_matches_ridge_from_csv_without_validation(algo_stack):
    X, y = synthetic("regressor")
    train_uri = upload(algo_stack, {"train.csv": to_csv(X[:7000], y[:7000], exact=True)})
    test_uri = upload(algo_stack, {"test.csv": to_csv(X[7000:], y[7000:], exact=True)})
    job = train(algo_stack, "linear-learner", {"predictor_type": "regressor", "feature_dim": 24},
                {"train": (train_uri, "text/csv"), "test": (test_uri, "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = job_logs(algo_stack, job["TrainingJobName"])
    assert any(re.search(r"#quality_metric: host=algo-1, epoch=0, train mse_objective <loss>=", line) for line in lines)
    assert any(re.search(r"#quality_metric: host=algo-1, test mse <loss>=", line) for line in lines)
    assert any(line.startswith("#test_score (algo-1) : ('absolute_loss', ") for line in lines)
    weights, bias, params = weights_of(open_model(algo_stack, job))
    ours = r2_score(y[7000:], (X[7000:] @ weights + bias)[:, 0])
    reference = Ridge().fit(X[:7000], y[:7000]).score(X[7000:], y[7000:])
    print(f"regression R2: ours {ours:.4f}, scikit-learn Ridge {reference:.4f}")
    assert ours >= reference - 0.01
    endpoint = deploy(algo_stack, "linear-learner", job)
    body, _ = invoke(algo_stack, endpoint, to_csv(X[:2], exact=True), "text/csv", "application/jsonlines")
    answers = [json.loads(line) for line in body.decode().splitlines()]
    assert [list(a) for a in answers] == [["score"], ["score"]]
    assert np.allclose([a["score"] for a in answers], (X[:2] @ weights + bias)[:, 0], rtol=1e-4)


def test_multiclass_classifier(algo_stack):
    X, y = synthetic("multiclass")
    uri = upload(algo_stack, {"train.pbr": encode_records(X[:7000], y[:7000])})
    validation = upload(algo_stack, {"validation.pbr": encode_records(X[7000:8000], y[7000:8000])})
    job = train(algo_stack, "linear-learner", {"predictor_type": "multiclass_classifier", "num_classes": 4,
                                               "feature_dim": 24, "epochs": 10},
                {"train": (uri, RECORDIO), "validation": (validation, RECORDIO)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = job_logs(algo_stack, job["TrainingJobName"])
    for name in ("multiclass_cross_entropy_objective <loss>", "multiclass_accuracy <score>",
                 "multiclass_top_k_accuracy_3 <score>", "dcg <score>", "macro_f_1.000 <score>"):
        assert any(f"#quality_metric: host=algo-1, validation {name}=" in line for line in lines), name
    weights, bias, _ = weights_of(open_model(algo_stack, job))
    assert weights.shape == (24, 4)
    ours = np.mean(np.argmax(X[8000:] @ weights + bias, axis=1) == y[8000:])
    reference = logistic_regression().fit(X[:7000], y[:7000]).score(X[8000:], y[8000:])
    print(f"multiclass accuracy: ours {ours:.4f}, scikit-learn LogisticRegression {reference:.4f}")
    assert ours >= reference - 0.03
    endpoint = deploy(algo_stack, "linear-learner", job)
    body, _ = invoke(algo_stack, endpoint, json.dumps({"instances": [X[0].tolist(), X[1].tolist()]}).encode(),
                     "application/json")
    predictions = json.loads(body)["predictions"]
    assert len(predictions[0]["score"]) == 4 and sum(predictions[0]["score"]) == pytest.approx(1, abs=1e-5)
    assert predictions[1]["predicted_label"] == int(np.argmax(predictions[1]["score"]))


# -- multi-host, Pipe mode ------------------------------------------------------------------


def test_two_hosts_sharded_by_s3_key_train_on_both_shards(algo_stack):
    # Each shard holds one class only: a model that saw one shard could only answer that class.
    rng = np.random.default_rng(5)
    X = rng.normal(size=(4000, 6)).astype(np.float32)
    X[:, 0] = np.abs(X[:, 0]) + 0.2
    negatives, positives = X[:2000] * np.array([-1, 1, 1, 1, 1, 1], np.float32), X[2000:]
    uri = upload(algo_stack, {"shard-a.pbr": encode_records(negatives, np.zeros(2000, np.float32)),
                              "shard-b.pbr": encode_records(positives, np.ones(2000, np.float32))})
    job = train(algo_stack, "linear-learner", {"predictor_type": "binary_classifier", "feature_dim": 6, "epochs": 5},
                {"train": (uri, RECORDIO)}, instances=2, distribution="ShardedByS3Key")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    weights, bias, params = weights_of(open_model(algo_stack, job))
    test = np.concatenate([negatives[:200], positives[:200]])
    predicted = sigmoid(test @ weights + bias)[:, 0] >= params["threshold"]
    assert np.mean(predicted == np.r_[np.zeros(200), np.ones(200)]) > 0.97


def test_pipe_mode_reads_the_channel_every_epoch(algo_stack, binary):
    X, y = binary["train"]
    uri = upload(algo_stack, {"train.pbr": encode_records(X, y)})
    job = train(algo_stack, "linear-learner", {"predictor_type": "binary_classifier", "feature_dim": 24,
                                               "epochs": 3, "early_stopping_patience": 5},
                {"train": (uri, RECORDIO)}, mode="Pipe")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = job_logs(algo_stack, job["TrainingJobName"])
    epochs = [line for line in lines if re.search(r"#quality_metric: host=algo-1, epoch=\d, train ", line)]
    assert len(epochs) == 3
    assert any("train binary_classification_accuracy <score>=0." in line for line in lines)


# -- ClientErrors -------------------------------------------------------------------------------


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"feature_dim": 3}, "ClientError: No value(s) were specified for 'predictor_type' which are required hyperparameter(s)"),
    ({"feature_dim": 3, "predictor_type": "multiclass_classifier"}, "ClientError: No value(s) were specified for 'num_classes'"),
    ({"feature_dim": 3, "predictor_type": "regressor", "loss": "hinge_loss"}, "ClientError: Loss 'hinge_loss' cannot train a regressor"),
    ({"feature_dim": 3, "predictor_type": "regressor", "learning_rate": "-1"},
     "ClientError: Hyperparameter 'learning_rate' must be a positive float"),
    ({"feature_dim": 3, "predictor_type": "regressor", "epoch": "5"}, "ClientError: Additional hyperparameters are not allowed"),
])
def test_bad_hyperparameters_fail_before_any_data_is_read(algo_stack, hyperparameters, reason):
    uri = upload(algo_stack, {"x.csv": b"this is not csv data\n"})  # reading it would fail differently
    job = train(algo_stack, "linear-learner", hyperparameters, {"train": (uri, "text/csv")})
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(reason), job["FailureReason"]


def test_data_problems_are_client_errors(algo_stack):
    float64 = upload(algo_stack, {"x.pbr": encode_records(np.ones((10, 3)), np.ones(10))})
    job = train(algo_stack, "linear-learner", {"feature_dim": 3, "predictor_type": "regressor"}, {"train": (float64, RECORDIO)})
    assert job["FailureReason"].startswith("ClientError: Channel 'train' holds Float64Tensor features; Linear Learner "
                                           "reads recordio-protobuf Float32Tensor data only")
    labels = upload(algo_stack, {"x.csv": b"2,1,2,3\n0,1,2,3\n"})
    job = train(algo_stack, "linear-learner", {"feature_dim": 3, "predictor_type": "binary_classifier"}, {"train": (labels, "text/csv")})
    assert job["FailureReason"].startswith("ClientError: Binary classifier labels must be 0 or 1")
