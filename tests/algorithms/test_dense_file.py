"""The dense-file path of File-mode channels (algorithms.io.dense_file, Channel.batches): a
recordio-protobuf file as the SDK writes it is memory-mapped and cut into batches equal to the
streaming reader's; anything else goes through the streaming reader."""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sagemaker.serializer_utils import write_numpy_to_dense_tensor

from algorithms.common import contract
from algorithms.common.training import Channel
from algorithms.io import encode_records, read_recordio_protobuf
from algorithms.io.dense_file import map_dense_file

RECORDIO = "application/x-recordio-protobuf"


def sdk_file(path, X, y) -> None:
    with open(path, "wb") as f:  # exactly what record_set() uploads
        write_numpy_to_dense_tensor(f, X, y)


def test_mapped_views_are_the_values_read_only(tmp_path):
    X, y = np.random.default_rng(0).random((50, 7), dtype=np.float32), np.arange(50, dtype=np.float32)
    sdk_file(tmp_path / "a.pbr", X, y)
    mapped = map_dense_file(tmp_path / "a.pbr")
    assert np.array_equal(mapped.features, X) and np.array_equal(mapped.labels, y)
    assert not mapped.features.flags.writeable and not mapped.features.flags.c_contiguous
    (tmp_path / "empty.pbr").write_bytes(b"")
    assert map_dense_file(tmp_path / "empty.pbr") is None


def test_channel_batches_equal_the_streaming_reader(tmp_path, monkeypatch):
    monkeypatch.setattr(contract, "DATA", tmp_path)
    (tmp_path / "train").mkdir()
    rng = np.random.default_rng(1)
    X, y = rng.random((103, 5), dtype=np.float32), rng.integers(0, 2, 103).astype(np.float32)
    sdk_file(tmp_path / "train" / "a.pbr", X, y)
    sparse = scipy.sparse.random(20, 5, 0.4, dtype=np.float32, format="csr", random_state=0)
    (tmp_path / "train" / "b.pbr").write_bytes(encode_records(features=sparse, labels=np.ones(20, np.float32)))
    channel = Channel("train", RECORDIO, "File", "FullyReplicated")
    batches = list(channel.batches(10))
    streamed = [b for path in channel.files() for b in read_recordio_protobuf(path, 10)]
    assert [len(b) for b in batches] == [len(b) for b in streamed] == [10] * 10 + [3, 10, 10]
    for ours, theirs in zip(batches[:11], streamed):
        assert ours.features.flags.c_contiguous and ours.features.flags.writeable
        assert np.array_equal(ours.features, theirs.features) and np.array_equal(ours.labels, theirs.labels)
    assert scipy.sparse.issparse(batches[-1].features)  # the sparse file went through the streaming reader
    assert list(channel.batches(1000, dtype=np.float64))[0].features.dtype == np.float64
