"""algorithms.io: RecordIO framing, the recordio-protobuf codec (against the real SageMaker SDK
when it is installed) and the read speed on MNIST-sized data.

CSV, libsvm, JSON and the content-type tables are in test_io_text.py; the MXNet NDArray codec in
test_ndarray.py and, against real mxnet, test_ndarray_mxnet.py.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms.io import DataFormatError, encode_records, read_records, read_recordio_protobuf
from algorithms.io import recordio
from algorithms.io.protobuf_wire import decode_varints, encode_varints, parse_record

REPO = Path(__file__).resolve().parents[2]

try:  # the real SDK, for interoperability in both directions
    from sagemaker.amazon import common as sdk_common
    from sagemaker.amazon.record_pb2 import Record as SdkRecord
except Exception as exc:  # pragma: no cover - depends on the test extras
    sdk_common = None
    SDK_MISSING = f"SageMaker Python SDK v2 not importable ({exc}); pip install 'sagemaker<3'"
else:
    SDK_MISSING = ""
needs_sdk = pytest.mark.skipif(sdk_common is None, reason=SDK_MISSING or "sdk")


def frames(*payloads: bytes) -> bytes:
    return b"".join(recordio.frame(p) for p in payloads)


def header(flag: int, length: int) -> bytes:
    return struct.pack("<II", recordio.MAGIC, (flag << 29) | length)


# ---------------------------------------------------------------------------------------------
# RecordIO framing


@pytest.mark.parametrize("payload", [b"", b"a", b"ab", b"abc", b"abcd", b"x" * 1001])
def test_frame_pads_to_four_bytes_and_round_trips(payload):
    data = recordio.frame(payload)
    assert data[:8] == header(0, len(payload))
    assert len(data) == 8 + recordio.padded(len(payload)) and len(data) % 4 == 0
    assert data[8 + len(payload):] == b"\0" * (len(data) - 8 - len(payload))
    assert list(recordio.iter_records(io.BytesIO(data))) == [payload]


def test_payload_with_aligned_magic_is_split_like_dmlc_and_joined_back():
    m = recordio.MAGIC_BYTES
    payload = b"abcd" + m + b"efgh" + m + m + b"xyz"
    data = recordio.frame(payload)
    # start "abcd", middle "efgh", middle "" (between two magics), end "xyz" + 1 byte padding
    assert data == (header(1, 4) + b"abcd" + header(2, 4) + b"efgh" + header(2, 0)
                    + header(3, 3) + b"xyz\0")
    assert list(recordio.iter_records(io.BytesIO(data + frames(b"next")))) == [payload, b"next"]


def test_unaligned_magic_is_not_split_and_split_can_be_disabled():
    m = recordio.MAGIC_BYTES
    assert recordio.frame(b"ab" + m + b"cd")[:8] == header(0, 8)
    assert recordio.frame(m + b"data", split=False)[:8] == header(0, 8)
    assert recordio.frame(m)[:8] == header(1, 0)  # magic alone: empty start + empty end
    assert list(recordio.iter_records(io.BytesIO(recordio.frame(m)))) == [m]


def test_reader_reassembles_hand_made_split_records():
    data = header(1, 5) + b"hello\0\0\0" + header(3, 2) + b"!!\0\0"  # dmlc pads every part
    assert list(recordio.iter_records(io.BytesIO(data))) == [b"hello" + recordio.MAGIC_BYTES + b"!!"]


@pytest.mark.parametrize("data, message", [
    (b"\x01\x02\x03\x04\x05\x06\x07\x08", "bad magic 0x04030201 at byte 0"),
    (frames(b"ok") + b"\x0a\x23", "truncated header at byte 12: 2 of 8 bytes"),
    (header(0, 10) + b"short", "the record at byte 0 declares 10 bytes but the data ends first"),
    (header(2, 0), "the part at byte 0 has cflag 2; expected 0 (whole) or 1 (start)"),
    (header(1, 0) + header(0, 0), "the part at byte 8 has cflag 0; expected 2 (middle) or 3 (end)"),
    (header(5, 0), "has cflag 5"),
    (header(1, 4) + b"abcd", "ends inside a split record"),
])
def test_framing_errors_say_where(data, message):
    with pytest.raises(DataFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(recordio.iter_records(io.BytesIO(data)))


_MAGICKY = st.lists(st.sampled_from([b"", b"x", b"\0\0\0", b"\x0a\x23\xd7\xce", b"ab\xce"]),
                   max_size=12).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=64), _MAGICKY), max_size=8), st.integers(1, 64))
def test_any_payloads_survive_framing_at_any_chunk_size(payloads, chunk_size):
    data = b"".join(recordio.frame(p) for p in payloads)
    assert len(data) % 4 == 0
    assert list(recordio.iter_records(io.BytesIO(data), chunk_size=chunk_size)) == payloads


def _varied_payloads(count: int, seed: int = 0) -> list[bytes]:
    """Payloads of 0-40 bytes, some holding the magic at an aligned offset (the SDK writes those
    unsplit, so a reader cannot take every aligned magic for a header)."""
    rng = np.random.default_rng(seed)
    payloads = [rng.bytes(int(n)) for n in rng.integers(0, 41, count)]
    for i in range(5, count, 97):
        payloads[i] = b"ab\0\0" + recordio.MAGIC_BYTES + payloads[i]
    return payloads


@pytest.mark.parametrize("chunk_size", [7, 1000, 4096, 1 << 20])
def test_many_variable_length_records_frame_in_blocks_at_any_chunk_size(chunk_size):
    payloads = _varied_payloads(5000)
    unsplit = b"".join(recordio.frame(p, split=False) for p in payloads)
    split = frames(*payloads)
    for data in (unsplit, split):
        assert list(recordio.iter_records(io.BytesIO(data), chunk_size=chunk_size)) == payloads


def test_records_stopping_every_block_still_frame():
    payloads = [recordio.MAGIC_BYTES * (1 + i % 3) for i in range(3000)]  # a magic in each one
    data = b"".join(recordio.frame(p, split=False) for p in payloads)
    assert list(recordio.iter_records(io.BytesIO(data))) == payloads


@pytest.mark.parametrize("chunk_size", [64, 1 << 20])
def test_bad_magic_after_a_long_run_is_reported_at_its_byte(chunk_size):
    good = frames(*_varied_payloads(3000))
    data = good + b"\x01\x02\x03\x04" + bytes(4) + frames(b"after")
    records = recordio.iter_records(io.BytesIO(data), chunk_size=chunk_size)
    with pytest.raises(DataFormatError, match=f"bad magic 0x04030201 at byte {len(good)};"):
        list(records)


def test_truncated_record_after_a_long_run_is_reported_at_its_byte():
    good = frames(*_varied_payloads(3000))
    data = good + header(0, 100) + b"short"
    with pytest.raises(DataFormatError, match=f"the record at byte {len(good)} declares 100 bytes"):
        list(recordio.iter_records(io.BytesIO(data)))


def test_reader_streams_from_a_pipe_written_in_odd_pieces():
    payloads = [os.urandom(n) for n in (0, 1, 7, 4096, 70_000, 3)] + [recordio.MAGIC_BYTES * 3]
    data = frames(*payloads)
    read_fd, write_fd = os.pipe()

    def writer():
        with os.fdopen(write_fd, "wb", buffering=0) as w:
            for i in range(0, len(data), 1013):  # pieces that cut through headers and payloads
                w.write(data[i:i + 1013])
                time.sleep(0.0005)

    thread = threading.Thread(target=writer)
    thread.start()
    with os.fdopen(read_fd, "rb", buffering=0) as r:  # unbuffered: short reads, no seek
        got = list(recordio.iter_records(r, chunk_size=512))
    thread.join()
    assert got == payloads


# ---------------------------------------------------------------------------------------------
# The protobuf wire format


@pytest.mark.parametrize("values", [[0], [1, 127, 128, 300, 2**32, 2**63 - 1], list(range(0, 5000, 7))])
def test_varints_round_trip(values):
    blob, lengths = encode_varints(np.array(values, np.int64))
    assert lengths.sum() == len(blob)
    assert decode_varints(blob, 0, len(blob)).tolist() == values


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-2**31, 2**31 - 1), max_size=40))
def test_int32_values_round_trip_through_varints(values):
    blob, _ = encode_varints(np.array(values, np.int64))
    assert decode_varints(blob, 0, len(blob)).view(np.int64).tolist() == values


def test_negative_int32_is_a_ten_byte_varint_like_protobuf():
    from algorithms.io.record_pb2 import Record
    r = Record()
    r.features["values"].int32_tensor.values.extend([-1, 5, -2**31])
    ours = encode_records(np.array([[-1, 5, -2**31]], np.int32))
    assert ours == recordio.frame(r.SerializeToString())
    (batch,) = read_recordio_protobuf(io.BytesIO(ours))
    assert batch.features.tolist() == [[-1, 5, -2**31]] and batch.features.dtype == np.int32


@pytest.mark.parametrize("dtype, field", [(np.float32, "float32_tensor"), (np.float64, "float64_tensor"),
                                          (np.int64, "int32_tensor")])
def test_our_dense_records_are_byte_identical_to_protobufs(dtype, field):
    from algorithms.io.record_pb2 import Record
    x = (np.arange(12).reshape(3, 4) * 1.5).astype(dtype) if dtype != np.int64 else \
        np.arange(12, dtype=np.int64).reshape(3, 4) * 1000
    y = np.array([0.0, 1.0, 2.0], np.float64)
    expected = []
    for row, label in zip(x, y):
        r = Record()
        getattr(r.features["values"], field).values.extend(row.tolist())
        r.label["values"].float64_tensor.values.append(label)
        expected.append(recordio.frame(r.SerializeToString()))
    assert encode_records(x, y) == b"".join(expected)


def test_our_sparse_records_are_byte_identical_to_protobufs():
    from algorithms.io.record_pb2 import Record
    m = scipy.sparse.csr_matrix(np.array([[0, 2.5, 0, 0, 1], [0, 0, 0, 0, 0], [3, 0, 0, 0, 0]],
                                         np.float32))
    expected = []
    for i in range(3):
        r = Record()
        t = r.features["values"].float32_tensor
        row = m.getrow(i)
        t.values.extend(row.data.tolist())
        t.keys.extend(row.indices.tolist())
        t.shape.append(5)
        expected.append(recordio.frame(r.SerializeToString()))
    assert encode_records(m) == b"".join(expected)


def test_parser_accepts_unpacked_fields_unknown_fields_and_strings():
    from algorithms.io.record_pb2 import Record
    tensor = b"".join(b"\x0d" + struct.pack("<f", v) for v in (1.0, 2.0))  # unpacked floats
    tensor += b"\x10\x03\x10\x07" + b"\x18\x0a"  # unpacked keys 3, 7 and shape 10
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x06values\x12" + bytes([len(value)]) + value
    payload = b"\x0a" + bytes([len(entry)]) + entry + b"\x1a\x02id" + b"\xf8\x01\x05"  # field 31
    rec = parse_record(payload)
    t = rec.features["values"]
    assert t.values.tolist() == [1.0, 2.0] and t.keys.tolist() == [3, 7] and t.shape == (10,)
    assert rec.uid == "id"
    assert Record.FromString(payload).uid == "id"  # protobuf agrees it is a valid message


def test_bytes_values_metadata_and_configuration_are_decoded():
    from algorithms.io.record_pb2 import Record
    r = Record(metadata="m", configuration='{"top_k": 2}')
    r.features["image"].bytes.value.append(b"\x89PNG")
    r.features["image"].bytes.content_type = "image/png"
    rec = parse_record(r.SerializeToString())
    assert rec.features["image"] == [b"\x89PNG"]
    assert (rec.metadata, rec.configuration) == ("m", '{"top_k": 2}')
    with pytest.raises(DataFormatError, match="holds Bytes"):
        list(read_recordio_protobuf(io.BytesIO(recordio.frame(r.SerializeToString()))))


def test_truncated_record_is_a_data_format_error():
    payload = encode_records(np.ones((1, 4), np.float32))[8:-2]
    with pytest.raises(DataFormatError):
        parse_record(payload[:-3])


# ---------------------------------------------------------------------------------------------
# Batches


def test_dense_batches_with_scalar_labels():
    x = np.random.default_rng(0).random((2500, 9), dtype=np.float32)
    y = np.arange(2500, dtype=np.float32)
    batches = list(read_recordio_protobuf(io.BytesIO(encode_records(x, y)), batch_size=1000))
    assert [len(b) for b in batches] == [1000, 1000, 500]
    np.testing.assert_array_equal(np.concatenate([b.features for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), y)


def test_fast_and_general_paths_agree():
    x = np.random.default_rng(1).random((6, 3))
    data = encode_records(x.astype(np.float32), {"values": np.arange(6.0), "w": np.ones((6, 2))})
    fast = next(read_recordio_protobuf(io.BytesIO(data)))
    mixed = data + encode_records(np.zeros((1, 3), np.float64), {"values": [7.0], "w": [[1, 1]]})
    general = next(read_recordio_protobuf(io.BytesIO(mixed)))  # one record of another layout
    np.testing.assert_array_equal(general.features[:6], fast.features)
    np.testing.assert_array_equal(general.labels[:6], fast.labels)
    assert general.features.dtype == np.float64 and fast.features.dtype == np.float32


def test_sparse_batches_give_csr_with_the_shape_field_and_force_dense():
    m = scipy.sparse.random(50, 30, density=0.1, format="csr", dtype=np.float32, random_state=3)
    m = scipy.sparse.csr_matrix(m.toarray() * (np.arange(50) % 7 != 0)[:, None])  # empty rows
    data = encode_records(m, np.arange(50))
    (batch,) = read_recordio_protobuf(io.BytesIO(data), batch_size=100)
    assert scipy.sparse.isspmatrix_csr(batch.features) and batch.features.shape == (50, 30)
    np.testing.assert_array_equal(batch.features.toarray(), m.toarray())
    assert batch.labels.tolist() == list(range(50))
    (dense,) = read_recordio_protobuf(io.BytesIO(data), batch_size=100, force_dense=True,
                                      dtype=np.float64)
    assert isinstance(dense, type(dense)) and dense.features.dtype == np.float64
    np.testing.assert_array_equal(dense.features, m.toarray())


def _general_path(data: bytes):
    """What the per-record parser makes of ``data`` (the reference for the column-wise path)."""
    from algorithms.io import recordio_protobuf as rp
    payloads = list(recordio.iter_records(io.BytesIO(data)))
    return rp._assemble([rp.parse_record_raw(p) for p in payloads], 0, False, "values", "values")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("labels", ["none", "scalar", "vector", "int"])
def test_column_wise_sparse_batches_equal_the_per_record_parser(dtype, labels):
    from algorithms.io.protobuf_columns import sparse_batch
    rng = np.random.default_rng(7)
    m = scipy.sparse.random(400, 300_000, density=0.00003, format="csr", random_state=5)  # keys of 1-3 bytes
    m = scipy.sparse.csr_matrix((m.toarray() * 1000 * (np.arange(400) % 9 != 0)[:, None]).astype(dtype))  # empty rows
    y = {"none": None, "scalar": rng.normal(size=400).astype(np.float32), "vector": rng.normal(size=(400, 3)),
         "int": rng.integers(0, 9, 400).astype(np.int32)}[labels]
    data = encode_records(m, y)
    fast = sparse_batch(list(recordio.iter_records(io.BytesIO(data))))
    slow = _general_path(data)
    assert fast is not None and fast.features.dtype == slow.features.dtype == dtype
    assert fast.features.shape == slow.features.shape == (400, 300_000)
    for part in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(fast.features, part), getattr(slow.features, part))
    if y is None:
        assert fast.labels is None and slow.labels is None
    else:
        assert fast.labels.dtype == slow.labels.dtype and fast.labels.shape == slow.labels.shape
        np.testing.assert_array_equal(fast.labels, slow.labels)


def _one_hot_pairs(rows: int, width: int, rng) -> scipy.sparse.csr_matrix:
    """Two non-zeros a row, every row alike in layout (the FM bench's shape of data)."""
    cols = np.column_stack([rng.integers(width // 2, size=rows), width // 2 + rng.integers(width // 2, size=rows)])
    return scipy.sparse.csr_matrix((np.ones(2 * rows, np.float32), cols.ravel(), np.arange(0, 2 * rows + 1, 2)),
                                   shape=(rows, width))


@pytest.mark.parametrize("layout", ["pairs", "long rows", "mixed"])
def test_column_wise_path_equals_the_per_record_parser_on_every_field_layout(layout):
    """Rows with as many fields each (regrouped by interleaving), rows whose fields pass 127
    bytes (lengths of two varint bytes), and both mixed with empty rows (fields missing)."""
    from algorithms.io.protobuf_columns import sparse_batch
    rng = np.random.default_rng(3)
    pairs = _one_hot_pairs(300, 10_000, rng)
    long_rows = scipy.sparse.random(300, 10_000, density=0.01, format="csr", random_state=2, dtype=np.float32)
    m = {"pairs": pairs, "long rows": long_rows,
         "mixed": scipy.sparse.vstack([pairs, long_rows, scipy.sparse.csr_matrix((5, 10_000))], format="csr")}[layout]
    data = encode_records(m, rng.integers(0, 2, m.shape[0]).astype(np.float32))
    fast = sparse_batch(list(recordio.iter_records(io.BytesIO(data))))
    slow = _general_path(data)
    assert fast is not None and fast.features.shape == slow.features.shape
    for part in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(fast.features, part), getattr(slow.features, part))
    np.testing.assert_array_equal(fast.labels, slow.labels)


def test_column_wise_path_declines_what_it_does_not_handle():
    from algorithms.io.protobuf_columns import sparse_batch
    def payloads(data):
        return list(recordio.iter_records(io.BytesIO(data)))
    sparse = scipy.sparse.csr_matrix(np.array([[0, 3, 0, -4]], np.float32))
    assert sparse_batch(payloads(encode_records(np.ones((3, 2), np.float32), [1, 2, 3]))) is None  # dense
    mixed = encode_records(sparse, [1]) + encode_records(np.array([[5, 0, 0, 6]], np.float32), [0])
    assert sparse_batch(payloads(mixed)) is None
    half_labelled = encode_records(sparse, [1]) + encode_records(sparse)
    assert sparse_batch(payloads(half_labelled)) is None
    assert sparse_batch(payloads(encode_records(sparse, scipy.sparse.csr_matrix([[0.0, 1.0]])))) is None


def test_dense_rows_among_sparse_ones_and_int32_sparse_rows():
    sparse = scipy.sparse.csr_matrix(np.array([[0, 3, 0, -4]], np.int32))
    data = encode_records(sparse, [1]) + encode_records(np.array([[5, 0, 0, 6]], np.int32), [0])
    (batch,) = read_recordio_protobuf(io.BytesIO(data))
    assert scipy.sparse.isspmatrix_csr(batch.features)
    assert batch.features.toarray().tolist() == [[0, 3, 0, -4], [5, 0, 0, 6]]
    assert batch.features.dtype == np.int32 and batch.labels.tolist() == [1, 0]
    (alone,) = read_recordio_protobuf(io.BytesIO(encode_records(sparse, [1]) * 3))
    assert alone.features.toarray().tolist() == [[0, 3, 0, -4]] * 3


def test_sparse_record_errors_name_the_record():
    from algorithms.io.record_pb2 import Record
    r = Record()
    r.features["values"].float32_tensor.values.extend([1.0, 2.0])
    r.features["values"].float32_tensor.keys.extend([0, 9])
    r.features["values"].float32_tensor.shape.append(5)
    bad_key = recordio.frame(r.SerializeToString())
    ok = encode_records(scipy.sparse.csr_matrix(np.ones((1, 5), np.float32)))
    with pytest.raises(DataFormatError, match=r"record 1: key 9 is out of range for shape \[5\]"):
        list(read_recordio_protobuf(io.BytesIO(ok + bad_key)))
    del r.features["values"].float32_tensor.shape[:]
    with pytest.raises(DataFormatError, match="record 0: a sparse tensor .* needs a shape"):
        list(read_recordio_protobuf(io.BytesIO(recordio.frame(r.SerializeToString()))))
    r.features["values"].float32_tensor.shape.append(10)
    r.features["values"].float32_tensor.keys.append(3)
    with pytest.raises(DataFormatError, match="record 0: 3 keys but 2 values"):
        list(read_recordio_protobuf(io.BytesIO(recordio.frame(r.SerializeToString()))))


def test_vector_labels_missing_labels_and_named_tensors():
    data = encode_records(np.ones((3, 2), np.float32), np.arange(6, dtype=np.float32).reshape(3, 2))
    (batch,) = read_recordio_protobuf(io.BytesIO(data))
    assert batch.labels.shape == (3, 2)
    (unlabelled,) = read_recordio_protobuf(io.BytesIO(encode_records(np.ones((2, 2)))))
    assert unlabelled.labels is None
    partial = encode_records(np.ones((1, 2)), [1.0]) + encode_records(np.ones((1, 2)))
    with pytest.raises(DataFormatError, match="record 1 has no label"):
        list(read_recordio_protobuf(io.BytesIO(partial)))


def test_ragged_dense_records_name_the_record():
    data = encode_records(np.ones((2, 3))) + encode_records(np.ones((1, 4)))
    with pytest.raises(DataFormatError, match="record 2 has 4 feature values but record 0 has 3"):
        list(read_recordio_protobuf(io.BytesIO(data)))


def test_missing_feature_tensor_names_what_was_found():
    data = encode_records(labels={"score": np.ones(2, np.float32)})
    with pytest.raises(DataFormatError, match=r"record 0: no features tensor named 'values' \(found: none\)"):
        list(read_recordio_protobuf(io.BytesIO(data)))


def test_reads_from_a_path(tmp_path):
    path = tmp_path / "train.pbr"
    path.write_bytes(encode_records(np.eye(3, dtype=np.float32), np.arange(3.0)))
    (batch,) = read_recordio_protobuf(path)
    np.testing.assert_array_equal(batch.features, np.eye(3))
    assert [r.label["values"].values[0] for r in read_records(str(path))] == [0.0, 1.0, 2.0]


def test_response_records_have_empty_features_and_a_label_map():
    body = encode_records(labels={"closest_cluster": np.array([1.0, 0.0], np.float32),
                                  "distance_to_cluster": np.array([3.0, 0.5], np.float32)})
    recs = read_records(io.BytesIO(body))
    assert [r.features for r in recs] == [{}, {}]
    assert recs[0].label["closest_cluster"].values.dtype == np.float32
    assert [(r.label["closest_cluster"].values[0], r.label["distance_to_cluster"].values[0])
            for r in recs] == [(1.0, 3.0), (0.0, 0.5)]


# ---------------------------------------------------------------------------------------------
# The generated protobuf module


def test_record_pb2_schema_matches_the_contract():
    from algorithms.io import record_pb2
    record = record_pb2.Record.DESCRIPTOR
    assert record.full_name == "aialgs.data.Record"
    assert {f.name: f.number for f in record.fields} == {
        "features": 1, "label": 2, "uid": 3, "metadata": 4, "configuration": 5}
    value = record_pb2.Value.DESCRIPTOR
    assert {f.name: f.number for f in value.fields} == {
        "float32_tensor": 2, "float64_tensor": 3, "int32_tensor": 7, "bytes": 9}
    for tensor in (record_pb2.Float32Tensor, record_pb2.Float64Tensor, record_pb2.Int32Tensor):
        assert {f.name: f.number for f in tensor.DESCRIPTOR.fields} == {"values": 1, "keys": 2, "shape": 3}


@needs_sdk
@pytest.mark.parametrize("first", ["sagemaker.amazon.record_pb2", "algorithms.io.record_pb2"])
def test_record_pb2_coexists_with_the_sdks_in_either_import_order(first):
    second = ({"sagemaker.amazon.record_pb2", "algorithms.io.record_pb2"} - {first}).pop()
    code = (f"import {first}, {second}, sys; "
            f"a = sys.modules['{first}'].Record; b = sys.modules['{second}'].Record; "
            f"print(a.DESCRIPTOR.full_name == b.DESCRIPTOR.full_name)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == ["True"], out.stderr


# ---------------------------------------------------------------------------------------------
# The real SDK, both directions


@needs_sdk
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_sdk_dense_records_read_by_us(dtype):
    x = (np.random.default_rng(5).random((40, 6)) * 100).astype(dtype)
    y = np.arange(40).astype(np.float32)
    buf = io.BytesIO()
    sdk_common.write_numpy_to_dense_tensor(buf, x, y)
    (batch,) = read_recordio_protobuf(io.BytesIO(buf.getvalue()), batch_size=100)
    np.testing.assert_array_equal(batch.features, x.astype(np.int32) if dtype == np.int64 else x)
    assert batch.features.dtype == (np.int32 if dtype == np.int64 else dtype)
    np.testing.assert_array_equal(batch.labels, y)
    assert encode_records(x, y) == buf.getvalue()  # and we write the very same bytes


@needs_sdk
def test_sdk_sparse_records_read_by_us():
    m = scipy.sparse.random(30, 200, density=0.05, format="csr", dtype=np.float32, random_state=9)
    y = np.arange(30, dtype=np.float64)
    buf = io.BytesIO()
    sdk_common.write_spmatrix_to_sparse_tensor(buf, m, y)
    (batch,) = read_recordio_protobuf(io.BytesIO(buf.getvalue()), batch_size=100)
    assert batch.features.shape == (30, 200)
    np.testing.assert_array_equal(batch.features.toarray(), m.toarray())
    np.testing.assert_array_equal(batch.labels, y)


@needs_sdk
@pytest.mark.parametrize("dtype, field", [(np.float32, "float32_tensor"), (np.float64, "float64_tensor"),
                                          (np.int32, "int32_tensor")])
def test_our_dense_records_read_by_the_sdk(dtype, field):
    x = (np.arange(20).reshape(4, 5) - 7).astype(dtype)
    recs = sdk_common.read_records(io.BytesIO(encode_records(x, np.arange(4, dtype=np.int64))))
    assert len(recs) == 4 and all(isinstance(r, SdkRecord) for r in recs)
    for row, rec in zip(x, recs):
        assert list(getattr(rec.features["values"], field).values) == row.tolist()
    assert [r.label["values"].int32_tensor.values[0] for r in recs] == [0, 1, 2, 3]


@needs_sdk
def test_our_sparse_records_read_by_the_sdk():
    m = scipy.sparse.csr_matrix(np.array([[0, 1.5, 0, 2], [0, 0, 0, 0], [7, 0, 0, 0]], np.float32))
    recs = sdk_common.read_records(io.BytesIO(encode_records(m, np.array([1.0, 0.0, 1.0], np.float32))))
    t = [r.features["values"].float32_tensor for r in recs]
    assert [(list(x.values), list(x.keys), list(x.shape)) for x in t] == [
        ([1.5, 2.0], [1, 3], [4]), ([], [], [4]), ([7.0], [0], [4])]


@needs_sdk
def test_response_bodies_read_by_the_sdks_record_deserializer():
    from sagemaker.deserializers import RecordDeserializer
    body = encode_records(labels={"closest_cluster": np.array([2.0, 0.0], np.float32),
                                  "distance_to_cluster": np.array([0.25, 1.5], np.float32)})
    recs = RecordDeserializer().deserialize(io.BytesIO(body), "application/x-recordio-protobuf")
    assert [(r.label["closest_cluster"].float32_tensor.values[0],
             r.label["distance_to_cluster"].float32_tensor.values[0]) for r in recs] == [
        (2.0, 0.25), (0.0, 1.5)]
    assert all(len(r.features) == 0 for r in recs)


@needs_sdk
def test_sdk_record_serializer_requests_read_by_us():
    from sagemaker.serializers import RecordSerializer
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    body = RecordSerializer().serialize(x)
    body = body.read() if hasattr(body, "read") else body
    (batch,) = read_recordio_protobuf(io.BytesIO(body))
    np.testing.assert_array_equal(batch.features, x)
    assert batch.labels is None


# ---------------------------------------------------------------------------------------------
# Speed: MNIST-sized dense float32 (printed, not asserted)


@pytest.mark.slow
def test_read_speed_mnist_sized(tmp_path, capsys):
    rows, dim = 70_000, 784
    x = np.random.default_rng(0).random((rows, dim), dtype=np.float32)
    y = (np.arange(rows) % 10).astype(np.float32)
    path = tmp_path / "mnist.pbr"
    started = time.perf_counter()
    with open(path, "wb") as f:
        for lo in range(0, rows, 10_000):
            f.write(encode_records(x[lo:lo + 10_000], y[lo:lo + 10_000]))
    wrote = time.perf_counter() - started
    started = time.perf_counter()
    seen = 0
    with open(path, "rb") as f:
        for batch in read_recordio_protobuf(f, batch_size=1000):
            seen += len(batch)
    took = time.perf_counter() - started
    assert seen == rows
    size = path.stat().st_size / 1e6
    with capsys.disabled():
        print(f"\n[speed] recordio-protobuf {rows}x{dim} float32 ({size:.0f} MB): "
              f"read {took:.2f} s ({size / took:.0f} MB/s), write {wrote:.2f} s")
