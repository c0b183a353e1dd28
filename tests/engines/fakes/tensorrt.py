"""FAKE ``tensorrt`` for tests: NOT NVIDIA TensorRT, and it runs on no GPU.

TensorRT cannot be installed on machines without NVIDIA's package index, so CI checks
the station's TensorRT backend against this stand-in. It mirrors the slice of the
TensorRT 10 Python API the backend uses (Builder, network, OnnxParser, builder config,
optimization profile, timing cache, IProgressMonitor, Runtime, engine and execution
context with the named-tensor API) and is strict where TensorRT is: dynamic inputs need
a profile, execution needs every tensor address and input shape set, a blob that is not
an engine of this "version" deserializes to None.

"Engines" it builds are the ONNX bytes behind a small JSON header; executing one runs
the ONNX with ONNX Runtime on the bytes found in the fake pycuda device memory, so
outputs are real numbers. ``remove_weak_typing()`` turns a copy into "TensorRT 11":
no ``BuilderFlag.FP16``, no ``platform_has_fast_fp16``.

Every interesting call is appended to ``calls``. Load a fresh copy per test with
``tests.engines.fakes.install_fake_gpu``.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from typing import Any

import numpy as np

IS_FAKE = True
__version__ = "10.8.0.43"
PLATFORM_HAS_FAST_FP16 = True
BUILD_RETURNS_NONE = False      # make build_serialized_network fail, like a real build can
UNSUPPORTED_OPS: set[str] = set()
ENGINE_MAGIC = b"FAKE-TRT-ENGINE\0"

calls: list[tuple[str, Any]] = []


def _driver() -> Any:
    return sys.modules["pycuda.driver"]


def _require_context(what: str) -> None:
    _driver().require_context(what)


def remove_weak_typing() -> None:
    """Make this copy look like TensorRT 11: weak typing APIs are gone."""
    del BuilderFlag.FP16
    del Builder.platform_has_fast_fp16


class _Value:
    """An enum member: has ``name``, compares by identity, ``int()`` gives its value."""

    def __init__(self, owner: str, name: str, value: int):
        self.name, self._value, self._owner = name, value, owner

    def __int__(self) -> int:
        return self._value

    def __repr__(self) -> str:
        return f"<{self._owner}.{self.name}: {self._value} (fake)>"


class ILogger:
    class Severity:
        INTERNAL_ERROR = _Value("Severity", "INTERNAL_ERROR", 0)
        ERROR = _Value("Severity", "ERROR", 1)
        WARNING = _Value("Severity", "WARNING", 2)
        INFO = _Value("Severity", "INFO", 3)
        VERBOSE = _Value("Severity", "VERBOSE", 4)

    def __init__(self) -> None:
        pass

    def log(self, severity: Any, msg: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Logger(ILogger):
    WARNING = ILogger.Severity.WARNING

    def __init__(self, min_severity: Any = None) -> None:
        super().__init__()

    def log(self, severity: Any, msg: str) -> None:
        pass


class DataType:
    FLOAT = _Value("DataType", "FLOAT", 0)
    HALF = _Value("DataType", "HALF", 1)
    INT8 = _Value("DataType", "INT8", 2)
    INT32 = _Value("DataType", "INT32", 3)
    BOOL = _Value("DataType", "BOOL", 4)
    UINT8 = _Value("DataType", "UINT8", 5)
    INT64 = _Value("DataType", "INT64", 7)


_NUMPY = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32,
          "BOOL": np.bool_, "UINT8": np.uint8, "INT64": np.int64}
_FROM_ONNX = {1: DataType.FLOAT, 10: DataType.HALF, 3: DataType.INT8, 6: DataType.INT32,
              9: DataType.BOOL, 2: DataType.UINT8, 7: DataType.INT64}


def nptype(data_type: _Value) -> type:
    return _NUMPY[data_type.name]


class TensorIOMode:
    NONE = _Value("TensorIOMode", "NONE", 0)
    INPUT = _Value("TensorIOMode", "INPUT", 1)
    OUTPUT = _Value("TensorIOMode", "OUTPUT", 2)


class NetworkDefinitionCreationFlag:
    EXPLICIT_BATCH = _Value("NetworkDefinitionCreationFlag", "EXPLICIT_BATCH", 0)
    STRONGLY_TYPED = _Value("NetworkDefinitionCreationFlag", "STRONGLY_TYPED", 1)


class BuilderFlag:
    FP16 = _Value("BuilderFlag", "FP16", 0)
    TF32 = _Value("BuilderFlag", "TF32", 7)


class MemoryPoolType:
    WORKSPACE = _Value("MemoryPoolType", "WORKSPACE", 0)


class IProgressMonitor:
    def __init__(self) -> None:
        pass


# --------------------------------------------------------------------------- building

class ITensor:
    def __init__(self, name: str, shape: tuple[int, ...], dtype: _Value):
        self.name, self.shape, self.dtype = name, shape, dtype


class INetworkDefinition:
    def __init__(self, flags: int):
        self.flags = flags
        self.onnx_bytes: bytes | None = None
        self._inputs: list[ITensor] = []

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    def get_input(self, index: int) -> ITensor:
        return self._inputs[index]


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: ILogger):
        self.network = network
        self._errors: list[str] = []

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> str:
        return self._errors[index]

    def parse_from_file(self, path: str) -> bool:
        import onnx

        calls.append(("parse_from_file", path))
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            model = onnx.load_from_string(data)
        except Exception as exc:
            self._errors.append(f"fake parser: not an ONNX model ({exc})")
            return False
        unsupported = sorted({n.op_type for n in model.graph.node} & UNSUPPORTED_OPS)
        if unsupported:
            self._errors.append(f"fake parser: no importer for {unsupported}")
            return False
        initialisers = {i.name for i in model.graph.initializer}
        for value in model.graph.input:
            if value.name not in initialisers:
                self.network._inputs.append(ITensor(value.name, _onnx_shape(value),
                                                    _FROM_ONNX[value.type.tensor_type.elem_type]))
        self.network.onnx_bytes = data
        return True


class IOptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, name: str, min: Any, opt: Any, max: Any) -> None:
        shapes = tuple(tuple(int(d) for d in s) for s in (min, opt, max))
        if not all(a <= b <= c for a, b, c in zip(*shapes)):
            raise ValueError(f"fake profile: need min <= opt <= max for {name}, got {shapes}")
        self.shapes[name] = shapes


class ITimingCache:
    MAGIC = b"FAKETIMING"

    def __init__(self, data: bytes):
        if data and not data.startswith(self.MAGIC):
            raise RuntimeError("fake: timing cache data is not a timing cache")
        self.entries = int(data[len(self.MAGIC):] or 0) if data else 0

    def serialize(self) -> bytes:
        return self.MAGIC + str(self.entries).encode()


class IBuilderConfig:
    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.pool_limits: dict[str, int] = {}
        self.profiles: list[IOptimizationProfile] = []
        self.timing_cache: ITimingCache | None = None
        self.progress_monitor: Any = None

    def set_flag(self, flag: _Value) -> None:
        calls.append(("set_flag", flag.name))
        self.flags.add(flag.name)

    def get_flag(self, flag: _Value) -> bool:
        return flag.name in self.flags

    def set_memory_pool_limit(self, pool: _Value, size: int) -> None:
        self.pool_limits[pool.name] = int(size)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> ITimingCache:
        calls.append(("create_timing_cache", bytes(data)))
        return ITimingCache(bytes(data))

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self.timing_cache


class IHostMemory:
    def __init__(self, data: bytes):
        self._data = data

    @property
    def nbytes(self) -> int:
        return len(self._data)

    def __bytes__(self) -> bytes:
        return self._data


class Builder:
    def __init__(self, logger: ILogger):
        if not isinstance(logger, ILogger):
            raise TypeError("fake Builder needs an ILogger")
        self.logger = logger
        calls.append(("Builder", None))

    @property
    def platform_has_fast_fp16(self) -> bool:
        return PLATFORM_HAS_FAST_FP16

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        calls.append(("create_network", flags))
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition,
                                 config: IBuilderConfig) -> IHostMemory | None:
        _require_context("build_serialized_network")
        if network.onnx_bytes is None:
            raise RuntimeError("fake: network has no layers (was the ONNX parsed?)")
        profile = {}
        for tensor in network._inputs:
            if any(d < 0 for d in tensor.shape):
                found = [p.shapes[tensor.name] for p in config.profiles
                         if tensor.name in p.shapes]
                if not found:
                    self.logger.log(ILogger.Severity.ERROR,
                                    f"fake: dynamic input {tensor.name} has no profile")
                    return None
                profile[tensor.name] = found[0]
        strongly_typed = bool(network.flags & (1 << int(
            NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
        calls.append(("build_serialized_network",
                       {"flags": sorted(config.flags), "strongly_typed": strongly_typed}))
        monitor = config.progress_monitor
        if monitor is not None:
            monitor.phase_start("Building engine", None, 2)
            for step in range(2):
                monitor.step_complete("Building engine", step)
            monitor.phase_finish("Building engine")
        if BUILD_RETURNS_NONE:
            self.logger.log(ILogger.Severity.ERROR, "fake: build failed on purpose")
            return None
        if config.timing_cache is not None:
            config.timing_cache.entries += 1
        meta = {"trt_version": __version__, "profile": profile, "flags": sorted(config.flags),
                "strongly_typed": strongly_typed}
        header = json.dumps(meta).encode()
        return IHostMemory(ENGINE_MAGIC + struct.pack("<I", len(header)) + header
                           + network.onnx_bytes)


# --------------------------------------------------------------------------- running

class Runtime:
    def __init__(self, logger: ILogger):
        if not isinstance(logger, ILogger):
            raise TypeError("fake Runtime needs an ILogger")
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> "ICudaEngine | None":
        _require_context("deserialize_cuda_engine")
        data = bytes(data)
        calls.append(("deserialize_cuda_engine", hashlib.sha256(data).hexdigest()))
        if not data.startswith(ENGINE_MAGIC):
            self.logger.log(ILogger.Severity.ERROR, "fake: not a serialized engine")
            return None
        offset = len(ENGINE_MAGIC)
        (length,) = struct.unpack_from("<I", data, offset)
        meta = json.loads(data[offset + 4:offset + 4 + length])
        if meta["trt_version"] != __version__:
            self.logger.log(ILogger.Severity.ERROR, "fake: engine from another TensorRT")
            return None
        return ICudaEngine(meta, data[offset + 4 + length:])


class ICudaEngine:
    def __init__(self, meta: dict[str, Any], onnx_bytes: bytes):
        import onnx
        import onnxruntime

        self.meta = meta
        model = onnx.load_from_string(onnx_bytes)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.ort = onnxruntime.InferenceSession(onnx_bytes, sess_options=options,
                                                providers=["CPUExecutionProvider"])
        initialisers = {i.name for i in model.graph.initializer}
        self._tensors: dict[str, tuple[_Value, tuple[int, ...], _Value]] = {}
        for value in model.graph.input:
            if value.name not in initialisers:
                self._tensors[value.name] = (TensorIOMode.INPUT, _onnx_shape(value),
                                             _FROM_ONNX[value.type.tensor_type.elem_type])
        for value in model.graph.output:
            self._tensors[value.name] = (TensorIOMode.OUTPUT, _onnx_shape(value),
                                         _FROM_ONNX[value.type.tensor_type.elem_type])
        self._names = list(self._tensors)

    @property
    def num_io_tensors(self) -> int:
        return len(self._names)

    def get_tensor_name(self, index: int) -> str:
        return self._names[index]

    def get_tensor_mode(self, name: str) -> _Value:
        return self._tensors[name][0]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self._tensors[name][1]

    def get_tensor_dtype(self, name: str) -> _Value:
        return self._tensors[name][2]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> tuple:
        if profile_index != 0 or name not in self.meta["profile"]:
            raise RuntimeError(f"fake: no profile {profile_index} for {name}")
        return tuple(tuple(s) for s in self.meta["profile"][name])

    def create_execution_context(self) -> "IExecutionContext":
        _require_context("create_execution_context")
        return IExecutionContext(self)


class IExecutionContext:
    def __init__(self, engine: ICudaEngine):
        self.engine = engine
        self.input_shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name: str, shape: Any) -> bool:
        shape = tuple(int(d) for d in shape)
        declared = self.engine.get_tensor_shape(name)
        if len(shape) != len(declared) or any(d >= 0 and d != s for d, s in zip(declared, shape)):
            return False
        if name in self.engine.meta["profile"]:
            low, _, high = self.engine.meta["profile"][name]
            if not all(a <= s <= b for a, s, b in zip(low, shape, high)):
                return False
        calls.append(("set_input_shape", (name, shape)))
        self.input_shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        declared = self.engine.get_tensor_shape(name)
        if self.engine.get_tensor_mode(name) is TensorIOMode.INPUT:
            return self.input_shapes.get(name, declared)
        batch = {s[0] for s in self.input_shapes.values() if s}
        if not declared or declared[0] >= 0 or len(batch) != 1:
            return declared
        return (batch.pop(),) + tuple(declared[1:])

    def set_tensor_address(self, name: str, address: int) -> bool:
        if name not in self.engine._tensors:
            raise RuntimeError(f"fake: no tensor {name}")
        calls.append(("set_tensor_address", (name, int(address))))
        self.addresses[name] = int(address)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        driver = _driver()
        _require_context("execute_async_v3")
        if stream_handle not in driver.stream_handles:
            raise RuntimeError(f"fake: {stream_handle!r} is not a stream handle")
        missing = [n for n in self.engine._names if n not in self.addresses]
        if missing:
            raise RuntimeError(f"fake: tensor addresses not set for {missing}")
        feeds = {}
        for name in self.engine._names:
            mode, declared, dtype = self.engine._tensors[name]
            if mode is not TensorIOMode.INPUT:
                continue
            if any(d < 0 for d in declared) and name not in self.input_shapes:
                raise RuntimeError(f"fake: input shape not set for dynamic input {name}")
            shape = self.get_tensor_shape(name)
            nbytes = int(np.prod(shape)) * np.dtype(nptype(dtype)).itemsize
            raw = bytes(driver.device_buffer(self.addresses[name])[:nbytes])
            feeds[name] = np.frombuffer(raw, dtype=nptype(dtype)).reshape(shape)
        results = self.engine.ort.run(None, feeds)
        for output, value in zip(self.engine.ort.get_outputs(), results):
            value = np.ascontiguousarray(value, dtype=nptype(self.engine._tensors[output.name][2]))
            if value.shape != self.get_tensor_shape(output.name):
                raise RuntimeError(f"fake: output {output.name} shape {value.shape} != "
                                   f"{self.get_tensor_shape(output.name)}")
            buffer = driver.device_buffer(self.addresses[output.name])
            if value.nbytes > len(buffer):
                raise RuntimeError(f"fake: output {output.name} overflows its buffer")
            buffer[:value.nbytes] = value.tobytes()
        calls.append(("execute_async_v3", stream_handle))
        return True


def _onnx_shape(value: Any) -> tuple[int, ...]:
    return tuple(d.dim_value if d.HasField("dim_value") else -1
                 for d in value.type.tensor_type.shape.dim)


def call_count(name: str) -> int:
    return sum(1 for call, _ in calls if call == name)
