"""algorithms.io.ndarray against the real mxnet 1.9.1, both directions.

mxnet 1.9.1 needs numpy 1.23.5, so it lives in its own virtualenv, built by
``tests/mxnet_env/setup.sh`` at ``${SMLOCAL_MXNET_VENV:-/tmp/smlocal-mxnet-venv}``; these tests
drive that venv's python through subprocess. Without the venv they skip (printing why) on a
developer machine, and fail under CI (``CI`` set), where .ci/run builds it first.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from algorithms.io import ndarray

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("SMLOCAL_MXNET_VENV") or "/tmp/smlocal-mxnet-venv")
SETUP = "bash tests/mxnet_env/setup.sh"

# Runs inside the mxnet venv. "load": mx.nd.load each file and compare with the .npz of what we
# meant to write. "save": mx.nd.save the arrays of each .npz (as a list or a dict).
MX_SCRIPT = r"""
import json, sys
import numpy as np, mxnet as mx
mode, folder = sys.argv[1], sys.argv[2]
cases = json.load(open(folder + "/cases.json"))
out = {}
for case in cases:
    want = np.load(folder + "/" + case["name"] + ".npz")
    names = case["names"]
    path = folder + "/" + case["name"] + (".ours" if mode == "load" else ".mx")
    with mx.util.np_shape(case.get("np_shape", False)):
        if mode == "save":
            arrays = [mx.nd.array(want[n], dtype=want[n].dtype) for n in names]
            mx.nd.save(path, dict(zip(names, arrays)) if case["form"] == "dict" else arrays)
            out[case["name"]] = "saved"
            continue
        got = mx.nd.load(path)
    if case["form"] == "dict":
        kind, keys, values = "dict", sorted(got), [got[k] for k in sorted(got)]
        expected = [want[k] for k in keys]
    else:
        kind, keys, values = type(got).__name__, [], list(got)
        expected = [want[n] for n in names]
    out[case["name"]] = {
        "type": kind, "keys": keys,
        "shapes": [list(v.shape) for v in values],
        "dtypes": [np.dtype(v.dtype).name for v in values],
        "equal": [bool(np.array_equal(v.asnumpy(), e)) for v, e in zip(values, expected)],
    }
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def mx_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        message = f"no mxnet venv at {VENV}; build it with `{SETUP}` (set SMLOCAL_MXNET_VENV to move it)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"CI is set but {message}")
        print(f"\nSKIP test_ndarray_mxnet: {message}")
        pytest.skip(message)
    probe = subprocess.run([str(python), "-c", "import mxnet"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"{python} cannot import mxnet; rebuild with `rm -rf {VENV} && {SETUP}`:\n"
                    f"{probe.stderr[-2000:]}")
    return python


def run_mx(python: Path, mode: str, folder: Path) -> dict:
    done = subprocess.run([str(python), "-c", MX_SCRIPT, mode, str(folder)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def cases() -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(42)
    dtypes = ["float32", "float64", "float16", "uint8", "int32", "int8", "int64", "bool"]
    return {
        "kmeans": ("list", {"centroids": rng.random((10, 784), dtype=np.float32)}),
        "pca": ("dict", {"mean": rng.random((1, 50), dtype=np.float32),
                         "s": np.sort(rng.random(5, dtype=np.float32)),
                         "v": rng.standard_normal((50, 5)).astype(np.float32)}),
        "dtypes": ("list", {f"a{i}": (rng.integers(0, 100, (3, 4)) % (2 if d == "bool" else 100))
                            .astype(d) for i, d in enumerate(dtypes)}),
        "shapes": ("dict", {"x4d": rng.random((2, 1, 3, 2)), "vec": np.arange(7, dtype=np.int64),
                            "neg": np.array([-5, 3], np.int32), "big": np.full(70_000, 2.5, np.float32)}),
    }


def write_cases(folder: Path, which: dict) -> None:
    meta = []
    for name, (form, arrays) in which.items():
        np.savez(folder / f"{name}.npz", **arrays)
        meta.append({"name": name, "form": form, "names": list(arrays)})
    (folder / "cases.json").write_text(json.dumps(meta))


def test_mxnet_loads_what_we_save(mx_python, tmp_path):
    which = cases()
    write_cases(tmp_path, which)
    for name, (form, arrays) in which.items():
        ndarray.save(tmp_path / f"{name}.ours", arrays if form == "dict" else list(arrays.values()))
    results = run_mx(mx_python, "load", tmp_path)
    for name, (form, arrays) in which.items():
        got = results[name]
        order = sorted(arrays) if form == "dict" else list(arrays)
        assert got["type"] == form, name
        assert got["keys"] == (order if form == "dict" else [])
        assert got["shapes"] == [list(arrays[k].shape) for k in order], name
        assert got["dtypes"] == [arrays[k].dtype.name for k in order], name
        assert all(got["equal"]), (name, got["equal"])


def test_we_load_what_mxnet_saves_byte_for_byte(mx_python, tmp_path):
    which = cases()
    write_cases(tmp_path, which)
    run_mx(mx_python, "save", tmp_path)
    for name, (form, arrays) in which.items():
        data = (tmp_path / f"{name}.mx").read_bytes()
        loaded = ndarray.loads(data)
        if form == "dict":
            assert isinstance(loaded, dict) and list(loaded) == list(arrays)
            values = list(loaded.values())
        else:
            assert isinstance(loaded, list)
            values = loaded
        for got, want in zip(values, arrays.values()):
            assert got.dtype == want.dtype and got.shape == want.shape, name
            np.testing.assert_array_equal(got, want)
        expected = ndarray.dumps(arrays if form == "dict" else list(arrays.values()))
        assert data == expected, f"{name}: our bytes differ from mxnet's"


def test_we_load_mxnet_numpy_shape_files(mx_python, tmp_path):
    arrays = {"scalar": np.array(3.5, np.float32), "m": np.ones((2, 2), np.float64)}
    np.savez(tmp_path / "v3.npz", **arrays)
    (tmp_path / "cases.json").write_text(json.dumps(
        [{"name": "v3", "form": "dict", "names": list(arrays), "np_shape": True}]))
    run_mx(mx_python, "save", tmp_path)
    loaded = ndarray.load(tmp_path / "v3.mx")
    assert loaded["scalar"].shape == () and loaded["scalar"] == np.float32(3.5)
    np.testing.assert_array_equal(loaded["m"], arrays["m"])
