"""The onnxruntime session as the edge pods run it: one thread, no spinning.

Kept apart (importing only onnxruntime, lazily) so the profiling child process loads
nothing else, and measures the memory a serving process would need.
"""

from __future__ import annotations

from typing import Any

INPUT_NAME = "input"
"""The name of the exported model's single float32 input."""


def onnx_session(model: bytes | str) -> Any:
    """An onnxruntime session over model bytes or a path, on one thread, without spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
