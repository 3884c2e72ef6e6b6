"""Training time of smlocal's built-in XGBoost against the XGBoost library on the same data.

    python benchmarks/algorithms/xgboost_bench.py [--rows 100000] [--cols 50] [--rounds 100]
                                                  [--repeat 3] [--formats csv,libsvm]

For each input format the data (float32; libsvm drops zeros, so about a third of the entries are
absent there) is written once into a temporary /opt/ml tree. Then, `--repeat` times, alternating:

* ours: `python -m algorithms.xgboost train` as smlocal's process runtime starts it (SMLOCAL_OPT_ML
  pointing at the tree, cwd the tree), wall time of the whole program: interpreter start, imports,
  parsing the channel, `xgboost.train`, writing `xgboost-model`;
* reference, in this process: `xgboost.train` with the same parameters, (a) on the arrays already
  in memory (`DMatrix` built from numpy/scipy plus `train`), (b) reading the same file with
  XGBoost's own parser (`DMatrix("train.csv?format=csv&label_column=0")` / `?format=libsvm`)
  plus `train`.

Both sides use OMP_WAIT_POLICY=PASSIVE (ours sets it by default, see algorithms/xgboost/library.py);
the predictions of our model and reference (a) are compared for equality. Medians are printed in
a table with the ratio and the target (ours <= 1.5 x the reference).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as algorithms/xgboost sets it for itself

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse  # noqa: E402
import xgboost  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import run_train, write_config  # noqa: E402
warnings.filterwarnings("ignore", category=UserWarning)  # XGBoost: "text input deprecated", "UBJSON guess"
TARGET = 1.5


def make_data(rows: int, cols: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, cols)).astype(np.float32)
    X[rng.random(X.shape) < 0.3] = 0
    y = (X[:, 0] + X[:, 1] * X[:, 2] - np.abs(X[:, 3]) + 0.3 * rng.normal(size=rows) > 0).astype(np.float32)
    return X, y


def write_tree(root: Path, fmt: str, X: np.ndarray, y: np.ndarray, params: dict) -> Path:
    channel = write_config(root, params, "text/csv" if fmt == "csv" else "text/libsvm")
    path = channel / f"train.{fmt}"
    if fmt == "csv":
        np.savetxt(path, np.hstack([y[:, None], X]), delimiter=",", fmt="%.9g")
    else:
        csr = scipy.sparse.csr_matrix(X)
        with open(path, "w") as f:
            for i in range(csr.shape[0]):
                start, end = csr.indptr[i], csr.indptr[i + 1]
                pairs = " ".join(f"{j}:{v:.9g}" for j, v in zip(csr.indices[start:end], csr.data[start:end]))
                f.write(f"{y[i]:.9g} {pairs}\n")
    return path


def run_ours(root: Path) -> float:
    return run_train("xgboost", root).wall


def run_reference(params: dict, rounds: int, X, y, fmt: str, path: Path | None) -> tuple[float, xgboost.Booster]:
    started = time.perf_counter()
    if path is None:
        features = X if fmt == "csv" else scipy.sparse.csr_matrix(X)
        dtrain = xgboost.DMatrix(features, label=y)
    else:
        uri = f"{path}?format=csv&label_column=0" if fmt == "csv" else f"{path}?format=libsvm"
        dtrain = xgboost.DMatrix(uri)
    booster = xgboost.train(params, dtrain, rounds)
    return time.perf_counter() - started, booster


def bench_format(fmt: str, args, params: dict) -> dict:
    X, y = make_data(args.rows, args.cols)
    with tempfile.TemporaryDirectory(prefix=f"xgb-bench-{fmt}-") as tmp:
        root = Path(tmp)
        path = write_tree(root, fmt, X, y, {**params, "num_round": args.rounds})
        ours, memory, from_file = [], [], []
        for i in range(args.repeat):
            steps = [lambda: ours.append(run_ours(root)),
                     lambda: memory.append(run_reference(params, args.rounds, X, y, fmt, None)[0]),
                     lambda: from_file.append(run_reference(params, args.rounds, X, y, fmt, path)[0])]
            for step in (steps if i % 2 == 0 else steps[::-1]):  # alternate who goes first
                step()
        model = xgboost.Booster()
        model.load_model(str(root / "model" / "xgboost-model"))
        probe = X[:2000] if fmt == "csv" else scipy.sparse.csr_matrix(X[:2000])
        reference = run_reference(params, args.rounds, X, y, fmt, None)[1]
        equal = np.array_equal(model.predict(xgboost.DMatrix(probe)), reference.predict(xgboost.DMatrix(probe)))
    return {"format": fmt, "ours": statistics.median(ours), "memory": statistics.median(memory),
            "file": statistics.median(from_file), "equal": equal, "data": f"{args.rows:,} x {args.cols} {fmt}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="csv,libsvm")
    args = parser.parse_args()
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "subsample": 0.8, "seed": 1}
    print(f"xgboost {xgboost.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"params {params}, num_round {args.rounds}, median of {args.repeat}")
    results = [bench_format(fmt, args, params) for fmt in args.formats.split(",")]
    print()
    print("| data | ours: `python -m algorithms.xgboost train` s | xgboost.train on arrays s | ratio | "
          "DMatrix(file) + xgboost.train s | ratio | target <= 1.5x | predictions equal |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        ratio_mem, ratio_file = r["ours"] / r["memory"], r["ours"] / r["file"]
        verdict = "met" if ratio_file <= TARGET else "MISSED"
        print(f"| {r['data']} | {r['ours']:.2f} | {r['memory']:.2f} | {ratio_mem:.2f} | {r['file']:.2f} | "
              f"{ratio_file:.2f} | {verdict} | {r['equal']} |")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
