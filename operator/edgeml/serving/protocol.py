"""The Open Inference Protocol v2 (KServe v2) REST bodies: parse, validate, encode.

Pure functions over bytes and numpy arrays, no I/O. Every malformed request becomes a
`RequestError` with an HTTP status and a sentence the caller can act on; nothing here
may raise anything else for bad input.

Supported: JSON tensors (`data` flat or nested, row-major), and the binary tensor data
extension tritonclient uses by default (`Inference-Header-Content-Length`, per-tensor
`parameters.binary_data_size`, outputs requested with `parameters.binary_data`).
Numeric datatypes are accepted for numeric model inputs and cast to the model's type.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson

NUMERIC_DATATYPES: dict[str, np.dtype[Any]] = {
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
}
KNOWN_DATATYPES = {*NUMERIC_DATATYPES, "BOOL", "BYTES"}

ORT_DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}

_NUMPY_OPTION = orjson.OPT_SERIALIZE_NUMPY
_ALL = np.logical_and.reduce


class RequestError(Exception):
    """A request the server refuses: the HTTP status and a one-sentence reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output as the protocol describes it (-1 for a free dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def metadata(self) -> dict[str, Any]:
        """The tensor's entry in model metadata."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


class InferRequest(NamedTuple):
    """A validated inference request: arrays ready for the session, and what to return.

    A NamedTuple, not a frozen dataclass: made once per request, and a frozen dataclass's
    `__init__` sets each field through `object.__setattr__`."""

    id: str | None
    inputs: dict[str, npt.NDArray[Any]]
    rows: int
    outputs: tuple[str, ...] | None  # None: every output
    binary_outputs: frozenset[str]


def _shape_text(shape: Any) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_json_body(body: bytes | memoryview) -> Any:
    """The JSON document of a request body, or a 400 saying why it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"the request body is not valid JSON: {exc}") from None


def parse_infer_request(
    body: bytes,
    inputs: dict[str, TensorSpec],
    output_names: tuple[str, ...],
    dtypes: dict[str, np.dtype[Any]],
    header_length: int | None = None,
) -> InferRequest:
    """Validate an infer request body against the model's inputs and outputs.

    `dtypes` maps each model input to the numpy type the session wants; `header_length`
    is the Inference-Header-Content-Length header (binary tensor data follows the JSON).
    """
    view = memoryview(body)
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise RequestError(
                400,
                f"Inference-Header-Content-Length is {header_length} but the body has "
                f"{len(body)} bytes",
            )
        document = parse_json_body(view[:header_length])
        binary = view[header_length:]
    else:
        document = parse_json_body(view)
        binary = view[len(body) :]
    if not isinstance(document, dict):
        raise RequestError(400, "the request body must be a JSON object with an 'inputs' list")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError(400, "'id' must be a string")
    raw_inputs = document.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise RequestError(400, "'inputs' must be a non-empty list of tensors")

    arrays: dict[str, npt.NDArray[Any]] = {}
    offset = 0
    rows = -1
    for raw in raw_inputs:
        array, used = _parse_input(raw, inputs, dtypes, binary, offset)
        offset += used
        name = raw["name"]
        if name in arrays:
            raise RequestError(400, f"input '{name}' is given twice")
        arrays[name] = array
        batch = array.shape[0] if array.ndim else 1
        if rows not in (-1, batch):
            raise RequestError(400, "the inputs disagree on the number of rows")
        rows = batch
    if offset != len(binary):
        raise RequestError(
            400, f"the body has {len(binary) - offset} bytes of binary data no input claims"
        )
    if len(arrays) != len(inputs):  # each is a model input, given once (checked above)
        missing = [name for name in inputs if name not in arrays]
        raise RequestError(400, f"missing input '{missing[0]}'; the model needs {_names(inputs)}")
    if rows == 0:
        raise RequestError(400, "the request has no rows")

    outputs, binary_outputs = _parse_outputs(document, output_names)
    return InferRequest(request_id, arrays, rows, outputs, binary_outputs)


def _names(specs: dict[str, TensorSpec] | tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in specs)


def _parse_input(
    raw: Any,
    inputs: dict[str, TensorSpec],
    dtypes: dict[str, np.dtype[Any]],
    binary: memoryview,
    offset: int,
) -> tuple[npt.NDArray[Any], int]:
    """One input tensor as the array the session wants, and the binary bytes it used."""
    if not isinstance(raw, dict):
        raise RequestError(400, "each input must be an object with name, shape, datatype, data")
    name = raw.get("name")
    if not isinstance(name, str):
        raise RequestError(400, "an input has no 'name'")
    spec = inputs.get(name)
    if spec is None:
        raise RequestError(400, f"unknown input '{name}'; the model's inputs are {_names(inputs)}")
    shape = raw.get("shape")
    # One pass over the shape: its element count, and whether each is a whole number
    # (`type is int` refuses bool, an int subclass) that the model's shape allows.
    count, fits = 1, isinstance(shape, list) and len(shape) == len(spec.shape)
    for i, dim in enumerate(shape if isinstance(shape, list) else (None,)):
        if type(dim) is not int or dim < 0:
            raise RequestError(
                400, f"input '{name}' needs 'shape', a list of non-negative integers"
            )
        count *= dim
        fits = fits and spec.shape[i] in (-1, dim)
    datatype = raw.get("datatype")
    if not isinstance(datatype, str) or datatype not in KNOWN_DATATYPES:
        raise RequestError(
            400,
            f"input '{name}' has datatype {datatype!r}; use one of "
            + ", ".join(sorted(KNOWN_DATATYPES)),
        )
    source = NUMERIC_DATATYPES.get(datatype)
    if source is None:
        raise RequestError(
            400,
            f"input '{name}' has datatype {datatype}; the model expects {spec.datatype} "
            "(numeric datatypes are cast)",
        )
    if not fits:
        raise RequestError(
            400,
            f"input '{name}' has shape {_shape_text(shape)}; the model expects "
            f"{_shape_text(spec.shape)} (-1 is any size)",
        )

    used = 0
    parameters = raw.get("parameters")
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if not _is_int(size) or size < 0 or offset + size > len(binary):
            raise RequestError(
                400, f"input '{name}' claims binary_data_size {size!r} beyond the body"
            )
        if size != count * source.itemsize:
            raise RequestError(
                400,
                f"input '{name}' has {size} bytes of binary data; shape {_shape_text(shape)} "
                f"of {datatype} needs {count * source.itemsize}",
            )
        array = np.frombuffer(binary[offset : offset + size], dtype=source)
        used = size
    else:
        data = raw.get("data")
        if not isinstance(data, list):
            raise RequestError(400, f"input '{name}' needs 'data', a list (flat or nested)")
        array = _array_from_json(name, data, datatype, source, dtypes[name])
    if array.size != count:
        raise RequestError(
            400,
            f"input '{name}' has {array.size} values; shape {_shape_text(shape)} needs {count}",
        )
    target = dtypes[name]
    if array.dtype != target:
        array = array.astype(target)
    # The ufuncs themselves: ndarray.all() goes through a Python wrapper (~1 µs a request).
    if array.dtype.kind == "f" and not _ALL(np.isfinite(array), axis=None):
        raise RequestError(400, f"input '{name}' holds null, NaN or infinite values")
    return array.reshape(shape), used


def _array_from_json(
    name: str, data: list[Any], datatype: str, source: np.dtype[Any], target: np.dtype[Any]
) -> npt.NDArray[Any]:
    try:
        if source.kind == "f":
            # Straight to the model's float type: one conversion, no intermediate copy.
            return np.asarray(data, dtype=target if target.kind == "f" else source)
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        raise RequestError(
            400,
            f"input '{name}' data is not {datatype} numbers (flat, or nested lists of one shape)",
        ) from None
    if array.size and array.dtype.kind not in "iu":
        raise RequestError(400, f"input '{name}' has datatype {datatype} but non-integer data")
    limits = np.iinfo(source)
    if array.size and (array.min() < limits.min or array.max() > limits.max):
        raise RequestError(400, f"input '{name}' data does not fit {datatype}")
    return array.astype(source)


def _parse_outputs(
    document: dict[str, Any], output_names: tuple[str, ...]
) -> tuple[tuple[str, ...] | None, frozenset[str]]:
    parameters = document.get("parameters")
    all_binary = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    raw_outputs = document.get("outputs")
    if raw_outputs is None:
        return None, frozenset(output_names if all_binary else ())
    if not isinstance(raw_outputs, list):
        raise RequestError(400, "'outputs' must be a list of objects with a 'name'")
    names: list[str] = []
    binary: set[str] = set()
    for raw in raw_outputs:
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str):
            raise RequestError(400, "each requested output needs a 'name'")
        if name not in output_names:
            raise RequestError(
                400, f"unknown output '{name}'; the model's outputs are {_names(output_names)}"
            )
        names.append(name)
        output_parameters = raw.get("parameters")
        wanted = (
            output_parameters.get("binary_data") if isinstance(output_parameters, dict) else None
        )
        if wanted is True or (wanted is None and all_binary):
            binary.add(name)
    return tuple(names), frozenset(binary)


def encode_infer_response(
    model_name: str,
    model_version: str,
    request_id: str,
    outputs: list[tuple[str, str, npt.NDArray[Any]]],
    binary_outputs: frozenset[str] = frozenset(),
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary data follows it.

    `outputs` are (name, datatype, array) in the order to return them.
    """
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, datatype, array in outputs:
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if name in binary_outputs:
            raw = _binary(array, datatype)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif array.dtype.kind == "O":
            entry["data"] = [_text(v) for v in array.ravel().tolist()]
        else:
            # orjson writes numpy arrays natively: no Python list of floats per response.
            entry["data"] = np.ascontiguousarray(array).ravel()
        entries.append(entry)
    header = orjson.dumps(
        {"model_name": model_name, "model_version": model_version, "id": request_id,
         "outputs": entries},
        option=_NUMPY_OPTION,
    )  # fmt: skip
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _binary(array: npt.NDArray[Any], datatype: str) -> bytes:
    if datatype != "BYTES":
        return np.ascontiguousarray(array).tobytes()
    parts: list[bytes] = []
    for value in array.ravel().tolist():
        raw = value if isinstance(value, bytes) else str(value).encode()
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


def encode_error(message: str) -> bytes:
    """The body of an error response."""
    return orjson.dumps({"error": message})
