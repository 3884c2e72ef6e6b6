"""algorithms.io: CSV, libsvm, JSON and JSON Lines readers and writers, and the content-type
tables that pick them (including the errors a sender sees)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.sparse

from algorithms.io import (
    DataFormatError, UnsupportedContentTypeError, choose_accept, decode_request, encode_response,
    parse_accept, parse_content_type, read_batches, read_csv, read_libsvm, read_records,
)
from algorithms.io.content_types import READERS, WRITERS


def one(batches):
    batches = list(batches)
    assert len(batches) == 1
    return batches[0]


# ---------------------------------------------------------------------------------------------
# Content types


@pytest.mark.parametrize("raw, mime, params", [
    ("text/csv", "text/csv", {}),
    ("Text/CSV; label_size=0", "text/csv", {"label_size": "0"}),
    ("application/json; verbose=true", "application/json", {"verbose": "true"}),
    ("application/json;charset=UTF-8", "application/json", {"charset": "UTF-8"}),
    ("text/x-libsvm", "text/libsvm", {}),
    ("APPLICATION/X-RECORDIO-PROTOBUF", "application/x-recordio-protobuf", {}),
    ('text/csv; LABEL_SIZE="2"', "text/csv", {"label_size": "2"}),
    ("", "application/json", {}),
    (None, "application/json", {}),
])
def test_parse_content_type(raw, mime, params):
    ct = parse_content_type(raw)
    assert (ct.mime, dict(ct.params)) == (mime, params)


def test_content_type_helpers():
    ct = parse_content_type("application/json; verbose=True; label_size=3")
    assert ct.flag("verbose") and ct.int_param("label_size", 1) == 3 and ct.int_param("x", 7) == 7
    assert str(ct) == "application/json; verbose=True; label_size=3"
    with pytest.raises(DataFormatError, match="label_size='one' must be an integer"):
        parse_content_type("text/csv;label_size=one").int_param("label_size", 1)


def test_tables_cover_every_format():
    assert set(READERS) == {"text/csv", "text/libsvm", "application/x-recordio-protobuf",
                            "application/json", "application/jsonlines"}
    assert set(WRITERS) == {"text/csv", "application/x-recordio-protobuf", "application/json",
                            "application/jsonlines"}


@pytest.mark.parametrize("accept, expected", [
    (None, "application/json"), ("*/*", "application/json"), ("", "application/json"),
    ("text/csv", "text/csv"), ("application/jsonlines", "application/jsonlines"),
    ("application/x-recordio-protobuf, application/json", "application/x-recordio-protobuf"),
    ("image/png, text/csv", "text/csv"),
    ("text/csv;q=0.5, application/json", "application/json"),
    ("text/*", "text/csv"),
])
def test_choose_accept(accept, expected):
    assert choose_accept(accept).mime == expected


def test_choose_accept_keeps_parameters_and_honours_supported():
    assert choose_accept("application/json; verbose=true").flag("verbose")
    assert choose_accept(None, supported=["text/csv"], default="text/csv").mime == "text/csv"
    with pytest.raises(UnsupportedContentTypeError, match="Unsupported Accept type 'text/csv'; supported: application/json"):
        choose_accept("text/csv", supported=["application/json"])
    assert [c.mime for c in parse_accept("a/b;q=0.1, c/d")] == ["c/d", "a/b"]


def test_unsupported_content_type_lists_what_is():
    with pytest.raises(UnsupportedContentTypeError) as err:
        decode_request(b"1,2", "text/csv", supported=["application/json",
                                                    "application/x-recordio-protobuf"])
    assert str(err.value) == ("Unsupported content type 'text/csv'; supported: application/json, "
                              "application/x-recordio-protobuf")
    assert isinstance(err.value, DataFormatError)


# ---------------------------------------------------------------------------------------------
# CSV


def test_csv_training_label_first_and_batches():
    body = "".join(f"{i % 2},{i}.5,{i * 2}\n" for i in range(25)).encode()
    batches = list(read_batches(io.BytesIO(body), "text/csv", batch_size=10))
    assert [len(b) for b in batches] == [10, 10, 5]
    first = batches[0]
    assert first.features.dtype == np.float32 and first.features.shape == (10, 2)
    assert first.labels.tolist() == [0, 1] * 5
    assert first.features[3].tolist() == [3.5, 6.0]


def test_csv_label_size_from_the_content_type_and_for_inference():
    body = b"1,2,3\n4,5,6\n"
    unlabelled = one(read_batches(body, "text/csv;label_size=0"))
    assert unlabelled.labels is None and unlabelled.features.shape == (2, 3)
    two = one(read_batches(body, "text/csv; label_size=2"))
    assert two.labels.tolist() == [[1, 2], [4, 5]] and two.features.tolist() == [[3], [6]]
    request = decode_request(body, "text/csv")  # inference requests carry no label
    assert request.labels is None and request.features.shape == (2, 3)


def test_csv_weights_missing_values_crlf_and_no_trailing_newline():
    b = one(read_csv(b"1,0.5,7,8\r\n0,2,9,\r\n\r\n1,1,,3", csv_weights=True, allow_missing=True))
    assert b.labels.tolist() == [1, 0, 1] and b.weights.tolist() == [0.5, 2, 1]
    assert np.isnan(b.features[1, 1]) and np.isnan(b.features[2, 0])
    assert b.features[0].tolist() == [7, 8]


@pytest.mark.parametrize("body, message", [
    (b"label,x1\n1,2\n", r"line 1, column 1: 'label' is not a number. CSV input must not have a header row."),
    (b"1,2,3\n4,5\n", "line 2 has 2 columns but the lines before it have 3"),
    (b"1,2\n\n3,,4\n", r"line 3 has 3 columns"),
    (b"1,2,3\n3,,4\n", r"line 2, column 2: empty value; every field must be a number"),
    (b'1,"2"\n', "line 1, column 2: '\"2\"' is not a number. Quoted fields are not supported."),
    (b"1\n2\n", r"line 1: 1 column\(s\) but the first 1 are label columns, so no features remain; "
                r"for unlabelled data use content type 'text/csv;label_size=0'"),
    (b"1,2\n\xff\xfe\n", "line 2: not UTF-8 text"),
])
def test_csv_errors_name_the_line(body, message):
    with pytest.raises(DataFormatError, match=message):
        list(read_batches(body, "text/csv"))


def test_csv_ragged_rows_across_batches_name_the_absolute_line():
    body = b"1,2,3\n" * 5 + b"1,2\n"
    with pytest.raises(DataFormatError, match="line 6 has 2 columns but the lines before it have 3"):
        list(read_csv(body, batch_size=2))


def test_csv_writer():
    body, ctype = encode_response({"closest_cluster": np.array([1, 0], np.float32),
                                   "distance_to_cluster": np.array([3.0, 0.4], np.float32)}, "text/csv")
    assert (body, ctype) == (b"1.0,3.0\n0.0,0.4\n", "text/csv")
    body, _ = encode_response({"projection": np.array([[0.5, -1], [2, 3]], np.float32)}, "text/csv")
    assert body == b"0.5,-1.0\n2.0,3.0\n"


# ---------------------------------------------------------------------------------------------
# libsvm


def test_libsvm_indices_are_taken_as_given_like_xgboost():
    b = one(read_batches(b"1 1:0.5 3:2\n0 0:2 2:1.5\n", "text/libsvm"))
    assert scipy.sparse.isspmatrix_csr(b.features) and b.features.shape == (2, 4)
    assert b.features.toarray().tolist() == [[0, 0.5, 0, 2], [2, 0, 1.5, 0]]
    assert b.labels.tolist() == [1, 0] and b.weights is None


def test_libsvm_one_based_weights_qid_tabs_and_num_features():
    b = one(read_libsvm(b"1:2\tqid:1 1:0.5 3:2\n0 2:1.5\n", indexing=1, num_features=5))
    assert b.features.shape == (2, 5)
    assert b.features.toarray().tolist() == [[0.5, 0, 2, 0, 0], [0, 1.5, 0, 0, 0]]
    assert b.labels.tolist() == [1, 0] and b.weights.tolist() == [2, 1]


def test_libsvm_inference_lines_with_or_without_a_label():
    b = decode_request(b"1 0:1 3:2.5\n0:0.5 1:1\n", "text/x-libsvm")
    assert b.labels is None
    assert b.features.toarray().tolist() == [[1, 0, 0, 2.5], [0.5, 1, 0, 0]]


@pytest.mark.parametrize("body, options, message", [
    (b"1 2:x\n", {}, r"line 1: '2:x': expected an integer index and a number"),
    (b"1 3:1\n0 4\n", {}, r"line 2: '4' is not 'index:value'"),
    (b"yes 1:1\n", {}, r"line 1: label 'yes' is not a number"),
    (b"1 1:1\n1 9:1\n", {"num_features": 5}, r"line 2: feature index 9 is out of range \(allowed: 0..4\)"),
    (b"1 0:1\n", {"indexing": 1}, r"line 1: feature index 0 is out of range \(allowed: >= 1; indices are read as 1-based\)"),
])
def test_libsvm_errors_name_the_line(body, options, message):
    with pytest.raises(DataFormatError, match=message):
        list(read_libsvm(body, **options))


# ---------------------------------------------------------------------------------------------
# JSON and JSON Lines


@pytest.mark.parametrize("doc", [
    {"instances": [{"features": [1, 2, 3]}, {"features": [4, 5, 6]}]},
    {"instances": [{"data": {"features": {"values": [1, 2, 3]}}},
                   {"data": {"features": {"values": [4, 5, 6]}}}]},
    {"instances": [[1, 2, 3], [4, 5, 6]]},
    [[1, 2, 3], [4, 5, 6]],
    [{"features": [1, 2, 3]}, {"values": [4, 5, 6]}],
])
def test_json_dense_forms(doc):
    b = decode_request(json.dumps(doc).encode(), "application/json")
    assert b.features.dtype == np.float32 and b.features.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_json_single_vector_and_single_instance():
    assert decode_request(b"[1.5, 2]", "application/json").features.tolist() == [[1.5, 2]]
    assert decode_request(b'{"features": [7]}', "application/json").features.tolist() == [[7]]


def test_json_sparse_instances_give_csr():
    doc = {"instances": [
        {"data": {"features": {"keys": [1, 3], "values": [0.5, 2], "shape": [5]}}},
        {"features": [1, 0, 0, 0, 0]},
        {"data": {"features": {"keys": [], "values": [], "shape": [5]}}},
    ]}
    b = decode_request(json.dumps(doc), "application/json")
    assert scipy.sparse.isspmatrix_csr(b.features) and b.features.shape == (3, 5)
    assert b.features.toarray().tolist() == [[0, 0.5, 0, 2, 0], [1, 0, 0, 0, 0], [0] * 5]


@pytest.mark.parametrize("body, message", [
    (b"{nope", "request body: not valid JSON"),
    (b'{"instances": [{"features": [1, "a"]}]}', r"instances\[0\].features: expected a list of numbers"),
    (b'{"instances": [{"feature": [1]}]}', r"instances\[0\]: an instance needs 'features' or 'data' \(found keys: feature\)"),
    (b'{"instances": [[1, 2], [3]]}', "instance 1 has 1 features but instance 0 has 2"),
    (b'{"instances": [{"data": {"features": {"keys": [1], "values": [1]}}}]}', "need a 'shape'"),
    (b'{"instances": [{"data": {"features": {"keys": [9], "values": [1], "shape": [3]}}}]}', r"keys: every key must be an integer in 0..2"),
    (b'{"instances": []}', "no instances"),
])
def test_json_errors_say_where(body, message):
    with pytest.raises(DataFormatError, match=message):
        decode_request(body, "application/json")


def test_jsonlines_requests_and_streaming():
    body = b'{"features": [1, 2]}\n{"data": {"features": {"values": [3, 4]}}}\n\n[5, 6]\n'
    assert decode_request(body, "application/jsonlines").features.tolist() == [[1, 2], [3, 4], [5, 6]]
    batches = list(read_batches(io.BytesIO(body * 3), "application/jsonlines", batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 1]
    with pytest.raises(DataFormatError, match="line 2: not valid JSON"):
        decode_request(b'[1]\n{"features": [1,\n', "application/jsonlines")


def test_json_and_jsonlines_responses():
    cols = {"closest_cluster": np.array([1, 0], np.float32),
            "distance_to_cluster": np.array([3.0, 0.4], np.float32)}
    body, ctype = encode_response(cols, "application/json")
    assert ctype == "application/json"
    assert json.loads(body) == {"predictions": [{"closest_cluster": 1.0, "distance_to_cluster": 3.0},
                                                {"closest_cluster": 0.0, "distance_to_cluster": 0.4}]}
    assert b"0.4000000059604645" not in body  # float32 values in their shortest form
    body, ctype = encode_response(cols, "application/jsonlines")
    assert body.decode().splitlines() == ['{"closest_cluster": 1.0, "distance_to_cluster": 3.0}',
                                          '{"closest_cluster": 0.0, "distance_to_cluster": 0.4}']
    body, _ = encode_response({"projection": np.array([[1, 2]], np.float32)}, None,
                              json_key="projections")
    assert json.loads(body) == {"projections": [{"projection": [1.0, 2.0]}]}
    body, _ = encode_response({"score": np.array([0.25]), "predicted_label": np.array([1])}, "*/*")
    assert json.loads(body) == {"predictions": [{"score": 0.25, "predicted_label": 1}]}


def test_recordio_response_is_float32_label_map():
    body, ctype = encode_response({"score": np.array([0.5, 1.0]), "predicted_label": np.array([1, 0])},
                                  "application/x-recordio-protobuf")
    assert ctype == "application/x-recordio-protobuf"
    recs = read_records(io.BytesIO(body))
    assert recs[0].label["predicted_label"].values.dtype == np.float32
    assert [(r.label["score"].values[0], r.label["predicted_label"].values[0]) for r in recs] == [
        (0.5, 1.0), (1.0, 0.0)]


def test_recordio_request_through_the_table():
    from algorithms.io import encode_records
    body = encode_records(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert decode_request(body, "application/x-recordio-protobuf").features.tolist() == [
        [0, 1, 2], [3, 4, 5]]
