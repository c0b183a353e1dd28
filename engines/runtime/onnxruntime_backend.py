"""ONNX Runtime on the CPU: the runtime of every machine without an NVIDIA GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.manifest import ModelManifest
from engines.runtime.base import InferenceSession, TensorSpec

# ONNX Runtime names element types "tensor(float)"; numpy names them float32.
_ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


SPINNING_KEY = "session.intra_op.allow_spinning"


class OnnxRuntimeSession(InferenceSession):
    """CPU execution provider, full graph optimisation, a configured thread count."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, manifest: ModelManifest | None = None,
                 threads: int = 2):
        super().__init__(onnx_path, manifest)
        import onnxruntime as ort

        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads      # the station shares cores with capture
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads must sleep, not spin: the station runs several sessions one
        # after another (segmenter, tray scorer, item scorer), and on 2 cores a finished
        # session's spinning threads slowed the next one by 1.6× (48 → 79 ms measured).
        options.add_session_config_entry(SPINNING_KEY, "0")
        self.session_options = options
        self.threads = threads
        self._session = ort.InferenceSession(str(self.onnx_path), sess_options=options,
                                             providers=["CPUExecutionProvider"])
        self._inputs = tuple(_spec(arg) for arg in self._session.get_inputs())
        self._outputs = tuple(_spec(arg) for arg in self._session.get_outputs())

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    @property
    def max_batch(self) -> int | None:
        fixed = [s.shape[0] for s in self._inputs if s.shape and not s.has_dynamic_batch]
        return min(fixed) if fixed else None

    @property
    def providers(self) -> list[str]:
        return self._session.get_providers()

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._session is None:
            raise RuntimeError(f"{self.model_name}: session is closed")
        names = [spec.name for spec in self._outputs]
        return dict(zip(names, self._session.run(names, feeds)))

    def close(self) -> None:
        self._session = None


def _spec(arg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in arg.shape)  # None: any size
    if arg.type not in _ORT_DTYPES:
        raise TypeError(f"tensor {arg.name!r} has unsupported type {arg.type}")
    return TensorSpec(name=arg.name, shape=shape, dtype=np.dtype(_ORT_DTYPES[arg.type]))
