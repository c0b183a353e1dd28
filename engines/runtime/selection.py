"""Which runtime this machine can use, and why.

TensorRT needs three things: the ``tensorrt`` package, ``pycuda`` and a CUDA device.
The probe imports lazily and never creates a CUDA context, so asking is cheap and safe
on a machine with none of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import NamedTuple

RUNTIMES = ("auto", "tensorrt", "onnxruntime")
GPU_EXTRA_HINT = ("install the `gpu` extra on a machine with an NVIDIA GPU "
                  "(pip install --extra-index-url https://pypi.nvidia.com "
                  "'damage-station[gpu]'), or configure runtime: onnxruntime")


class RuntimeUnavailable(RuntimeError):
    """A runtime was forced by configuration but this machine cannot provide it."""


@dataclass(frozen=True)
class GpuProbe:
    """What the TensorRT probe found; ``missing`` is None when everything is there."""

    missing: str | None
    trt_version: str | None = None
    gpu_name: str | None = None
    compute_capability: tuple[int, int] | None = None
    device_index: int = 0


class RuntimeChoice(NamedTuple):
    name: str
    reason: str

    def log_line(self) -> str:
        if self.name == "tensorrt":
            return f"runtime: tensorrt ({self.reason})"
        return f"runtime: onnxruntime (reason: {self.reason})"


def probe_tensorrt(device_index: int = 0) -> GpuProbe:
    """Look for tensorrt, pycuda and a CUDA device, in that order; stop at the first gap."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        return GpuProbe(missing="tensorrt not installed")
    version = str(getattr(trt, "__version__", "unknown"))
    try:
        cuda = importlib.import_module("pycuda.driver")
    except ImportError:
        return GpuProbe(missing="pycuda not installed", trt_version=version)
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as exc:  # pycuda.driver.Error, or a broken driver install
        return GpuProbe(missing=f"CUDA driver not usable ({exc})", trt_version=version)
    if count <= device_index:
        return GpuProbe(missing=f"no CUDA device (found {count})", trt_version=version)
    device = cuda.Device(device_index)
    return GpuProbe(missing=None, trt_version=version, gpu_name=str(device.name()),
                    compute_capability=tuple(device.compute_capability()),
                    device_index=device_index)


def select_runtime(requested: str = "auto", probe: GpuProbe | None = None) -> RuntimeChoice:
    """TensorRT when it can run here, else ONNX Runtime; forcing either is honoured.

    Raises ``RuntimeUnavailable`` when tensorrt is forced but something is missing,
    naming what and how to fix it.
    """
    if requested not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {requested!r}")
    if requested == "onnxruntime":
        return RuntimeChoice("onnxruntime", "forced by configuration")
    probe = probe if probe is not None else probe_tensorrt()
    if probe.missing is None:
        return RuntimeChoice("tensorrt", f"tensorrt {probe.trt_version}, GPU {probe.gpu_name}")
    if requested == "tensorrt":
        raise RuntimeUnavailable(f"runtime 'tensorrt' was requested but {probe.missing}; "
                                 f"{GPU_EXTRA_HINT}")
    return RuntimeChoice("onnxruntime", probe.missing)
