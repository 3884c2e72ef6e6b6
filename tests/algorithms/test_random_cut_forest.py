"""Random Cut Forest through boto3 on every runtime: SageMaker's hyperparameters and channel rules
(train ShardedByS3Key only; a labelled test channel with its metric lines), the forest artifact,
answers in every format, two hosts that both shape the forest, and the quality that matters: on a
seasonal series with injected spikes, the scores the endpoint returns rank the spikes first."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.sparse
from sklearn.metrics import roc_auc_score

from algorithms.io import encode_records, read_records
from tests.algorithms.conftest import (bad_requests, deploy, invoke, job_logs, model_artifacts, model_error, train,
                                       upload)

RECORDIO = "application/x-recordio-protobuf"
SHINGLE = 48


def seasonal_series(n: int = 3000, spikes: int = 15, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A daily-looking sine with noise and `spikes` injected jumps away from the level (so even
    a single value leaves the ordinary range); returns (values, spike mask)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 10 + 3 * np.sin(2 * np.pi * t / 100) + 0.3 * rng.normal(size=n)
    where = rng.choice(np.arange(SHINGLE, n), spikes, replace=False)
    values[where] += np.where(values[where] >= 10, 1, -1) * rng.uniform(5, 8, spikes)
    mask = np.zeros(n, bool)
    mask[where] = True
    return values, mask


def shingle(values: np.ndarray, width: int = SHINGLE) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(values, width).astype(np.float32)


def _csv(rows: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    rows = rows.reshape(len(rows), -1)
    heads = [f"{int(y)}," for y in labels] if labels is not None else [""] * len(rows)
    return "".join(h + ",".join(repr(float(v)) for v in row) + "\n" for h, row in zip(heads, rows)).encode()


def scores_of(stack, endpoint: str, rows: np.ndarray) -> np.ndarray:
    body, content_type = invoke(stack, endpoint, _csv(rows), "text/csv", "application/json")
    assert content_type == "application/json"
    return np.array([s["score"] for s in json.loads(body)["scores"]])


@pytest.fixture(scope="module")
def series():
    return seasonal_series()


@pytest.fixture(scope="module")
def shingled_job(algo_stack, series):
    values, mask = series
    rows = shingle(values)
    labels = spiked_shingles(mask)
    uri = upload(algo_stack, {"train.pbr": encode_records(features=rows)})
    test_uri = upload(algo_stack, {"test.csv": _csv(rows, labels)})
    job = train(algo_stack, "randomcutforest", {"feature_dim": SHINGLE, "num_samples_per_tree": 256,
                                                "num_trees": 100, "mini_batch_size": 1000,
                                                "eval_metrics": '["accuracy", "precision_recall_fscore"]'},
                {"train": (uri, RECORDIO), "test": (test_uri, "text/csv;label_size=1")},
                distribution="ShardedByS3Key")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job


@pytest.fixture(scope="module")
def shingled_endpoint(algo_stack, shingled_job):
    return deploy(algo_stack, "randomcutforest", shingled_job)


def spiked_shingles(mask: np.ndarray, width: int = SHINGLE) -> np.ndarray:
    """A shingle is anomalous when it holds a spike (every shingle that contains one shows it)."""
    return np.lib.stride_tricks.sliding_window_view(mask, width).any(axis=1)


def test_shingled_series_spikes_score_highest(algo_stack, shingled_endpoint, series):
    values, mask = series
    scores = scores_of(algo_stack, shingled_endpoint, shingle(values))
    anomalous = spiked_shingles(mask)
    auc = roc_auc_score(anomalous, scores)
    assert auc >= 0.9, auc
    assert 0.5 < np.median(scores) < 1.5, "ordinary points score about 1, as SageMaker's do"
    assert scores[anomalous].mean() > np.percentile(scores[~anomalous], 99)


def test_logs_carry_test_metrics_and_artifact_is_a_forest(algo_stack, shingled_job):
    lines = job_logs(algo_stack, shingled_job["TrainingJobName"])
    for name in ("accuracy", "precision", "recall", "f1"):
        assert any(line.startswith(f"#test_score (algo-1) : ('{name}', ") for line in lines), name
    f1 = next(float(line.split(", ")[-1].rstrip(")"))
              for line in lines if line.startswith("#test_score (algo-1) : ('f1'"))
    assert 0 < f1 <= 1
    files = model_artifacts(algo_stack, shingled_job)
    assert list(files) == ["model_algo-1"]
    with np.load(io.BytesIO(files["model_algo-1"]), allow_pickle=False) as forest:
        assert int(forest["format"][0]) == 1
        assert forest["points"].shape == (100 * 256, SHINGLE) and len(forest["root"]) == 100
        assert (forest["tree_mass"] == 256).all()


def test_every_response_format(algo_stack, shingled_endpoint, series):
    rows = shingle(series[0])[:4]
    expected = scores_of(algo_stack, shingled_endpoint, rows)
    body, content_type = invoke(algo_stack, shingled_endpoint, encode_records(features=rows), RECORDIO, RECORDIO)
    assert content_type == RECORDIO
    records = read_records(io.BytesIO(body))
    np.testing.assert_allclose([r.label["score"].values[0] for r in records], expected, rtol=1e-6)
    instances = json.dumps({"instances": [{"features": r.tolist()} for r in rows]}).encode()
    body, content_type = invoke(algo_stack, shingled_endpoint, instances, "application/json", "application/jsonlines")
    assert content_type == "application/jsonlines"
    np.testing.assert_allclose([json.loads(line)["score"] for line in body.decode().splitlines()], expected, rtol=1e-6)
    body, content_type = invoke(algo_stack, shingled_endpoint, _csv(rows), "text/csv", "text/csv")
    assert content_type == "text/csv"
    np.testing.assert_allclose([float(v) for v in body.decode().split()], expected, rtol=1e-6)


def test_sparse_requests_score_like_dense_ones(algo_stack, shingled_endpoint):
    row = np.zeros(SHINGLE, np.float32)
    row[[3, 20, 40]] = [9.0, 11.0, 12.5]
    dense = scores_of(algo_stack, shingled_endpoint, row[None])
    keys = np.flatnonzero(row)
    tensor = {"keys": keys.tolist(), "values": row[keys].tolist(), "shape": [SHINGLE]}
    sparse = {"instances": [{"data": {"features": tensor}}]}
    body, _ = invoke(algo_stack, shingled_endpoint, json.dumps(sparse).encode(), "application/json")
    np.testing.assert_allclose(json.loads(body)["scores"][0]["score"], dense[0], rtol=1e-6)
    body, _ = invoke(algo_stack, shingled_endpoint, encode_records(features=scipy.sparse.csr_matrix(row[None])),
                     RECORDIO, "application/json")
    np.testing.assert_allclose(json.loads(body)["scores"][0]["score"], dense[0], rtol=1e-6)


def test_one_dimensional_series_from_csv_in_pipe_mode(algo_stack):
    values, mask = seasonal_series(n=2000, spikes=12, seed=8)
    uri = upload(algo_stack, {"a.csv": _csv(values[:1000]), "b.csv": _csv(values[1000:])})
    job = train(algo_stack, "randomcutforest", {"feature_dim": 1, "num_trees": 50, "num_samples_per_tree": 512},
                {"train": (uri, "text/csv;label_size=0")}, mode="Pipe", distribution="ShardedByS3Key")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert any("Test data is not provided." in line for line in job_logs(algo_stack, job["TrainingJobName"]))
    endpoint = deploy(algo_stack, "randomcutforest", job)
    scores = scores_of(algo_stack, endpoint, values[:, None])
    auc = roc_auc_score(mask, scores)
    assert auc >= 0.9, auc


def test_two_hosts_sharded_each_sample_their_shard(algo_stack):
    # Host shards hold two regimes; only a forest that saw both finds both ordinary.
    rng = np.random.default_rng(2)
    low = rng.normal(0, 1, (1500, 2)).astype(np.float32)
    high = rng.normal(20, 1, (1500, 2)).astype(np.float32)
    uri = upload(algo_stack, {"low.pbr": encode_records(features=low), "high.pbr": encode_records(features=high)})
    hp = {"feature_dim": 2, "num_trees": 50, "num_samples_per_tree": 128}
    both = train(algo_stack, "randomcutforest", hp, {"train": (uri, RECORDIO)}, instances=2,
                 distribution="ShardedByS3Key")
    assert both["TrainingJobStatus"] == "Completed", both.get("FailureReason")
    lines = job_logs(algo_stack, both["TrainingJobName"])
    assert any("sampled 128 of 3000 records for each of 50 trees from 2 host(s)" in line for line in lines)
    only_low = train(algo_stack, "randomcutforest", hp,
                     {"train": (upload(algo_stack, {"low.pbr": encode_records(features=low)}), RECORDIO)},
                     distribution="ShardedByS3Key")
    probes = np.array([[0.1, -0.2], [20.1, 19.8], [10, 10]], np.float32)
    combined = scores_of(algo_stack, deploy(algo_stack, "randomcutforest", both), probes)
    alone = scores_of(algo_stack, deploy(algo_stack, "randomcutforest", only_low), probes)
    assert combined[0] < 1.5 and combined[1] < 1.5 and combined[2] > 2 * max(combined[:2])
    assert alone[1] > 2 * combined[1], "the high regime is an anomaly only to a forest that never sampled it"


def test_fully_replicated_train_channel_is_a_client_error(algo_stack, series):
    uri = upload(algo_stack, {"x.csv": _csv(series[0][:100])})
    job = train(algo_stack, "randomcutforest", {"feature_dim": 1}, {"train": (uri, "text/csv")},
                distribution="FullyReplicated")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: ") and "ShardedByS3Key" in job["FailureReason"]


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"num_trees": 100},
     "ClientError: No value(s) were specified for 'feature_dim' which are required hyperparameter(s)"),
    ({"feature_dim": 1, "num_trees": 10}, "ClientError: Hyperparameter 'num_trees' must be an integer in [50, 1000]"),
    ({"feature_dim": 1, "num_samples_per_tree": 4096},
     "ClientError: Hyperparameter 'num_samples_per_tree' must be an integer in [1, 2048]"),
    ({"feature_dim": 1, "eval_metrics": '["auc"]'}, "ClientError: Hyperparameter 'eval_metrics' must be"),
    ({"feature_dim": 1, "depth": 3},
     "ClientError: Additional hyperparameters are not allowed ('depth' was unexpected)"),
    ({"feature_dim": 2}, "ClientError: The data has 1 features, but feature_dim is 2"),
])
def test_bad_hyperparameters_fail_with_client_error(algo_stack, series, hyperparameters, reason):
    uri = upload(algo_stack, {"x.csv": _csv(series[0][:100])})
    job = train(algo_stack, "randomcutforest", hyperparameters, {"train": (uri, "text/csv;label_size=0")},
                distribution="ShardedByS3Key")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(reason), job["FailureReason"]


def test_test_channel_without_labels_is_a_client_error(algo_stack, series):
    rows = shingle(series[0])[:300]
    uri = upload(algo_stack, {"x.pbr": encode_records(features=rows)})
    job = train(algo_stack, "randomcutforest", {"feature_dim": SHINGLE},
                {"train": (uri, RECORDIO), "test": (uri, RECORDIO)}, distribution="ShardedByS3Key")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: The test channel needs labels")


def test_bad_requests_are_model_errors(algo_stack, shingled_endpoint):
    for body, content_type, accept, status in bad_requests(SHINGLE):
        assert model_error(algo_stack, shingled_endpoint, body, content_type, accept) == status, (body, content_type, accept)


@pytest.mark.parametrize("batches", [[5000], [100, 300, 2000], [50], [64, 64, 10_000]])
def test_reservoirs_hold_distinct_rows_under_their_keys(batches):
    """Whatever the batch sizes, every tree holds min(size, rows seen) distinct rows, each with a
    key in [0, 1), and empty slots keep an infinite key (so merging hosts stays exact)."""
    from algorithms.random_cut_forest.sampler import Reservoir

    trees, size, total = 5, 64, sum(batches)
    ids = np.arange(total, dtype=np.float32)
    reservoir = Reservoir(trees, size, 2, seed=7)
    for chunk in np.split(np.stack([ids, -ids], axis=1), np.cumsum(batches)[:-1]):
        reservoir.add(chunk)
    assert reservoir.seen == total
    for tree in range(trees):
        held = np.isfinite(reservoir.keys[tree])
        assert held.sum() == min(size, total)
        assert ((reservoir.keys[tree, held] >= 0) & (reservoir.keys[tree, held] < 1)).all()
        rows = reservoir.points[tree, held]
        assert len(np.unique(rows[:, 0])) == held.sum() and (rows[:, 1] == -rows[:, 0]).all()


def test_reservoir_sample_is_uniform_over_the_stream():
    """Bottom-k sampling through both of the reservoir's ways of drawing keys (a key per tree and
    row while filling, then only the keys that can enter): every row, early or late, first or
    last in its batch, lands in a tree's sample equally often, and the kept keys are distributed
    as the `size` smallest of one uniform key per row (largest about size / (rows + 1), the
    others uniform below it)."""
    from algorithms.random_cut_forest.sampler import Reservoir

    trees, size, batch, total = 2000, 16, 1000, 8000
    reservoir = Reservoir(trees, size, 1, seed=11)
    for first in range(0, total, batch):
        reservoir.add(np.arange(first, first + batch, dtype=np.float32)[:, None])
    held = np.bincount(reservoir.points[..., 0].astype(np.int64).ravel(), minlength=total)
    expected = trees * size / total  # 4 per row
    by_batch = held.reshape(-1, batch).sum(axis=1)
    np.testing.assert_allclose(by_batch, expected * batch, rtol=0.075)
    by_position = held.reshape(-1, 10, batch // 10).sum(axis=(0, 2))
    np.testing.assert_allclose(by_position, expected * total / 10, rtol=0.08)
    # Within the first batch the reservoir draws every key for its first 512 rows, then only
    # candidates: both parts are sampled at the same rate.
    np.testing.assert_allclose([held[:512].sum(), held[512:batch].sum()], [expected * 512, expected * 488],
                               rtol=0.1)
    largest = reservoir.keys.max(axis=1)
    np.testing.assert_allclose(largest.mean(), size / (total + 1), rtol=0.03)
    below = reservoir.keys / largest[:, None]
    assert abs(below[below < 1].mean() - 0.5) < 0.01


def _reference_score(forest, q: np.ndarray) -> float:
    """The forest's score of one query, tree by tree and node by node (the formula in forest.py's
    docstring), with every box taken from the node's own points."""
    total = 0.0
    for tree, root in enumerate(forest.root):
        path, node = [], root
        while forest.dim[node] >= 0:
            path.append(node)
            node = forest.left[node] if q[forest.dim[node]] <= forest.cut[node] else forest.right[node]
        depth, mass, tree_mass = forest.depth[node], forest.mass[node], forest.tree_mass[tree]
        if np.array_equal(q, forest.points[forest.start[node]]):
            score = (1 - mass / (2 * tree_mass)) / (depth + np.log2(mass + 1))
        else:
            score = 1 / (depth + 1)
        for node in reversed(path):
            own = forest.points[forest.start[node]:forest.start[node] + forest.mass[node]].astype(np.float64)
            lo, hi = own.min(axis=0), own.max(axis=0)
            grown = np.maximum(hi, q).sum() - np.minimum(lo, q).sum()
            p = (grown - (hi - lo).sum()) / grown if grown > 0 else 0.0
            score = p / (forest.depth[node] + 1) + (1 - p) * score
        total += score * np.log2(tree_mass + 1)
    return total / forest.trees


@pytest.mark.parametrize("cells_per_step", [None, 16])
def test_built_trees_are_random_cut_trees_and_score_as_the_reference(cells_per_step, monkeypatch):
    """The level-by-level builder on a small sample with duplicates and a constant feature: every
    node's box is its points' box (as loading recomputes it), every cut lies in its box and splits
    the node's points into its two children, every leaf holds one distinct point, and scores
    agree with a plain per-node implementation; also when boxes are computed in many small blocks."""
    from algorithms.random_cut_forest import forest as rcf
    from algorithms.random_cut_forest.forest import boxes, build

    if cells_per_step:
        monkeypatch.setattr(rcf, "CELLS_PER_STEP", cells_per_step)
    rng = np.random.default_rng(3)
    samples = np.round(rng.normal(size=(4, 50, 3)), 1).astype(np.float32)
    samples[..., 2] = 1.5
    forest = build(samples, np.random.default_rng(5))
    assert (forest.mass[forest.root] == 50).all() and forest.mass.sum() > 4 * 50
    recomputed_lo, recomputed_hi = boxes(forest)
    np.testing.assert_array_equal(forest.lo, recomputed_lo)
    np.testing.assert_array_equal(forest.hi, recomputed_hi)
    for node in range(len(forest.start)):
        own = forest.points[forest.start[node]:forest.start[node] + forest.mass[node]]
        np.testing.assert_array_equal(forest.lo[node], own.min(axis=0))
        np.testing.assert_array_equal(forest.hi[node], own.max(axis=0))
        dim, cut = forest.dim[node], forest.cut[node]
        if dim < 0:
            assert (own == own[0]).all(), "a leaf holds one distinct point"
            continue
        assert forest.lo[node, dim] <= cut < forest.hi[node, dim]
        left, right = forest.left[node], forest.right[node]
        assert forest.start[left] == forest.start[node]
        assert forest.start[right] == forest.start[node] + forest.mass[left]
        assert forest.mass[left] + forest.mass[right] == forest.mass[node]
        assert (own[:forest.mass[left], dim] <= cut).all() and (own[forest.mass[left]:, dim] > cut).all()
        assert forest.depth[left] == forest.depth[right] == forest.depth[node] + 1
    queries = np.concatenate([samples[0, :5], rng.normal(size=(5, 3)).astype(np.float32) * 3])
    expected = [_reference_score(forest, q.astype(np.float64)) for q in queries]
    np.testing.assert_allclose(forest.score(queries), expected, rtol=1e-6)
