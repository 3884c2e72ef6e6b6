"""Training time and quality of smlocal's built-in K-Means against scikit-learn's KMeans.

    python benchmarks/algorithms/kmeans_bench.py [--rows 70000] [--cols 784] [--k 10]
                                                 [--repeat 3] [--inits random,kmeans++]

The data is MNIST-sized: 70,000 × 784 float32 in [0, 1], mostly zeros, ten blurred prototypes
plus noise. It is written once as ONE application/x-recordio-protobuf file, byte for byte what
the SDK's `record_set()` uploads for one instance (`write_numpy_to_dense_tensor`, features only:
KMeans' record_set gets no labels); the bench checks the bytes against the SDK's own writer on
the first rows. Then, `--repeat` times, alternating who goes first:

* ours: `python -m algorithms.kmeans train` as smlocal's process runtime starts it
  (SMLOCAL_OPT_ML pointing at the tree), with the hyperparameters the SDK's `KMeans(k=10)` sends
  (k, feature_dim, force_dense=True; `fit()` without mini_batch_size sends none, so the image's
  default 5000 applies; epochs=1 default) and `init_method` random or kmeans++. Its wall time is
  split from its own log lines into start-up (interpreter and imports: wall minus "Training
  finished in … s"), reading (`read N records from channel 'train' in … s`) and training (the
  rest: clustering, the train msd, writing model_algo-1);
* reference, in this process, on the array already in memory: `sklearn.cluster.KMeans(k,
  init="random"|"k-means++", n_init=1, max_iter=300, tol=1e-4, random_state=0).fit(X)`: the
  same init family, one trial (our local_lloyd_num_trials=auto) and the same stopping rule as our
  local_lloyd_max_iter / local_lloyd_tol defaults.

Quality: the inertia (sum of squared distances to the closest centroid) of our artifact's
centroids and of scikit-learn's, both computed here in float64 on the same X; ours must be within
2 % of scikit-learn's. Speed target: ours (the whole program) <= 1.5 × the reference fit.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, run_train, write_config

sys.path.insert(0, str(REPO))
from algorithms.io import encode_records, ndarray

TARGET = 1.5
QUALITY = 0.02  # ours' inertia may exceed scikit-learn's by at most 2 %
SDK_CHECK_ROWS = 200


def make_data(rows: int, cols: int, k: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prototypes = np.clip(rng.normal(-0.6, 1.0, size=(k, cols)), 0, 1).astype(np.float32)
    X = prototypes[rng.integers(0, k, rows)] + 0.25 * rng.normal(size=(rows, cols)).astype(np.float32)
    return np.clip(X, 0, 1, out=X)


def sdk_bytes(X: np.ndarray) -> bytes:
    from sagemaker.serializer_utils import write_numpy_to_dense_tensor

    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, X)
    return buffer.getvalue()


def write_tree(root: Path, X: np.ndarray, hyperparameters: dict) -> None:
    channel = write_config(root, hyperparameters, "application/x-recordio-protobuf", "ShardedByS3Key")
    (channel / "matrix_0.pbr").write_bytes(encode_records(features=X))


def inertia(X: np.ndarray, centroids: np.ndarray, chunk: int = 10_000) -> float:
    total = 0.0
    c = centroids.astype(np.float64)
    for start in range(0, len(X), chunk):
        x = X[start:start + chunk].astype(np.float64)
        d = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :]
        total += float(np.maximum(d.min(1), 0).sum())
    return total


def run_ours(root: Path) -> dict:
    run = run_train("kmeans", root)
    reading = sum(float(v) for v in re.findall(r"read \d+ records from channel '\w+' in (\S+) s", run.log))
    return {"wall": run.wall, "startup": run.wall - run.inside, "reading": reading,
            "training": run.inside - reading}


def run_reference(X: np.ndarray, k: int, init: str) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    model = KMeans(n_clusters=k, init="k-means++" if init == "kmeans++" else "random", n_init=1,
                   max_iter=300, tol=1e-4, random_state=0).fit(X)
    return time.perf_counter() - started, model.cluster_centers_


def bench_init(init: str, X: np.ndarray, args) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"kmeans-bench-{init}-") as tmp:
        root = Path(tmp)
        write_tree(root, X, {"k": args.k, "feature_dim": X.shape[1], "force_dense": "True", "init_method": init})
        ours, reference = [], []
        for i in range(args.repeat):
            steps = [lambda: ours.append(run_ours(root)),
                     lambda: reference.append(run_reference(X, args.k, init)[0])]
            for step in (steps if i % 2 == 0 else steps[::-1]):
                step()
        centroids = ndarray.load(root / "model" / "model_algo-1")[0]
    median = {key: statistics.median(r[key] for r in ours) for key in ours[0]}
    return {"init": init, **median, "reference": statistics.median(reference),
            "ours_inertia": inertia(X, centroids), "reference_inertia": inertia(X, run_reference(X, args.k, init)[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=70_000)
    parser.add_argument("--cols", type=int, default=784)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--inits", default="random,kmeans++")
    args = parser.parse_args()
    import sklearn

    X = make_data(args.rows, args.cols, args.k)
    same = encode_records(features=X[:SDK_CHECK_ROWS]) == sdk_bytes(X[:SDK_CHECK_ROWS])
    print(f"scikit-learn {sklearn.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{args.rows:,} x {args.cols} float32 ({(X == 0).mean():.0%} zeros), k {args.k}, median of {args.repeat}; "
          f"recordio bytes equal to the SDK's write_numpy_to_dense_tensor on {SDK_CHECK_ROWS} rows: {same}")
    results = [bench_init(init, X, args) for init in args.inits.split(",")]
    print()
    print("| init_method | ours: `python -m algorithms.kmeans train` s | start-up s | reading s | training s | "
          "sklearn KMeans.fit on the array s | ratio | target <= 1.5x | ours inertia | sklearn inertia | "
          "quality (ours within 2 %) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    for r in results:
        ratio = r["wall"] / r["reference"]
        excess = r["ours_inertia"] / r["reference_inertia"] - 1
        print(f"| {r['init']} | {r['wall']:.2f} | {r['startup']:.2f} | {r['reading']:.2f} | {r['training']:.2f} | "
              f"{r['reference']:.2f} | {ratio:.2f} | {'met' if ratio <= TARGET else 'MISSED'} | "
              f"{r['ours_inertia']:.6g} | {r['reference_inertia']:.6g} | "
              f"{'met' if excess <= QUALITY else 'MISSED'} ({excess:+.2%}) |")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
