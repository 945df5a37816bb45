"""The loaded ONNX model: an onnxruntime session set up for one-row requests on a small node.

Session options are chosen, not defaulted: onnxruntime's default uses every core and
spins its threads between runs, which on an edge node burns CPU the node's own work
needs and served fewer requests than one thread did (FACTS.md). A single-row tabular
model runs in about 10 µs, so one intra-op thread, no inter-op parallelism, and no
spinning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edgeml.serving.protocol import ORT_DATATYPES, TensorSpec

_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


def session_options(threads: int) -> ort.SessionOptions:
    """The session options `edgeml serve` runs with."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _spec(node: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in node.shape)
    return TensorSpec(node.name, ORT_DATATYPES.get(node.type, "BYTES"), shape)


@dataclass(frozen=True)
class ModelTask:
    """What the model predicts: its prediction output and whether it classifies."""

    prediction_output: str
    classification: bool


class LoadedModel:
    """An inference session over verified model bytes, with its protocol description."""

    def __init__(self, model_bytes: bytes, threads: int = 1) -> None:
        self.session = ort.InferenceSession(
            model_bytes, sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.inputs = {spec.name: spec for spec in map(_spec, self.session.get_inputs())}
        self.outputs = tuple(map(_spec, self.session.get_outputs()))
        self.output_names = tuple(o.name for o in self.outputs)
        self.output_datatypes = {o.name: o.datatype for o in self.outputs}
        self._output_list = list(self.output_names)  # run() wants a list; made once
        # The C++ session's run, without the Python wrapper's per-call checks of input
        # names and graph capture: protocol.py has validated the feeds already, and the
        # wrapper cost 7 µs of the server's ~60 µs per single-row request (measured in
        # the server under load). Its exceptions are the same (InvalidArgument, ...).
        native = getattr(self.session, "_sess", None)
        self._run = native.run if native is not None else self.session.run
        self._run_options = ort.RunOptions()
        self.dtypes: dict[str, np.dtype[Any]] = {
            node.name: np.dtype(_NUMPY_TYPES.get(node.type, np.float32))
            for node in self.session.get_inputs()
        }
        self.task = infer_task(self.output_names, self.output_datatypes)

    def run(self, feeds: dict[str, npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        """Every output, in `output_names` order."""
        result: list[npt.NDArray[Any]] = self._run(self._output_list, feeds, self._run_options)
        return result


def infer_task(names: tuple[str, ...], datatypes: dict[str, str]) -> ModelTask:
    """Classifier or regressor, from skl2onnx's output names (`label` + `probabilities`)."""
    if "label" in names:
        return ModelTask("label", classification=True)
    if "probabilities" in names or (names and datatypes[names[0]] in ("BYTES", "INT64")):
        return ModelTask(names[0], classification=True)
    return ModelTask(names[0], classification=False)
