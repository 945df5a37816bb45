"""MLServer's fastest path for bench/serving.py: a custom runtime over onnxruntime.

One FP32 tensor in (NumpyCodec), the ONNX export's outputs out, a session with one
intra-op thread and no spinning, as `edgeml serve` runs it: what an MLServer user who
tunes for single-row latency would write, rather than mlserver-mlflow's per-column
pandas decoding. Loaded by MLServer from the model directory (`implementation:
mlserver_onnx.OnnxRuntime`, `parameters.uri`: the .onnx file); it runs in MLServer's
own venv (bench/serving_peers.sh), not the project's.
"""

from __future__ import annotations

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxRuntime(MLModel):
    """One ONNX session; one tensor in, every output out."""

    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        uri = self.settings.parameters.uri
        self._session = ort.InferenceSession(uri, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        tensor = NumpyCodec.decode_input(payload.inputs[0])
        results = self._session.run(None, {self._input: tensor})
        outputs = [
            NumpyCodec.encode_output(name=name, payload=value)
            for name, value in zip(self._outputs, results, strict=True)
            if hasattr(value, "dtype")  # skl2onnx's probabilities may be a map sequence
        ]
        return InferenceResponse(model_name=self.name, outputs=outputs)
