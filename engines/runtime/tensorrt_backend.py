"""TensorRT on the local NVIDIA GPU, with pycuda for memory and the stream.

The engine comes from the ``EngineCache`` when a trusted one exists, else it is built
from the ONNX here (see ``engine_builder``) and stored. Execution uses the named-tensor
API: every I/O tensor gets a page-locked host buffer and a device buffer sized for the
largest batch, allocated once; each run copies in, ``execute_async_v3`` and copies out
on one CUDA stream, then synchronises.

``tensorrt`` and ``pycuda`` are imported when a session is created, never at module
import, so this module loads on machines without them.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.manifest import ModelError, ModelManifest
from engines.runtime.base import FeedError, InferenceSession, TensorSpec
from engines.runtime.engine_builder import EngineBuilder, build_flags
from engines.runtime.engine_cache import EngineCache, EngineKey

_log = logging.getLogger(__name__)


@dataclass
class _Binding:
    """One I/O tensor's buffers, sized for the profile's largest shape."""

    spec: TensorSpec
    is_input: bool
    host: np.ndarray           # flat, page-locked
    device: Any                # pycuda DeviceAllocation


class TensorRTSession(InferenceSession):
    """A TensorRT engine for one ONNX model on one GPU."""

    name = "tensorrt"

    def __init__(self, onnx_path: str | Path, manifest: ModelManifest,
                 engine_cache: EngineCache | str | Path, *, fp16: bool = True,
                 max_batch: int = 8, opt_batch: int = 1, workspace_mib: int = 2048,
                 device_index: int = 0, log: logging.Logger | None = None,
                 heartbeat_s: float = 10.0):
        super().__init__(onnx_path, manifest)
        import pycuda.driver as cuda
        import tensorrt as trt

        self._trt, self._cuda = trt, cuda
        self.log = log or _log
        self.cache = engine_cache if isinstance(engine_cache, EngineCache) \
            else EngineCache(engine_cache)
        self._lock = threading.Lock()
        self._bindings: dict[str, _Binding] = {}
        self._input_shapes: dict[str, tuple[int, ...]] = {}
        self._input_specs: tuple[TensorSpec, ...] = ()
        self._output_specs: tuple[TensorSpec, ...] = ()
        self._max_batch: int | None = None

        cuda.init()
        device = cuda.Device(device_index)
        self.gpu_name = str(device.name())
        # The primary context is the one TensorRT's CUDA runtime uses; pushing it around
        # every call lets any thread run the session.
        self._cuda_context = device.retain_primary_context()
        self._cuda_context.push()
        try:
            self._trt_logger = _make_trt_logger(trt, self.log)
            self._runtime = trt.Runtime(self._trt_logger)
            static_batch = _static_batch(manifest)
            batches = (static_batch,) * 3 if static_batch else (1, opt_batch, max_batch)
            capability = ".".join(str(v) for v in device.compute_capability())
            self.key = EngineKey(
                model_name=manifest.name, onnx_sha256=manifest.sha256,
                trt_version=str(trt.__version__), gpu_name=self.gpu_name,
                compute_capability=capability,
                flags=build_flags(trt, fp16=fp16, min_batch=batches[0], opt_batch=batches[1],
                                  max_batch=batches[2], workspace_mib=workspace_mib))
            self._builder = EngineBuilder(trt, self._trt_logger, self.cache, self.log,
                                          heartbeat_s=heartbeat_s)
            self._engine = self._load_or_build()
            self._context = self._engine.create_execution_context()
            self._stream = cuda.Stream()
            self._allocate_buffers()
        except BaseException:
            self._release()
            cuda.Context.pop()
            self._cuda_context.detach()
            self._cuda_context = None
            raise
        cuda.Context.pop()

    # -- description

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._input_specs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._output_specs

    @property
    def max_batch(self) -> int | None:
        return self._max_batch

    # -- engine

    def _load_or_build(self) -> Any:
        """A trusted cached engine, or a fresh build; a bad engine is never deserialized."""
        lookup = self.cache.lookup(self.key)
        if lookup.hit:
            engine = self._runtime.deserialize_cuda_engine(lookup.engine)
            if engine is not None:
                self.log.info("TensorRT engine for %s from cache (%s)", self.key.model_name,
                              lookup.path.name)
                return engine
            reason = "corrupt: TensorRT could not deserialize the cached engine"
        else:
            reason = lookup.reason
        with self.cache.build_lock(self.key):
            if not lookup.hit:  # another process may have built it while we waited
                waited = self.cache.lookup(self.key)
                engine = (self._runtime.deserialize_cuda_engine(waited.engine)
                          if waited.hit else None)
                if engine is not None:
                    return engine
            self.cache.discard(self.key)
            self.log.info("TensorRT engine for %s needs a build: %s", self.key.model_name,
                          reason)
            fixed_dims = {spec.name: spec.shape for spec in self.manifest.inputs}
            serialized = self._builder.build(self.onnx_path, self.key, fixed_dims)
            path = self.cache.store(self.key, serialized)
            self.log.info("stored TensorRT engine %s", path)
        engine = self._runtime.deserialize_cuda_engine(serialized)
        if engine is None:
            self.cache.discard(self.key)
            raise ModelError(self.onnx_path, "TensorRT could not deserialize the engine it "
                                             "just built")
        return engine

    def _allocate_buffers(self) -> None:
        """Page-locked host + device buffers for every I/O tensor, at the largest shapes."""
        trt, cuda, engine, context = self._trt, self._cuda, self._engine, self._context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        max_shapes: dict[str, tuple[int, ...]] = {}
        batch_limits = []
        for name in (n for n in names if is_input[n]):
            shape = tuple(engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                shape = tuple(engine.get_tensor_profile_shape(name, 0)[2])
                batch_limits.append(shape[0])
            elif shape:
                batch_limits.append(shape[0])
            if not context.set_input_shape(name, shape):
                raise ModelError(self.onnx_path, f"TensorRT rejected input {name!r} shape "
                                                 f"{list(shape)}")
            self._input_shapes[name] = shape
            max_shapes[name] = shape
        for name in (n for n in names if not is_input[n]):
            shape = tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ModelError(self.onnx_path, f"output {name!r} has a data-dependent shape "
                                                 f"{list(shape)}; not supported")
            max_shapes[name] = shape
        self._max_batch = min(batch_limits) if batch_limits else None
        for name in names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            declared = tuple(engine.get_tensor_shape(name))
            spec = TensorSpec(name, tuple(d if d >= 0 else None for d in declared), dtype)
            host = cuda.pagelocked_empty(math.prod(max_shapes[name]), dtype)
            device = cuda.mem_alloc(max(host.nbytes, 1))
            self._bindings[name] = _Binding(spec, is_input[name], host, device)
            context.set_tensor_address(name, int(device))
        self._input_specs = tuple(b.spec for b in self._bindings.values() if b.is_input)
        self._output_specs = tuple(b.spec for b in self._bindings.values() if not b.is_input)

    # -- execution

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        with self._lock:
            if self._engine is None:
                raise RuntimeError(f"{self.model_name}: session is closed")
            self._cuda_context.push()
            try:
                return self._run_on_stream(feeds)
            finally:
                cuda.Context.pop()

    def _run_on_stream(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda, context, stream = self._cuda, self._context, self._stream
        for name, array in feeds.items():
            binding = self._bindings[name]
            if self._input_shapes.get(name) != array.shape:
                if not context.set_input_shape(name, array.shape):
                    raise FeedError(f"{self.model_name}: TensorRT rejected input {name!r} "
                                    f"shape {list(array.shape)}")
                self._input_shapes[name] = array.shape
            staged = binding.host[:array.size]
            np.copyto(staged.reshape(array.shape), array)
            cuda.memcpy_htod_async(binding.device, staged, stream)
        if not context.execute_async_v3(stream.handle):
            raise RuntimeError(f"{self.model_name}: TensorRT execute_async_v3 failed")
        shapes = {}
        for name, binding in self._bindings.items():
            if binding.is_input:
                continue
            shapes[name] = tuple(context.get_tensor_shape(name))
            cuda.memcpy_dtoh_async(binding.host[:math.prod(shapes[name])], binding.device,
                                   stream)
        stream.synchronize()
        # Copies: the page-locked buffers are reused by the next run.
        return {name: self._bindings[name].host[:math.prod(shape)].reshape(shape).copy()
                for name, shape in shapes.items()}

    # -- life cycle

    def close(self) -> None:
        with self._lock:
            if getattr(self, "_cuda_context", None) is None:
                return
            self._cuda_context.push()
            try:
                self._release()
            finally:
                self._cuda.Context.pop()
            self._cuda_context.detach()
            self._cuda_context = None

    def _release(self) -> None:
        """Free device memory and TensorRT objects (with the CUDA context current)."""
        for binding in self._bindings.values():
            binding.device.free()
        self._bindings.clear()
        self._context = self._engine = self._stream = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _static_batch(manifest: ModelManifest) -> int | None:
    """The batch size when the model fixes it, None when the batch dim is symbolic."""
    batches = {spec.shape[0] for spec in manifest.inputs if spec.shape}
    fixed = [b for b in batches if isinstance(b, int)]
    return min(fixed) if fixed and len(fixed) == len(batches) else None


def _make_trt_logger(trt: Any, log: logging.Logger) -> Any:
    """TensorRT's messages into Python logging (warnings and up; verbose as DEBUG)."""
    levels = {"INTERNAL_ERROR": logging.CRITICAL, "ERROR": logging.ERROR,
              "WARNING": logging.WARNING, "INFO": logging.DEBUG, "VERBOSE": logging.DEBUG}

    class PythonLogging(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            name = getattr(severity, "name", str(severity)).rsplit(".", 1)[-1]
            log.log(levels.get(name, logging.INFO), "TensorRT: %s", msg)

    return PythonLogging()
