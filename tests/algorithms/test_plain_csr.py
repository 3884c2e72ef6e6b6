"""The scipy-free CSR container (algorithms.io.sparse.CSR) that sparse Factorization Machines
training reads into: same rows as scipy's, and a sparse FM job that never imports scipy.sparse."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from algorithms.factorization_machines.model import FMParams
from algorithms.io import encode_records, read_recordio_protobuf
from algorithms.io.sparse import CSR

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def matrix():
    return scipy.sparse.random(60, 30, density=0.2, format="csr", dtype=np.float32, random_state=1)


def _plain(m) -> CSR:
    return CSR(m.data, m.indices.astype(np.int64), m.indptr.astype(np.int64), m.shape)


def test_row_gathers_slices_and_stacks_equal_scipy(matrix):
    plain, rows = _plain(matrix), np.random.default_rng(0).integers(0, 60, 90)
    assert np.array_equal(plain[rows].toarray(), matrix[rows].toarray())
    assert np.array_equal(plain[5:17][3:9].toarray(), matrix[5:17][3:9].toarray())  # slice of a slice
    stacked = CSR.vstack([plain[5:17], plain[rows], plain[0:0]], 40)
    assert stacked.shape == (102, 40)
    assert np.array_equal(stacked.tocsr().toarray()[:, :30], scipy.sparse.vstack([matrix[5:17], matrix[rows]]).toarray())


def test_fm_predicts_the_same_on_plain_and_scipy_csr(matrix):
    rng = np.random.default_rng(0)
    params = FMParams(rng.normal(size=1).astype(np.float32), rng.normal(size=30).astype(np.float32),
                      rng.normal(size=(30, 4)).astype(np.float32))
    np.testing.assert_allclose(params.predict_raw(_plain(matrix)), params.predict_raw(matrix), rtol=1e-5, atol=1e-5)


def test_reader_gives_plain_csr_only_when_asked(matrix, tmp_path):
    path = tmp_path / "data.rec"
    path.write_bytes(encode_records(matrix, np.arange(60, dtype=np.float32)))
    plain = next(read_recordio_protobuf(str(path), 100, plain_sparse=True)).features
    default = next(read_recordio_protobuf(str(path), 100)).features
    assert isinstance(plain, CSR) and scipy.sparse.issparse(default)
    assert np.array_equal(plain.toarray(), default.toarray())


def test_sparse_fm_training_does_not_import_scipy(matrix, tmp_path):
    """The point of the container: importing scipy.sparse was 0.4-0.7 s of the sparse FM job."""
    opt = tmp_path / "ml"
    (opt / "input/data/train").mkdir(parents=True)
    (opt / "input/config").mkdir(parents=True)
    labels = (np.arange(60) % 2).astype(np.float32)
    (opt / "input/data/train/part.rec").write_bytes(encode_records(matrix, labels))
    (opt / "input/config/hyperparameters.json").write_text(
        '{"feature_dim": "30", "num_factors": "4", "predictor_type": "binary_classifier", "epochs": "2"}')
    (opt / "input/config/inputdataconfig.json").write_text(
        '{"train": {"ContentType": "application/x-recordio-protobuf", "TrainingInputMode": "File"}}')
    (opt / "input/config/resourceconfig.json").write_text('{"current_host": "algo-1", "hosts": ["algo-1"]}')
    code = ("import runpy, sys; sys.argv = ['x', 'train']\n"
            "try:\n    runpy.run_module('algorithms.factorization_machines', run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print('scipy.sparse' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "SMLOCAL_OPT_ML": str(opt)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr[-2000:]
    assert (opt / "model/model.tar.gz").exists() or any((opt / "model").iterdir())
