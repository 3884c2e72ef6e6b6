"""Training time of smlocal's built-in XGBoost against the XGBoost library on the same data.

    python benchmarks/algorithms/xgboost_bench.py [--rows 100000] [--cols 50] [--rounds 100]
                                                  [--repeat 3] [--formats csv,libsvm]

For each input format the data (float32; libsvm drops zeros, so about a third of the entries are
absent there) is written once into a temporary /opt/ml tree. Then, `--repeat` times, alternating
who goes first:

* ours: `python -m algorithms.xgboost train` as smlocal's process runtime starts it (SMLOCAL_OPT_ML
  pointing at the tree, cwd the tree): the wall time of the whole program (interpreter start,
  imports, parsing the channel, `xgboost.train` with the train set evaluated every round as the
  container does, writing `xgboost-model`), and the part after start-up that the program logs
  ("Training finished in … s": from reading the config on, `import xgboost` included);
* reference, in this process: `xgboost.train` with the same parameters, (a) on the arrays already
  in memory (`DMatrix` built from numpy/scipy plus `train`), (b) reading the same file with
  XGBoost's own parser (`DMatrix("train.csv?format=csv&label_column=0")` / `?format=libsvm`)
  plus `train`;
* reference program: a fresh interpreter that imports xgboost and does (b).

Judged like the other algorithm benches, like for like, both ratios <= 1.5x: our time after
start-up against (b), and our program against the reference program. The reference that reads
the file is XGBoost's own reader, the library call a user makes on a file; for recordio-protobuf
the other benches' libraries have no reader, so their in-process reference is the array. The
older ratios (whole program / (b), whole program / (a)) are still printed.

Both sides use OMP_WAIT_POLICY=PASSIVE (ours sets it by default, see algorithms/xgboost/library.py);
the predictions of our model and reference (a) are compared for equality.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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
REFERENCE_PROGRAM = """
import json, sys, warnings
import xgboost
warnings.filterwarnings("ignore", category=UserWarning)
path, fmt, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
params = json.loads(sys.argv[4])
uri = f"{path}?format=csv&label_column=0" if fmt == "csv" else f"{path}?format=libsvm"
xgboost.train(params, xgboost.DMatrix(uri), rounds)
"""


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


def run_ours(root: Path) -> tuple[float, float]:
    """(wall time of the program, the time it logs as "Training finished in": no start-up)."""
    run = run_train("xgboost", root)
    return run.wall, run.inside


def run_reference_program(params: dict, rounds: int, fmt: str, path: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", REFERENCE_PROGRAM, str(path), fmt, str(rounds), json.dumps(params)],
                   check=True)
    return time.perf_counter() - started


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
        ours, inside, memory, from_file, program = [], [], [], [], []
        for i in range(args.repeat):
            steps = [lambda: [a.append(v) for a, v in zip((ours, inside), run_ours(root))],
                     lambda: memory.append(run_reference(params, args.rounds, X, y, fmt, None)[0]),
                     lambda: from_file.append(run_reference(params, args.rounds, X, y, fmt, path)[0]),
                     lambda: program.append(run_reference_program(params, args.rounds, fmt, path))]
            for step in (steps if i % 2 == 0 else steps[::-1]):  # alternate who goes first
                step()
        model = xgboost.Booster()
        model.load_model(str(root / "model" / "xgboost-model"))
        probe = X[:2000] if fmt == "csv" else scipy.sparse.csr_matrix(X[:2000])
        reference = run_reference(params, args.rounds, X, y, fmt, None)[1]
        equal = np.array_equal(model.predict(xgboost.DMatrix(probe)), reference.predict(xgboost.DMatrix(probe)))
    return {"format": fmt, "ours": statistics.median(ours), "inside": statistics.median(inside),
            "memory": statistics.median(memory), "file": statistics.median(from_file),
            "program": statistics.median(program), "equal": equal, "data": f"{args.rows:,} x {args.cols} {fmt}"}


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
    print("| data | ours: `python -m algorithms.xgboost train` s | of which after start-up s | "
          "DMatrix(file) + xgboost.train s | ratio (after start-up / file) | reference program s | "
          "ratio (program / program) | target <= 1.5x | xgboost.train on arrays s | older ratios: "
          "program / file, program / arrays, after start-up / arrays | predictions equal |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|")
    for r in results:
        ratio_file, ratio_program = r["inside"] / r["file"], r["ours"] / r["program"]
        verdict = "met" if max(ratio_file, ratio_program) <= TARGET else "MISSED"
        print(f"| {r['data']} | {r['ours']:.2f} | {r['inside']:.2f} | {r['file']:.2f} | {ratio_file:.2f} | "
              f"{r['program']:.2f} | {ratio_program:.2f} | {verdict} | {r['memory']:.2f} | "
              f"{r['ours'] / r['file']:.2f} / {r['ours'] / r['memory']:.2f} / {r['inside'] / r['memory']:.2f} | "
              f"{r['equal']} |")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
