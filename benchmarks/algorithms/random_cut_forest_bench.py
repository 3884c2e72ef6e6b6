"""Training (and scoring) time of smlocal's built-in Random Cut Forest against the nearest
well-kept library, scikit-learn's IsolationForest, on the same data.

    python benchmarks/algorithms/random_cut_forest_bench.py [--rows 100000] [--shingle 48]
                                                            [--trees 100] [--samples 256] [--repeat 3]

There is no maintained random cut forest for Python to compare with (AWS's is Java; `rrcf` on
PyPI is pure Python, builds trees point by point and scores by inserting and deleting every
query, orders of magnitude slower, and is not a dependency). IsolationForest is the closest
well-kept relative: the same ensemble of random axis-aligned partitions of sub-samples, with
`n_estimators=num_trees` and `max_samples=num_samples_per_tree`. It does less work per tree (a
depth-limited tree, no bounding boxes), so it is a demanding reference.

The data is a shingled seasonal series (sine + noise + spikes), `--rows` shingles of width
`--shingle`, float32, written once as recordio-protobuf into a temporary /opt/ml tree and as
`.npy`. Then, `--repeat` times, alternating who goes first:

* ours: `python -m algorithms.random_cut_forest train` as smlocal's process runtime starts it,
  wall time of the whole program (interpreter start, imports, parsing the channel, reservoir
  sampling, growing the forest, writing `model_algo-1`), and the part after start-up that the
  program logs ("Training finished in … s");
* reference (a), in this process: `IsolationForest(...).fit(X)` on the array in memory;
* reference (b), a fresh `python -c` process: import numpy and scikit-learn, `np.load`, the fit.

The ratios compare like with like: our time after start-up against the fit on the array, and our
program against the reference program; the target (<= 1.5×) is met when both are. A second
table times scoring 10,000 rows in this process (our forest loaded from the artifact,
`Forest.score`, against `IsolationForest.score_samples`) and gives both methods' ROC AUC for the
injected spikes, so speed is read next to quality.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import run_train, write_config  # noqa: E402

from algorithms.io import encode_records  # noqa: E402
from algorithms.random_cut_forest.forest import Forest  # noqa: E402

TARGET = 1.5
REFERENCE_PROGRAM = """
import sys, numpy as np
from sklearn.ensemble import IsolationForest
X = np.load(sys.argv[1])
IsolationForest(n_estimators=int(sys.argv[2]), max_samples=int(sys.argv[3]), random_state=0).fit(X)
"""


def make_data(rows: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shingles of a seasonal series with spikes, and which shingles hold a spike."""
    rng = np.random.default_rng(seed)
    n = rows + width - 1
    t = np.arange(n)
    values = 10 + 3 * np.sin(2 * np.pi * t / 288) + 0.3 * rng.normal(size=n)
    spikes = rng.choice(n, max(1, n // 2000), replace=False)
    values[spikes] += rng.choice([-1, 1], spikes.size) * rng.uniform(4, 7, spikes.size)
    mask = np.zeros(n, bool)
    mask[spikes] = True
    shingles = np.lib.stride_tricks.sliding_window_view(values, width).astype(np.float32)
    return shingles, np.lib.stride_tricks.sliding_window_view(mask, width).any(axis=1)


def write_tree(root: Path, X: np.ndarray, hyperparameters: dict) -> None:
    channel = write_config(root, hyperparameters, "application/x-recordio-protobuf", "ShardedByS3Key")
    for i, part in enumerate(np.array_split(X, 4)):
        (channel / f"matrix_{i}.pbr").write_bytes(encode_records(features=part))


def run_ours(root: Path) -> tuple[float, float]:
    """(wall time of the program, the time it logs as "Training finished in": no start-up)."""
    run = run_train("random_cut_forest", root)
    return run.wall, run.inside


def run_reference(X: np.ndarray, trees: int, samples: int) -> tuple[float, IsolationForest]:
    started = time.perf_counter()
    model = IsolationForest(n_estimators=trees, max_samples=samples, random_state=0).fit(X)
    return time.perf_counter() - started, model


def run_reference_program(npy: Path, trees: int, samples: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", REFERENCE_PROGRAM, str(npy), str(trees), str(samples)], check=True)
    return time.perf_counter() - started


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--shingle", type=int, default=48)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import sklearn

    X, anomalous = make_data(args.rows, args.shingle)
    print(f"scikit-learn {sklearn.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{len(X):,} x {args.shingle} float32 shingles, num_trees {args.trees}, "
          f"num_samples_per_tree {args.samples}, median of {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="rcf-bench-") as tmp:
        root = Path(tmp)
        write_tree(root, X, {"feature_dim": args.shingle, "num_trees": args.trees,
                             "num_samples_per_tree": args.samples, "mini_batch_size": 1000})
        npy = root / "X.npy"
        np.save(npy, X)
        ours, inside, memory, program = [], [], [], []
        for i in range(args.repeat):
            steps = [lambda: [a.append(v) for a, v in zip((ours, inside), run_ours(root))],
                     lambda: memory.append(run_reference(X, args.trees, args.samples)[0]),
                     lambda: program.append(run_reference_program(npy, args.trees, args.samples))]
            for step in (steps if i % 2 == 0 else steps[::-1]):
                step()
        with open(root / "model" / "model_algo-1", "rb") as f:
            forest = Forest.load(f)
    ours_t, inside_t, memory_t, program_t = (statistics.median(v) for v in (ours, inside, memory, program))
    print()
    print("| training | ours: `python -m algorithms.random_cut_forest train` s | of which after start-up s | "
          "IsolationForest.fit on the array s | ratio (in-program / fit) | "
          "IsolationForest program (start + np.load + fit) s | ratio (program / program) | target <= 1.5x |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    ratio_memory, ratio_program = inside_t / memory_t, ours_t / program_t
    verdict = "met" if max(ratio_memory, ratio_program) <= TARGET else "MISSED"
    print(f"| {len(X):,} x {args.shingle} | {ours_t:.2f} | {inside_t:.2f} | {memory_t:.2f} | {ratio_memory:.2f} | "
          f"{program_t:.2f} | {ratio_program:.2f} | {verdict} |")

    probe = slice(0, 10_000)
    reference = run_reference(X, args.trees, args.samples)[1]
    ours_score_t, ours_scores = timed(lambda: forest.score(X[probe]))
    ref_score_t, ref_scores = timed(lambda: -reference.score_samples(X[probe]))
    print()
    print("| scoring 10,000 rows | ours: Forest.score s | IsolationForest.score_samples s | ratio | "
          "ROC AUC ours | ROC AUC IsolationForest |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| in process | {ours_score_t:.2f} | {ref_score_t:.2f} | {ours_score_t / ref_score_t:.1f} | "
          f"{roc_auc_score(anomalous[probe], ours_scores):.4f} | {roc_auc_score(anomalous[probe], ref_scores):.4f} |")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
