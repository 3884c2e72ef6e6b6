"""algorithms.io.ndarray without mxnet: round trips, and files that mxnet 1.9.1 itself wrote
(kept here as hex) read and reproduced byte for byte. test_ndarray_mxnet.py checks against a live
mxnet as well."""

from __future__ import annotations

import io
import os
import struct
import threading

import numpy as np
import pytest

from algorithms.io import DataFormatError, ndarray

# mx.nd.save(f, [mx.nd.array(np.arange(6, dtype="float32").reshape(2, 3))])
MX_LIST = bytes.fromhex(
    "120100000000000000000000000000000100000000000000c9fa93f900000000020000000200000000000000"
    "0300000000000000010000000000000000000000000000000000803f0000004000004040000080400000a040"
    "0000000000000000")
# mx.nd.save(f, {"ab": mx.nd.array(np.arange(2, dtype="float64"), dtype="float64")})
MX_DICT = bytes.fromhex(
    "120100000000000000000000000000000100000000000000c9fa93f900000000010000000200000000000000"
    "0100000000000000010000000000000000000000000000000000f03f01000000000000000200000000000000"
    "6162")
# with mx.util.np_shape(True): mx.nd.save(f, {"s": scalar 3.5, "m": mx.nd.ones((2, 2))})
MX_V3_DICT = bytes.fromhex(
    "120100000000000000000000000000000200000000000000cafa93f900000000000000000100000000000000"
    "0000000000006040cafa93f90000000002000000020000000000000002000000000000000100000000000000"
    "000000000000803f0000803f0000803f0000803f020000000000000001000000000000007301000000000000"
    "006d")


def test_we_write_what_mxnet_writes():
    assert ndarray.dumps([np.arange(6, dtype=np.float32).reshape(2, 3)]) == MX_LIST
    assert ndarray.dumps({"ab": np.arange(2, dtype=np.float64)}) == MX_DICT


def test_we_read_what_mxnet_writes():
    (arr,) = ndarray.loads(MX_LIST)
    assert arr.dtype == np.float32 and arr.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert {k: (v.dtype, v.tolist()) for k, v in ndarray.loads(MX_DICT).items()} == {
        "ab": (np.float64, [0.0, 1.0])}
    v3 = ndarray.loads(MX_V3_DICT)
    assert v3["s"].shape == () and v3["s"] == np.float32(3.5)
    assert v3["m"].tolist() == [[1, 1], [1, 1]]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "uint8", "int32", "int8",
                                   "int64", "bool"])
def test_round_trip_every_dtype(dtype, tmp_path):
    arr = (np.arange(24).reshape(2, 3, 4) % 5).astype(dtype)
    path = tmp_path / "model_algo-1"
    ndarray.save(path, {"w": arr, "b": arr[0, 0]})
    loaded = ndarray.load(path)
    assert list(loaded) == ["w", "b"]
    for got, want in zip(loaded.values(), (arr, arr[0, 0])):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_kmeans_and_pca_shaped_artifacts():
    centroids = np.random.default_rng(0).random((10, 784), dtype=np.float32)
    (back,) = ndarray.loads(ndarray.dumps([centroids]))
    np.testing.assert_array_equal(back, centroids)
    pca = {"mean": np.ones((1, 50), np.float32), "s": np.arange(5, dtype=np.float32),
           "v": np.eye(50, 5, dtype=np.float32)}
    back = ndarray.loads(ndarray.dumps(pca))
    assert {k: v.shape for k, v in back.items()} == {"mean": (1, 50), "s": (5,), "v": (50, 5)}


def test_non_contiguous_and_big_endian_inputs_are_normalised():
    arr = np.arange(12, dtype=">f8").reshape(3, 4)[:, ::2]
    (back,) = ndarray.loads(ndarray.dumps([arr]))
    assert back.dtype == np.float64 and back.tolist() == arr.tolist()


def test_empty_list_and_file_objects_and_pipes():
    assert ndarray.loads(ndarray.dumps([])) == []
    buf = io.BytesIO()
    ndarray.save(buf, [np.zeros(3, np.int64)])
    read_fd, write_fd = os.pipe()
    data = buf.getvalue()

    def writer():
        with os.fdopen(write_fd, "wb", buffering=0) as w:
            for i in range(0, len(data), 5):
                w.write(data[i:i + 5])

    thread = threading.Thread(target=writer)
    thread.start()
    with os.fdopen(read_fd, "rb", buffering=0) as r:
        (back,) = ndarray.load(r)
    thread.join()
    assert back.tolist() == [0, 0, 0]


def test_legacy_layouts_are_read():
    v1 = (struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Ii2q", ndarray.V1_MAGIC, 2, 1, 2)
          + struct.pack("<iii", 1, 0, 4) + struct.pack("<2i", 7, 8) + struct.pack("<Q", 0))
    assert ndarray.loads(v1)[0].tolist() == [[7, 8]]
    v0 = (struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<I2I", 2, 2, 1)  # ndim, uint32 dims
          + struct.pack("<iii", 1, 0, 0) + struct.pack("<2f", 1.5, 2.5) + struct.pack("<Q", 0))
    assert ndarray.loads(v0)[0].tolist() == [[1.5], [2.5]]


@pytest.mark.parametrize("data, message", [
    (b"\x00" * 8, "truncated while reading header"),
    (struct.pack("<QQ", 0x113, 0), "not an MXNet NDArray file: header 0x113"),
    (MX_LIST[:70], "truncated while reading array 0 data"),
    (MX_LIST[:28] + struct.pack("<i", 2) + MX_LIST[32:], "sparse storage type 2 is not supported"),
    (MX_LIST[:-8] + struct.pack("<Q", 3), "3 names for 1 arrays"),
])
def test_bad_files_raise_data_format_errors(data, message):
    with pytest.raises(DataFormatError, match=message):
        ndarray.loads(data)


def test_unsupported_inputs_are_refused_with_a_reason():
    with pytest.raises(TypeError, match="MXNet cannot store dtype complex128"):
        ndarray.dumps([np.zeros(2, complex)])
    with pytest.raises(ValueError, match="0-d arrays"):
        ndarray.dumps([np.float32(1.0)])
    with pytest.raises(TypeError, match="pass a list or dict"):
        ndarray.dumps(np.zeros(3))
