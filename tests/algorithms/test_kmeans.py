"""K-Means through boto3 on every runtime: SageMaker's hyperparameters, formats, logs, artifact and
answers, and quality against scikit-learn on the same data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.cluster import KMeans

from algorithms.io import encode_records, ndarray, read_records
from tests.algorithms.conftest import (
    deploy,
    invoke,
    job_logs,
    model_artifacts,
    train,
    upload,
)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(7)
    centres = rng.uniform(-20, 20, (5, 8))
    points = np.concatenate([rng.normal(c, 1.5, (400, 8)) for c in centres]).astype(np.float32)
    rng.shuffle(points)
    return points


def test_train_deploy_predict(algo_stack, blobs):
    uri = upload(algo_stack, {f"part-{i}.pbr": encode_records(features=part) for i, part in enumerate(np.array_split(blobs, 3))})
    test_uri = upload(algo_stack, {"test.csv": "\n".join(",".join(map(str, r)) for r in blobs[:200]).encode()})
    job = train(algo_stack, "kmeans", {"k": 5, "feature_dim": 8, "mini_batch_size": 500, "init_method": "kmeans++",
                                       "eval_metrics": '["msd", "ssd"]', "force_dense": "True", "_kvstore": "dist_sync"},
                {"train": (uri, "application/x-recordio-protobuf"), "test": (test_uri, "text/csv;label_size=0")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    lines = job_logs(algo_stack, job["TrainingJobName"])
    assert any(line.startswith("#quality_metric: host=algo-1, train msd <loss>=") for line in lines)
    assert any(line.startswith("#quality_metric: host=algo-1, test ssd <loss>=") for line in lines)
    centroids = ndarray.loads(model_artifacts(algo_stack, job)["model_algo-1"])
    assert isinstance(centroids, list) and centroids[0].shape == (5, 8) and centroids[0].dtype == np.float32

    reference = KMeans(n_clusters=5, n_init=1, random_state=0).fit(blobs)
    ours = ((blobs[:, None, :] - centroids[0][None]) ** 2).sum(-1).min(1).sum()
    assert ours <= reference.inertia_ * 1.02

    endpoint = deploy(algo_stack, "kmeans", job)
    body, content_type = invoke(algo_stack, endpoint, b"\n".join(",".join(map(str, r)).encode() for r in blobs[:3]), "text/csv")
    assert content_type == "application/json"
    predictions = json.loads(body)["predictions"]
    assert len(predictions) == 3 and set(predictions[0]) == {"closest_cluster", "distance_to_cluster"}
    body, content_type = invoke(algo_stack, endpoint, encode_records(features=blobs[:2]),
                                "application/x-recordio-protobuf", "application/x-recordio-protobuf")
    import io
    records = read_records(io.BytesIO(body))
    assert [r.label["closest_cluster"].values[0] for r in records] == [p["closest_cluster"] for p in predictions[:2]]
    body, _ = invoke(algo_stack, endpoint, json.dumps({"instances": [{"features": blobs[0].tolist()}]}).encode(),
                     "application/json", "text/csv")
    closest, distance = body.decode().strip().split(",")
    assert float(closest) == predictions[0]["closest_cluster"]
    assert float(distance) == pytest.approx(predictions[0]["distance_to_cluster"], rel=1e-5)


def test_two_hosts_sharded_train_on_all_the_data(algo_stack, blobs):
    # Each host sees a different half; one half alone holds only some of the clusters.
    order = np.argsort(blobs[:, 0])
    halves = [blobs[order[:1000]], blobs[order[1000:]]]
    uri = upload(algo_stack, {f"half-{i}.pbr": encode_records(features=h) for i, h in enumerate(halves)})
    job = train(algo_stack, "kmeans", {"k": 5, "feature_dim": 8, "init_method": "kmeans++"},
                {"train": (uri, "application/x-recordio-protobuf")}, instances=2, distribution="ShardedByS3Key")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    centroids = ndarray.loads(model_artifacts(algo_stack, job)["model_algo-1"])[0]
    reference = KMeans(n_clusters=5, n_init=1, random_state=0).fit(blobs)
    ours = ((blobs[:, None, :] - centroids[None]) ** 2).sum(-1).min(1).sum()
    assert ours <= reference.inertia_ * 1.02


def test_missing_and_bad_hyperparameters_fail_before_reading_data(algo_stack):
    uri = upload(algo_stack, {"x.csv": b"1,2\n"})
    job = train(algo_stack, "kmeans", {"feature_dim": 2}, {"train": (uri, "text/csv")})
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: No value(s) were specified for 'k' which are required hyperparameter(s)"
    job = train(algo_stack, "kmeans", {"feature_dim": 2, "k": "two"}, {"train": (uri, "text/csv")})
    assert job["FailureReason"].startswith("ClientError: Unable to parse hyperparameter 'k'")
    job = train(algo_stack, "kmeans", {"feature_dim": 3, "k": 1}, {"train": (uri, "text/csv;label_size=0")})
    assert job["FailureReason"] == "ClientError: The data has 2 features, but feature_dim is 3"


def test_unsupported_content_type_is_model_error_415(algo_stack, blobs):
    uri = upload(algo_stack, {"x.pbr": encode_records(features=blobs[:100])})
    job = train(algo_stack, "kmeans", {"feature_dim": 8, "k": 2}, {"train": (uri, "application/x-recordio-protobuf")})
    endpoint = deploy(algo_stack, "kmeans", job)
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as info:
        invoke(algo_stack, endpoint, b"1,2", "text/plain")
    assert info.value.response["Error"]["Code"] == "ModelError" and info.value.response["OriginalStatusCode"] == 415
    with pytest.raises(ClientError) as info:
        invoke(algo_stack, endpoint, b"1,2,x", "text/csv")
    assert info.value.response["OriginalStatusCode"] == 400
    with pytest.raises(ClientError) as info:
        invoke(algo_stack, endpoint, ",".join(["1"] * 8).encode(), "text/csv", "image/png")
    assert info.value.response["OriginalStatusCode"] == 406


# -- the numerics and the whole-file reader, in-process ------------------------------------------


def test_read_dense_file_matches_the_streaming_reader_on_sdk_bytes(tmp_path):
    from sagemaker.serializer_utils import write_numpy_to_dense_tensor

    from algorithms.io import read_recordio_protobuf
    from algorithms.io.dense_file import read_dense_file

    X = np.random.default_rng(0).random((300, 13), dtype=np.float32)
    path = tmp_path / "sdk.pbr"
    with open(path, "wb") as f:  # exactly what record_set() uploads
        write_numpy_to_dense_tensor(f, X, np.arange(300, dtype=np.float32))
    whole = read_dense_file(path)
    streamed = next(iter(read_recordio_protobuf(path, 1000)))
    assert whole.features.dtype == np.float32 and np.array_equal(whole.features, X)
    assert np.array_equal(whole.features, streamed.features) and np.array_equal(whole.labels, streamed.labels)
    # Records of different layouts (sparse rows here) are left to the streaming reader.
    import scipy.sparse
    (tmp_path / "sparse.pbr").write_bytes(encode_records(features=scipy.sparse.random(20, 13, 0.3, dtype=np.float32)))
    assert read_dense_file(tmp_path / "sparse.pbr") is None


@pytest.mark.parametrize("init", ["random", "kmeans++"])
def test_cluster_is_as_good_as_scikit_learn(blobs, init):
    from algorithms.common.hyperparameters import parse_hyperparameters
    from algorithms.kmeans.algorithm import KMeansSpec, cluster

    hp = parse_hyperparameters({"k": "5", "feature_dim": "8", "mini_batch_size": "300", "init_method": init},
                               KMeansSpec.hyperparameters)
    centroids, inertia = cluster(blobs, hp)
    reference = KMeans(n_clusters=5, n_init=10, random_state=0).fit(blobs)
    assert centroids.shape == (5, 8) and centroids.dtype == np.float32
    assert inertia == pytest.approx(((blobs[:, None, :] - centroids[None]) ** 2).sum(-1).min(1).sum(), rel=1e-3)
    assert inertia <= reference.inertia_ * 1.02


def test_lloyd_refills_an_empty_cluster():
    from algorithms.kmeans import lloyd

    points = np.array([[0, 0], [0, 1], [10, 10], [10, 11]], np.float32)
    start = np.array([[0, 0.5], [10, 10.5], [100, 100]], np.float32)  # the third centre attracts nothing
    centroids, inertia, _ = lloyd.lloyd(points, start, 10, 0.0)
    assert not np.isin(100, centroids) and inertia < 1.0
