"""algorithms.xgboost.libsvm: the fast libsvm readers give exactly the shared reader's result.

XGBoost's own parser (the one SageMaker's container uses) reads a file only when nothing in it can
be read differently; a file it would misread (a `label:weight` head, a fractional index, `nan`,
comments, ranking ids, stray text) goes to the numpy or the shared reader instead."""

from __future__ import annotations

import numpy as np
import pytest

from algorithms.io import concat_batches, read_libsvm
from algorithms.xgboost import libsvm

PLAIN = {
    "indices as given": b"1 1:0.5 3:2\n0 0:2 2:1.5\n",
    "exponents and signs": b"1 0:1e-3 1:-2.5E+2\n-1 1:+4\n",
    "explicit zeros stay": b"1 0:0 1:2\n0 1:4\n",
    "duplicates summed": b"1 0:1 0:2\n0 1:4\n",
    "unsorted indices": b"1 3:1 1:2\n0 1:4\n",
    "tabs, CRLF, blank lines, spaces": b"1\t0:1\t1:2 \r\n\n  0 1:4   \n",
    "no final newline": b"1 0:1\n0 1:4",
    "a line without features": b"1\n0 12:4\n",
}
ELSEWHERE = {
    "weights on some lines": b"1 0:1\n0:3 1:4\n",
    "weights on every line": b"1:0.5 0:1\n0:2 1:4\n",
    "fractional index": b"1 0.5:1\n0 1:4\n",
    "signed index": b"1 +1:1\n0 1:4\n",
    "nan value": b"1 0:nan\n0 1:4\n",
    "comment": b"1 0:1 # first\n0 1:4\n",
    "ranking ids": b"1 qid:3 0:1\n0 qid:3 1:4\n",
}
BROKEN = {
    "not a number": (b"1 0:1 2:x\n0 1:4\n", "line 1"),
    "no value": (b"1 0:1 2\n0 1:4\n", "line 1"),
    "label not a number": (b"yes 0:1\n0 1:4\n", "line 1"),
    "negative index": (b"1 0:1\n0 -1:4\n", "line 2"),
}


def shared(body: bytes):
    return concat_batches(list(read_libsvm(body, batch_size=3)))


def assert_same(batches, expected):
    got = concat_batches(batches)
    assert got.features.shape == expected.features.shape
    assert np.array_equal(got.features.toarray(), expected.features.toarray(), equal_nan=True)
    assert got.features.nnz == expected.features.nnz  # explicit zeros are entries, absent ones missing
    assert np.array_equal(got.labels, expected.labels)
    if expected.weights is None:
        assert got.weights is None
    else:
        assert np.array_equal(got.weights, expected.weights)


@pytest.mark.parametrize("body", PLAIN.values(), ids=PLAIN.keys())
def test_xgboost_reads_plain_files_as_the_shared_reader_does(tmp_path, body):
    path = tmp_path / "train.libsvm"
    path.write_bytes(body)
    batch = libsvm.by_xgboost(path)
    assert batch is not None
    assert_same([batch], shared(body))


@pytest.mark.parametrize("body", ELSEWHERE.values(), ids=ELSEWHERE.keys())
def test_files_xgboost_would_misread_go_to_the_other_readers(tmp_path, body):
    path = tmp_path / "train.libsvm"
    path.write_bytes(body)
    assert libsvm.by_xgboost(path) is None
    batches = libsvm.read_files([path])
    if batches is not None:  # None: the shared reader reads it, as for the numpy path's misses
        assert_same(batches, shared(body))


@pytest.mark.parametrize("body, where", BROKEN.values(), ids=BROKEN.keys())
def test_malformed_files_are_left_to_the_reader_that_names_the_line(tmp_path, body, where):
    path = tmp_path / "train.libsvm"
    path.write_bytes(body)
    assert libsvm.read_files([path]) is None
    with pytest.raises(ValueError, match=where):
        shared(body)


def test_uri_characters_in_a_path_keep_xgboost_out(tmp_path):
    path = tmp_path / "part?x=1#cache.libsvm"
    path.write_bytes(PLAIN["indices as given"])
    assert libsvm.by_xgboost(path) is None
    assert_same(libsvm.read_files([path]), shared(PLAIN["indices as given"]))


def test_files_mix_readers_and_weights_default_to_one(tmp_path):
    plain, weighted = tmp_path / "a.libsvm", tmp_path / "b.libsvm"
    plain.write_bytes(b"1 0:1\n0 1:4\n")
    weighted.write_bytes(b"1:2 0:3\n")
    batches = libsvm.read_files([plain, weighted])
    assert np.array_equal(concat_batches(batches).weights, [1, 1, 2])
    assert np.array_equal(concat_batches(batches).labels, [1, 0, 1])


def test_files_are_checked_a_block_at_a_time(tmp_path, monkeypatch):
    """Blocks of whole lines, however small: a head or fractional index in a later block is still
    caught, and a plain file still goes to XGBoost."""
    monkeypatch.setattr(libsvm, "CHUNK", 7)
    plain, late_head = tmp_path / "a.libsvm", tmp_path / "b.libsvm"
    body = b"".join(PLAIN.values())
    plain.write_bytes(body)
    late_head.write_bytes(body + b"1:2 0:3\n")
    assert_same([libsvm.by_xgboost(plain)], shared(body))
    assert libsvm.by_xgboost(late_head) is None


def test_xgboost_parses_alongside_the_check_and_never_outlives_it(tmp_path, monkeypatch):
    """XGBoost's parse starts once the first block passes the check and is always waited for, so no
    parser thread is left running; a file that fails its first block never reaches XGBoost."""
    monkeypatch.setattr(libsvm, "CHUNK", 7)
    started = []
    real = libsvm._Parse

    class Recorded(real):
        def __init__(self, path):
            super().__init__(path)
            started.append(self)

    monkeypatch.setattr(libsvm, "_Parse", Recorded)
    body = b"".join(PLAIN.values())
    first_fails, late_fails = tmp_path / "first.libsvm", tmp_path / "late.libsvm"
    first_fails.write_bytes(b"1 qid:3 0:1\n" + body)
    late_fails.write_bytes(body + b"1 0.5:1\n")
    assert libsvm.by_xgboost(first_fails) is None
    assert started == []
    assert libsvm.by_xgboost(late_fails) is None
    assert len(started) == 1 and not started[0]._thread.is_alive()
