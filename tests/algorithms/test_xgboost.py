"""Built-in XGBoost through boto3 and the AWS CLI on every runtime: SageMaker's hyperparameters,
content types, evaluation lines, `xgboost-model` artifact and endpoint answers, and models that
equal a direct `xgboost.train` call on the same data with the same parameters."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import scipy.sparse
import xgboost
from botocore.exceptions import ClientError

from algorithms.io import encode_records, read_records
from tests.algorithms.conftest import ROLE, image_uri, job_logs, model_artifacts, to_csv, upload
from tests.algorithms.conftest import deploy as deploy_model

XGB_17 = image_uri("sagemaker-xgboost", "1.7-1")
LEGACY = image_uri("xgboost", "latest")
LINE = re.compile(r"^\[(\d+)\]((\t[a-z]+-[\w@.-]+:-?\d+\.\d{5})+)$")


# -- data ----------------------------------------------------------------------------------------


def to_libsvm(X, y, weights=None) -> bytes:
    lines = []
    for i, row in enumerate(X):
        head = f"{y[i]:.9g}" + (f":{weights[i]:.9g}" if weights is not None else "")
        lines.append(" ".join([head] + [f"{j}:{v:.9g}" for j, v in enumerate(row) if v != 0]))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(1200, 10)).astype(np.float32)
    X[rng.random(X.shape) < 0.3] = 0  # zeros: absent (missing) in libsvm, present in CSV
    y = ((X[:, 0] + X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=1200)) > 0).astype(np.float32)
    return X[:900], y[:900], X[900:], y[900:]


def local_booster(params, X, y, rounds, weights=None, sparse=False, evals_X=None, evals_y=None, **kwargs):
    features = scipy.sparse.csr_matrix(X) if sparse else X
    dtrain = xgboost.DMatrix(features, label=y, weight=weights)
    evals = [(dtrain, "train")]
    if evals_X is not None:
        evals.append((xgboost.DMatrix(scipy.sparse.csr_matrix(evals_X) if sparse else evals_X, label=evals_y),
                      "validation"))
    return xgboost.train(params, dtrain, rounds, evals=evals, verbose_eval=False, **kwargs)


def predict(booster, X, sparse=False):
    best = booster.attr("best_iteration")
    features = scipy.sparse.csr_matrix(X) if sparse else X
    return booster.predict(xgboost.DMatrix(features), iteration_range=(0, int(best) + 1) if best else (0, 0))


# -- jobs and endpoints --------------------------------------------------------------------------


def start(stack, hyperparameters: dict, channels: dict, image: str = XGB_17, instances: int = 1,
          distribution: str = "FullyReplicated", mode: str = "File", metrics=(), **extra) -> str:
    """channels: name → (s3 uri, content type or None)."""
    name = f"xgb-{uuid.uuid4().hex[:10]}"
    bucket = next(iter(channels.values()))[0].split("/")[2]
    inputs = []
    for channel, (uri, content_type) in channels.items():
        entry = {"ChannelName": channel, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri,
            "S3DataDistributionType": distribution if channel == "train" else "FullyReplicated"}}}
        if content_type:
            entry["ContentType"] = content_type
        inputs.append(entry)
    stack.sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE, InputDataConfig=inputs,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": mode,
                                "MetricDefinitions": [{"Name": n, "Regex": r} for n, r in metrics]},
        HyperParameters={k: str(v) for k, v in hyperparameters.items()},
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": instances, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600}, **extra)
    return name


def wait(stack, name: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while (job := stack.sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"] == "InProgress":
        assert time.monotonic() < deadline, f"{name} did not finish in {timeout}s"
        time.sleep(0.25)
    return job


def run(stack, *args, **kwargs) -> dict:
    return wait(stack, start(stack, *args, **kwargs))


def completed(job: dict) -> dict:
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job


def saved_booster(stack, job) -> xgboost.Booster:
    files = model_artifacts(stack, job)
    assert list(files) == ["xgboost-model"]
    booster = xgboost.Booster()
    booster.load_model(bytearray(files["xgboost-model"]))
    return booster


def deploy(stack, job: dict, image: str = XGB_17, environment: dict | None = None) -> str:
    return deploy_model(stack, "xgboost", job, image=image, environment=environment)


def invoke(stack, endpoint: str, body: bytes, content_type: str | None = None, accept: str | None = None):
    import boto3

    runtime = boto3.client("sagemaker-runtime", endpoint_url=stack.url, region_name="us-east-1")
    kwargs = {k: v for k, v in (("ContentType", content_type), ("Accept", accept)) if v}
    answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, **kwargs)
    return answer["Body"].read(), answer["ContentType"]


def model_error(stack, endpoint, body, content_type=None, accept=None) -> int:
    with pytest.raises(ClientError) as info:
        invoke(stack, endpoint, body, content_type, accept)
    assert info.value.response["Error"]["Code"] == "ModelError"
    return info.value.response["OriginalStatusCode"]


# -- CSV: logs, metrics, artifact, endpoint --------------------------------------------------------

PARAMS = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "subsample": 0.8, "seed": 3,
          "min_child_weight": 2}


@pytest.fixture(scope="module")
def csv_job(algo_stack, binary):
    X, y, Xv, yv = binary
    uri = upload(algo_stack, {"train/part-1.csv": to_csv(X[:500], y[:500]), "train/part-2.csv": to_csv(X[500:], y[500:]),
                              "validation/v.csv": to_csv(Xv, yv)})
    job = run(algo_stack, {**PARAMS, "num_round": 15, "eval_metric": "auc,error", "_kvstore": "dist_sync"},
              {"train": (uri + "/train", "text/csv"), "validation": (uri + "/validation", "text/csv")},
              metrics=[(f"validation:{m}", rf".*\[[0-9]+\].*#011validation-{m}:(\S+)") for m in ("auc", "error")])
    return completed(job)


@pytest.fixture(scope="module")
def csv_endpoint(algo_stack, csv_job):
    return deploy(algo_stack, csv_job)


def test_csv_training_prints_the_containers_evaluation_lines(algo_stack, csv_job):
    lines = [line for line in job_logs(algo_stack, csv_job["TrainingJobName"]) if line.startswith("[") and "\t" in line]
    assert len(lines) == 15
    for i, line in enumerate(lines):
        match = LINE.match(line)
        assert match and int(match.group(1)) == i, line
        assert [part.split(":")[0] for part in line.split("\t")[1:]] == [
            "train-auc", "train-error", "validation-auc", "validation-error"]
    # The container's own metric regexes match (TAB shown as #011); `(\S+)` runs to the line's end,
    # so only the last value on the line parses as a number with smlocal's parser today.
    final = {m["MetricName"]: m["Value"] for m in csv_job["FinalMetricDataList"]}
    last = {part.split(":")[0]: float(part.split(":")[1]) for part in lines[-1].split("\t")[1:]}
    assert final["validation:error"] == pytest.approx(last["validation-error"])
    if "validation:auc" in final:
        assert final["validation:auc"] == pytest.approx(last["validation-auc"])


def test_csv_model_equals_xgboost_train_with_the_same_parameters(algo_stack, csv_job, binary):
    X, y, Xv, yv = binary
    ours = saved_booster(algo_stack, csv_job)
    reference = local_booster({**PARAMS, "eval_metric": ["auc", "error"]}, X, y, 15)
    assert ours.num_boosted_rounds() == 15
    assert np.array_equal(predict(ours, Xv), predict(reference, Xv))


def test_endpoint_answers_equal_the_local_booster_in_every_accept_type(algo_stack, csv_job, csv_endpoint, binary):
    X, y, Xv, yv = binary
    expected = predict(local_booster({**PARAMS, "eval_metric": ["auc", "error"]}, X, y, 15), Xv[:20]).tolist()
    body, content_type = invoke(algo_stack, csv_endpoint, to_csv(Xv[:20]), "text/csv")
    assert content_type == "text/csv"
    assert body.decode().endswith("\n") and [float(v) for v in body.decode().splitlines()] == expected
    body, content_type = invoke(algo_stack, csv_endpoint, to_csv(Xv[:20]), "text/csv", "application/json")
    assert content_type == "application/json"
    assert [p["score"] for p in json.loads(body)["predictions"]] == expected
    body, content_type = invoke(algo_stack, csv_endpoint, to_csv(Xv[:20]), "text/csv", "application/jsonlines")
    assert content_type == "application/jsonlines" and [json.loads(l)["score"] for l in body.splitlines()] == expected
    body, content_type = invoke(algo_stack, csv_endpoint, to_csv(Xv[:20]), "text/csv",
                                "application/x-recordio-protobuf")
    scores = [float(r.label["score"].values[0]) for r in read_records(io.BytesIO(body))]
    assert content_type == "application/x-recordio-protobuf" and scores == expected
    body, _ = invoke(algo_stack, csv_endpoint, encode_records(features=Xv[:20]), "application/x-recordio-protobuf", "*/*")
    assert [float(v) for v in body.split()] == expected


def test_libsvm_requests_ignore_the_label_and_absent_features_are_missing(algo_stack, csv_job, csv_endpoint, binary):
    X, y, Xv, yv = binary
    booster = local_booster({**PARAMS, "eval_metric": ["auc", "error"]}, X, y, 15)
    expected = predict(booster, Xv[:5], sparse=True).tolist()
    for content_type in ("text/libsvm", "text/x-libsvm"):
        body, _ = invoke(algo_stack, csv_endpoint, to_libsvm(Xv[:5], yv[:5]), content_type)
        assert [float(v) for v in body.split()] == expected


def test_endpoint_error_codes(algo_stack, csv_endpoint, binary):
    Xv = binary[2]
    assert model_error(algo_stack, csv_endpoint, to_csv(Xv[:2]), "text/plain") == 415
    assert model_error(algo_stack, csv_endpoint, b"1,2,x", "text/csv") == 415  # unparsable: 415, as the container
    assert model_error(algo_stack, csv_endpoint, to_csv(np.ones((2, 30))), "text/csv") == 400  # more features
    assert model_error(algo_stack, csv_endpoint, to_csv(Xv[:2]), "text/csv", "image/png") == 406


def test_default_accept_and_selectable_output_from_the_environment(algo_stack, csv_job, binary):
    X, y, Xv, yv = binary
    expected = predict(local_booster({**PARAMS, "eval_metric": ["auc", "error"]}, X, y, 15), Xv[:4]).tolist()
    endpoint = deploy(algo_stack, csv_job, environment={
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json",
        "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probability"})
    body, content_type = invoke(algo_stack, endpoint, to_csv(Xv[:4]), "text/csv")
    assert content_type == "application/json"
    assert json.loads(body)["predictions"] == [{"predicted_label": int(p > 0.5), "probability": p} for p in expected]
    body, _ = invoke(algo_stack, endpoint, to_csv(Xv[:4]), "text/csv", "text/csv")
    assert body.decode() == "\n".join(f"{int(p > 0.5)},{p}" for p in expected)
    batch = deploy(algo_stack, csv_job, environment={"SAGEMAKER_BATCH": "true"})
    body, _ = invoke(algo_stack, batch, to_csv(Xv[:4]), "text/csv", "application/json")
    assert body.decode() == "\n".join(map(str, expected)) + "\n"


# -- the other formats and modes -------------------------------------------------------------------


def test_libsvm_with_weights_and_missing_content_type(algo_stack, binary):
    X, y, Xv, yv = binary
    weights = np.where(y > 0, 2.0, 0.5).astype(np.float32)
    uri = upload(algo_stack, {"train/a.libsvm": to_libsvm(X, y, weights), "validation/v.libsvm": to_libsvm(Xv, yv)})
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.2}
    job = completed(run(algo_stack, {**params, "num_round": 12},
                        {"train": (uri + "/train", None), "validation": (uri + "/validation", None)}))
    reference = local_booster(params, X, y, 12, weights=weights, sparse=True)
    assert np.array_equal(predict(saved_booster(algo_stack, job), Xv, sparse=True), predict(reference, Xv, sparse=True))


def test_recordio_protobuf_in_pipe_mode(algo_stack, binary):
    X, y, Xv, yv = binary
    uri = upload(algo_stack, {"train/a.pbr": encode_records(features=X, labels=y)})
    params = {"objective": "reg:squarederror", "max_depth": 5, "lambda": 2.0}
    job = completed(run(algo_stack, {**params, "num_round": 10}, {"train": (uri + "/train", "application/x-recordio-protobuf")},
                        mode="Pipe"))
    assert np.array_equal(predict(saved_booster(algo_stack, job), Xv), predict(local_booster(params, X, y, 10), Xv))


def test_csv_weights_multiclass_softprob_and_early_stopping(algo_stack, binary):
    X, y, Xv, yv = binary
    classes = (np.digitize(X[:, 0], [-0.5, 0.5])).astype(np.float32)
    weights = (1 + (classes == 2)).astype(np.float32)
    uri = upload(algo_stack, {"train/t.csv": to_csv(X, classes, weights),
                              "validation/v.csv": to_csv(Xv, np.digitize(Xv[:, 0], [-0.5, 0.5]).astype(np.float32),
                                                         np.ones(len(Xv), np.float32))})
    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "eta": 0.5}
    job = completed(run(algo_stack, {**params, "num_round": 200, "csv_weights": 1, "early_stopping_rounds": 3,
                                     "eval_metric": "mlogloss"},
                        {"train": (uri + "/train", "text/csv"), "validation": (uri + "/validation", "text/csv")}))
    ours = saved_booster(algo_stack, job)
    reference = local_booster({**params, "eval_metric": "mlogloss"}, X, classes, 200, weights=weights, evals_X=Xv,
                              evals_y=np.digitize(Xv[:, 0], [-0.5, 0.5]).astype(np.float32), early_stopping_rounds=3)
    assert ours.num_boosted_rounds() < 200 and ours.attr("best_iteration") == reference.attr("best_iteration")
    expected = predict(reference, Xv[:6])
    assert np.array_equal(predict(ours, Xv[:6]), expected)
    endpoint = deploy(algo_stack, job)
    body, _ = invoke(algo_stack, endpoint, to_csv(Xv[:6]), "text/csv")
    rows = [[float(v) for v in line.split(",")] for line in body.decode().splitlines()]
    assert rows == expected.tolist()  # one row per line, its class probabilities comma-separated
    body, _ = invoke(algo_stack, endpoint, to_csv(Xv[:6]), "text/csv", "application/json")
    assert [p["score"] for p in json.loads(body)["predictions"]] == expected.tolist()


# -- failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"objective": "binary:logistic"}, "ClientError: No value(s) were specified for 'num_round'"),
    ({"num_round": 5, "objective": "binary:nonsense"}, "ClientError: Unable to parse hyperparameter 'objective'"),
    ({"num_round": 5, "objective": "multi:softmax"},
     "ClientError: Require input for parameter 'num_class' for multi-classification"),
    ({"num_round": 5, "eta": 2}, "ClientError: Hyperparameter 'eta' must be in [0, 1]"),
    ({"num_round": 5, "eval_metric": "auc"}, "ClientError: Metric 'auc' can only be applied for classification"),
    ({"num_round": 5, "max_depth": 3, "colour": "blue"}, "ClientError: Additional hyperparameters are not allowed"),
])
def test_bad_hyperparameters_fail_before_reading_data(algo_stack, hyperparameters, reason):
    uri = upload(algo_stack, {"train/x.csv": b"not,csv,data\n"})
    job = run(algo_stack, hyperparameters, {"train": (uri + "/train", "text/csv")})
    assert job["TrainingJobStatus"] == "Failed" and job["FailureReason"].startswith(reason), job["FailureReason"]


def test_bad_data_and_content_types_are_client_errors(algo_stack):
    uri = upload(algo_stack, {"train/x.csv": b"3,1.0,2.0\n0,2.0,1.0\n"})
    job = run(algo_stack, {"num_round": 2, "objective": "binary:logistic"}, {"train": (uri + "/train", "text/csv")})
    assert job["FailureReason"].startswith("ClientError: ") and "logistic" in job["FailureReason"]
    job = run(algo_stack, {"num_round": 2}, {"train": (uri + "/train", "text/csv;label_size=2")})
    assert job["FailureReason"].startswith("ClientError: Content-type text/csv;label_size=2 not supported")
    job = run(algo_stack, {"num_round": 2}, {"train": (uri + "/train", "image/png")})
    assert job["FailureReason"].startswith("ClientError: Content-type image/png not supported")


# -- several hosts ---------------------------------------------------------------------------------


def test_two_hosts_sharded_by_s3_key_train_on_both_shards(algo_stack, binary):
    X, y, Xv, yv = binary
    order = np.argsort(X[:, 0])
    halves = [order[:450], order[450:]]  # each shard alone sees only one side of feature 0
    uri = upload(algo_stack, {f"train/half-{i}.csv": to_csv(X[h], y[h]) for i, h in enumerate(halves)})
    params = {"objective": "binary:logistic", "max_depth": 3}
    job = completed(run(algo_stack, {**params, "num_round": 8}, {"train": (uri + "/train", "text/csv")},
                        instances=2, distribution="ShardedByS3Key"))
    ours = predict(saved_booster(algo_stack, job), Xv)
    both = [predict(local_booster(params, X[np.concatenate(parts)], y[np.concatenate(parts)], 8), Xv)
            for parts in (halves, halves[::-1])]
    assert any(np.array_equal(ours, reference) for reference in both)
    for half in halves:
        assert not np.array_equal(ours, predict(local_booster(params, X[half], y[half], 8), Xv))
    streams = algo_stack.logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                                   logStreamNamePrefix=job["TrainingJobName"] + "/")["logStreams"]
    assert len(streams) == 2


# -- the workshop lab: AWS CLI, legacy image, libsvm, text/x-libsvm -------------------------------


def _video_games(rows: int, seed: int = 5):
    """The lab's shape: two review scores and one-hot platform/genre/publisher/rating (~330
    columns), ~17 % hits, dumped with scikit-learn's dump_svmlight_file as the notebook does."""
    rng = np.random.default_rng(seed)
    critic, user = rng.uniform(20, 98, rows), rng.uniform(1, 9.7, rows)
    categories = [rng.integers(0, n, rows) for n in (17, 12, 290, 7)]
    onehot = np.hstack([np.eye(n)[c] for n, c in zip((17, 12, 290, 7), categories)])
    score = 0.05 * critic + 0.3 * user + (categories[0] < 3) + (categories[2] < 20) * 2 + rng.normal(0, 0.8, rows)
    hit = score > np.quantile(score, 0.83)
    return np.hstack([critic[:, None], user[:, None], onehot]), hit.astype(int)


def _aws(stack, *args) -> str:
    env = {**os.environ, **stack.server.client_env()}
    result = subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_video_game_lab_with_the_aws_cli_and_the_legacy_image(algo_stack, tmp_path):
    from sklearn.datasets import dump_svmlight_file

    X, y = _video_games(2400)
    assert X.shape[1] == 328 and 0.1 < y.mean() < 0.3
    files = {}
    for name, part in (("train", slice(0, 1680)), ("validation", slice(1680, 2160)), ("test", slice(2160, 2400))):
        dump_svmlight_file(X[part], y[part], str(tmp_path / f"{name}.libsvm"))
        files[name] = (tmp_path / f"{name}.libsvm").read_bytes()
    bucket = f"s3://{upload(algo_stack, {'sagemaker/videogames_xgboost/train/train.libsvm': files['train'], 'sagemaker/videogames_xgboost/validation/validation.libsvm': files['validation']}).split('/')[2]}"
    prefix = "/data/sagemaker/videogames_xgboost"
    job_name = f"videogames-xgboost-{uuid.uuid4().hex[:8]}"
    source = "{S3DataSource={S3DataType=S3Prefix,S3DataDistributionType=FullyReplicated,S3Uri=%s}}"
    _aws(algo_stack, "--region", "us-east-1", "sagemaker", "create-training-job", "--role-arn", ROLE,
         "--training-job-name", job_name,
         "--algorithm-specification", f"TrainingImage={LEGACY},TrainingInputMode=File",
         "--resource-config", "InstanceCount=1,InstanceType=ml.c4.2xlarge,VolumeSizeInGB=10",
         "--input-data-config",
         f"ChannelName=train,DataSource={source % (bucket + prefix + '/train')},CompressionType=None,ContentType=libsvm",
         f"ChannelName=validation,DataSource={source % (bucket + prefix + '/validation')},CompressionType=None,"
         "ContentType=libsvm",
         "--output-data-config", f"S3OutputPath={bucket}{prefix}",
         "--hyper-parameters", "max_depth=3,eta=0.1,eval_metric=auc,scale_pos_weight=2.0,subsample=0.5,"
                               "objective=binary:logistic,num_round=100",
         "--stopping-condition", "MaxRuntimeInSeconds=1800")
    completed(wait(algo_stack, job_name))
    assert any("validation-auc:" in line for line in job_logs(algo_stack, job_name))
    artifact = json.loads(_aws(algo_stack, "sagemaker", "describe-training-job", "--training-job-name",
                               job_name))["ModelArtifacts"]["S3ModelArtifacts"]
    name = f"videogames-xgboost-{uuid.uuid4().hex[:6]}"
    _aws(algo_stack, "sagemaker", "create-model", "--model-name", name, "--execution-role-arn", ROLE,
         "--primary-container", f"Image={LEGACY},ModelDataUrl={artifact}")
    _aws(algo_stack, "sagemaker", "create-endpoint-config", "--endpoint-config-name", name, "--production-variants",
         f"VariantName=AllTraffic,ModelName={name},InitialInstanceCount=1,InstanceType=ml.m4.xlarge")
    _aws(algo_stack, "sagemaker", "create-endpoint", "--endpoint-name", name, "--endpoint-config-name", name)
    deadline = time.monotonic() + 120
    while algo_stack.sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    # the notebook's evaluation: 100 test lines (labels included) per call, text/x-libsvm
    payload = files["test"].decode().strip()
    labels = [int(line.split(" ")[0]) for line in payload.split("\n")]
    lines = payload.split("\n")
    predictions = []
    for offset in range(0, len(lines), 100):
        body, _ = invoke(algo_stack, name, "\n".join(lines[offset:offset + 100]).encode(), "text/x-libsvm")
        values = [float(v) for v in re.split(r"[,\n]", body.decode()) if v]
        assert len(values) == len(lines[offset:offset + 100]) and all(0 <= v <= 1 for v in values)
        predictions += [round(v) for v in values]
    error_rate = sum(p != t for p, t in zip(predictions, labels)) / len(labels)
    assert error_rate < 0.25


# -- checkpoints -----------------------------------------------------------------------------------


def test_a_job_resumes_from_the_checkpoints_of_an_earlier_one(algo_stack, binary):
    X, y, Xv, yv = binary
    uri = upload(algo_stack, {"train/t.csv": to_csv(X, y)})
    checkpoints = {"CheckpointConfig": {"S3Uri": uri.replace("/data", "/checkpoints")}}
    params = {"objective": "binary:logistic", "max_depth": 3}
    first = completed(run(algo_stack, {**params, "num_round": 4}, {"train": (uri + "/train", "text/csv")}, **checkpoints))
    bucket, prefix = checkpoints["CheckpointConfig"]["S3Uri"][5:].split("/", 1)
    keys = [o["Key"] for o in algo_stack.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == [f"xgboost-checkpoint.{i}" for i in range(4)]
    second = completed(run(algo_stack, {**params, "num_round": 7}, {"train": (uri + "/train", "text/csv")},
                           **checkpoints))
    lines = job_logs(algo_stack, second["TrainingJobName"])
    assert any("Checkpoint loaded from" in line for line in lines)
    assert [line.split("\t")[0] for line in lines if line.startswith("[") and "\t" in line] == ["[4]", "[5]", "[6]"]
    assert saved_booster(algo_stack, first).num_boosted_rounds() == 4
    resumed = saved_booster(algo_stack, second)
    assert np.array_equal(predict(resumed, Xv), predict(local_booster(params, X, y, 7), Xv))
