"""OIP v2 request parsing and response encoding: every refusal is a 4xx with a reason."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import orjson
import pytest

from edgeml.serving.protocol import (
    RequestError,
    TensorSpec,
    encode_infer_response,
    parse_infer_request,
)

INPUTS = {"input": TensorSpec("input", "FP32", (-1, 3))}
DTYPES = {"input": np.dtype(np.float32)}
OUTPUTS = ("label", "probabilities")


def parse(document: Any, header_length: int | None = None, tail: bytes = b"") -> Any:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_infer_request(body + tail, INPUTS, OUTPUTS, DTYPES, header_length)


def tensor(**changes: Any) -> dict[str, Any]:
    return {"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3], **changes}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({}, "'inputs' must be a non-empty list"),
        ({"inputs": []}, "'inputs' must be a non-empty list"),
        ({"inputs": "x"}, "'inputs' must be a non-empty list"),
        ({"inputs": [1]}, "each input must be an object"),
        ({"inputs": [tensor(name=None)]}, "an input has no 'name'"),
        ({"inputs": [tensor(name="x")]}, "unknown input 'x'"),
        ({"inputs": [tensor(), tensor()]}, "given twice"),
        ({"inputs": [tensor(shape="1,3")]}, "needs 'shape'"),
        ({"inputs": [tensor(shape=[1, -3])]}, "needs 'shape'"),
        ({"inputs": [tensor(shape=[True, 3])]}, "needs 'shape'"),  # a bool is no size
        ({"inputs": [tensor(shape=[1, 3.0])]}, "needs 'shape'"),
        ({"inputs": [tensor(shape=[1, 3, "x"])]}, "needs 'shape'"),  # before the rank
        ({"inputs": [tensor(shape=[1, 4], data=[1, 2, 3, 4])]}, "has shape [1, 4]"),
        ({"inputs": [tensor(shape=[3], data=[1, 2, 3])]}, "has shape [3]"),
        ({"inputs": [tensor(shape=[2, 3])]}, "has 3 values; shape [2, 3] needs 6"),
        ({"inputs": [tensor(shape=[0, 3], data=[])]}, "no rows"),
        ({"inputs": [tensor(datatype="FP99")]}, "datatype 'FP99'"),
        ({"inputs": [tensor(datatype="BYTES", data=["a", "b", "c"])]}, "datatype BYTES"),
        ({"inputs": [tensor(datatype="BOOL")]}, "datatype BOOL"),
        ({"inputs": [tensor(data="1,2,3")]}, "needs 'data', a list"),
        ({"inputs": [tensor(data=["a", "b", "c"])]}, "is not FP32 numbers"),
        ({"inputs": [tensor(data=[[1, 2], [3]])]}, "is not FP32 numbers"),
        ({"inputs": [tensor(data=[1, None, 3])]}, "null, NaN or infinite"),
        ({"inputs": [tensor(data=[{"a": 1}, 2, 3])]}, "is not FP32 numbers"),
        ({"inputs": [tensor(datatype="INT64", data=[1.5, 2, 3])]}, "non-integer data"),
        ({"inputs": [tensor(datatype="INT8", data=[1000, 2, 3])]}, "does not fit INT8"),
        ({"inputs": [tensor()], "id": 5}, "'id' must be a string"),
        ({"inputs": [tensor()], "outputs": "label"}, "'outputs' must be a list"),
        ({"inputs": [tensor()], "outputs": [{"name": "nope"}]}, "unknown output 'nope'"),
        ({"inputs": [tensor()], "outputs": [{}]}, "needs a 'name'"),
        (
            {"inputs": [tensor(data=None, parameters={"binary_data_size": 12})]},
            "beyond the body",
        ),
    ],
)
def test_malformed_requests_are_refused_with_a_reason(document: Any, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse(document)
    assert caught.value.status == 400
    assert message in caught.value.message


def test_a_missing_input_is_named() -> None:
    inputs = {**INPUTS, "extra": TensorSpec("extra", "FP32", (-1, 1))}
    dtypes = {**DTYPES, "extra": np.dtype(np.float32)}
    body = json.dumps({"inputs": [tensor()]}).encode()
    with pytest.raises(RequestError, match="missing input 'extra'"):
        parse_infer_request(body, inputs, OUTPUTS, dtypes)


@pytest.mark.parametrize(
    ("data", "datatype"),
    [
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "FP32"),
        ([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "FP64"),
        ([1, 2, 3, 4, 5, 6], "INT64"),
        ([[1, 2, 3], [4, 5, 6]], "INT32"),
        ([[1, 2, 3, 4, 5, 6]], "UINT8"),  # nested differently, same count: row-major
    ],
)
def test_flat_nested_and_integer_data_become_float32_rows(data: Any, datatype: str) -> None:
    parsed = parse({"inputs": [tensor(shape=[2, 3], datatype=datatype, data=data)]})
    array = parsed.inputs["input"]
    assert array.dtype == np.float32
    assert array.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert parsed.rows == 2
    assert parsed.outputs is None


def test_binary_tensor_data_is_read_after_the_json_header() -> None:
    values = np.arange(6, dtype=np.float64).reshape(2, 3)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [2, 3],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": values.nbytes},
                }
            ],
            "outputs": [{"name": "label", "parameters": {"binary_data": True}}],
        }
    ).encode()
    parsed = parse(header, header_length=len(header), tail=values.tobytes())
    assert parsed.inputs["input"].tolist() == values.tolist()
    assert parsed.outputs == ("label",)
    assert parsed.binary_outputs == frozenset({"label"})


def test_binary_data_of_the_wrong_size_is_refused() -> None:
    header = json.dumps(
        {"inputs": [tensor(data=None, parameters={"binary_data_size": 8})]}
    ).encode()
    with pytest.raises(RequestError, match="needs 12"):
        parse(header, header_length=len(header), tail=b"\0" * 8)


def test_a_header_length_beyond_the_body_is_refused() -> None:
    with pytest.raises(RequestError, match="Inference-Header-Content-Length"):
        parse({"inputs": [tensor()]}, header_length=10_000)


def test_the_response_lists_requested_outputs_with_shapes_and_flat_data() -> None:
    body, header_length = encode_infer_response(
        "m",
        "3",
        "abc",
        [
            ("label", "INT64", np.array([1, 0], dtype=np.int64)),
            ("probabilities", "FP32", np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)),
        ],
    )
    assert header_length is None
    assert orjson.loads(body) == {
        "model_name": "m",
        "model_version": "3",
        "id": "abc",
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 0]},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [2, 2],
                "data": [0.25, 0.75, 0.5, 0.5],
            },
        ],
    }


def test_binary_outputs_follow_the_header_and_strings_are_length_prefixed() -> None:
    labels = np.array(["yes", "no"], dtype=object)
    body, header_length = encode_infer_response(
        "m", "1", "x", [("label", "BYTES", labels)], frozenset({"label"})
    )
    assert header_length is not None
    header = orjson.loads(body[:header_length])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 13}
    assert body[header_length:] == struct.pack("<I", 3) + b"yes" + struct.pack("<I", 2) + b"no"


def test_string_outputs_are_json_strings() -> None:
    body, _ = encode_infer_response(
        "m", "1", "x", [("label", "BYTES", np.array(["a", b"b"], dtype=object))]
    )
    assert orjson.loads(body)["outputs"][0]["data"] == ["a", "b"]
