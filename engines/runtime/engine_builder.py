"""Building a TensorRT engine from ONNX on the target machine.

Precision policy, by TensorRT version:

- **TensorRT 10** (``BuilderFlag.FP16`` exists): the network is created weakly typed
  and ``BuilderFlag.FP16`` is set when FP16 is allowed and the GPU reports fast FP16
  (``builder.platform_has_fast_fp16``), so TensorRT may pick FP16 kernels per layer.
- **TensorRT 11** (no ``BuilderFlag.FP16``, weak typing removed): the network is created
  ``STRONGLY_TYPED`` and no precision flag is set; precision comes from the ONNX types.
  An FP32 ONNX builds an FP32 engine; for FP16 on TensorRT 11 ship an FP16 ONNX
  (e.g. converted with ModelOpt AutoCast, keeping FP32 inputs/outputs).

A build can take minutes, so it logs when it starts and ends, logs TensorRT's top-level
phases (``IProgressMonitor`` where the version has it), and a heartbeat every
``heartbeat_s`` seconds. Tactic timings persist in the cache's timing-cache file, which
makes later builds on the same GPU much faster.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Sequence

from engines.manifest import ModelError
from engines.runtime.engine_cache import BuildFlags, EngineCache, EngineKey


def trt_major_version(trt: ModuleType) -> int:
    try:
        return int(str(trt.__version__).split(".")[0])
    except (AttributeError, ValueError):
        return 0


def requires_strong_typing(trt: ModuleType) -> bool:
    """TensorRT 11 and later: weak typing and ``BuilderFlag.FP16`` are gone."""
    return trt_major_version(trt) >= 11 or not hasattr(trt.BuilderFlag, "FP16")


def build_flags(trt: ModuleType, *, fp16: bool, min_batch: int, opt_batch: int,
                max_batch: int, workspace_mib: int) -> BuildFlags:
    """The flags this TensorRT will build with; part of the engine's cache key."""
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise ValueError(f"need 1 <= min_batch <= opt_batch <= max_batch, got "
                         f"{min_batch}, {opt_batch}, {max_batch}")
    strong = requires_strong_typing(trt)
    return BuildFlags(fp16=fp16 and not strong, strongly_typed=strong, min_batch=min_batch,
                      opt_batch=opt_batch, max_batch=max_batch, workspace_mib=workspace_mib)


class EngineBuilder:
    """Turns an ONNX file into serialized engine bytes for one ``EngineKey``."""

    def __init__(self, trt: ModuleType, trt_logger: Any, cache: EngineCache,
                 log: logging.Logger, heartbeat_s: float = 10.0):
        self.trt = trt
        self.trt_logger = trt_logger
        self.cache = cache
        self.log = log
        self.heartbeat_s = heartbeat_s

    def build(self, onnx_path: Path, key: EngineKey,
              fixed_dims: Mapping[str, Sequence[int | str]]) -> bytes:
        """Serialized engine bytes; ``ModelError`` when TensorRT cannot parse or build.

        ``fixed_dims``: the manifest's input shapes, used for dynamic non-batch dims.
        """
        trt = self.trt
        builder = trt.Builder(self.trt_logger)
        network_flags = 0
        if key.flags.strongly_typed:
            network_flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(network_flags)
        parser = trt.OnnxParser(network, self.trt_logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelError(onnx_path, f"TensorRT could not parse the ONNX: {errors}")

        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, key.flags.workspace_mib << 20)
        precision = self._set_precision(builder, config, key.flags)
        self._add_batch_profile(builder, network, config, key.flags, onnx_path, fixed_dims)
        timing_cache = self._attach_timing_cache(config, key)
        monitor = self._attach_progress_monitor(config, key.model_name)

        self.log.info("building TensorRT engine for %s (%s, batch %d..%d, TensorRT %s, %s); "
                      "this can take minutes", key.model_name, precision, key.flags.min_batch,
                      key.flags.max_batch, key.trt_version, key.gpu_name)
        started = time.monotonic()
        with _Heartbeat(self.log, key.model_name, self.heartbeat_s, started):
            serialized = builder.build_serialized_network(network, config)
        elapsed = time.monotonic() - started
        del monitor  # TensorRT only borrows it; keep it alive until here
        if serialized is None:
            raise ModelError(onnx_path, f"TensorRT could not build an engine after "
                                        f"{elapsed:.1f} s (see the TensorRT log above)")
        engine = bytes(serialized)
        self.log.info("built TensorRT engine for %s in %.1f s (%.1f MB)", key.model_name,
                      elapsed, len(engine) / 1e6)
        if timing_cache is not None:
            self._save_timing_cache(config, key)
        return engine

    # -- pieces

    def _set_precision(self, builder: Any, config: Any, flags: BuildFlags) -> str:
        if flags.strongly_typed:
            return "strongly typed: precision from the ONNX types"
        if not flags.fp16:
            return "FP32"
        if getattr(builder, "platform_has_fast_fp16", False):
            config.set_flag(self.trt.BuilderFlag.FP16)
            return "FP16 allowed"
        return "FP32: this GPU has no fast FP16"

    def _add_batch_profile(self, builder: Any, network: Any, config: Any, flags: BuildFlags,
                           onnx_path: Path, fixed_dims: Mapping[str, Sequence[int | str]]
                           ) -> None:
        profile = None
        for index in range(network.num_inputs):
            tensor = network.get_input(index)
            shape = list(tensor.shape)
            if all(d >= 0 for d in shape):
                continue
            manifest_shape = list(fixed_dims.get(tensor.name, ()))
            for axis, size in enumerate(shape[1:], start=1):
                if size < 0:
                    fixed = manifest_shape[axis] if axis < len(manifest_shape) else None
                    if not isinstance(fixed, int):
                        raise ModelError(onnx_path, f"input {tensor.name!r} axis {axis} is "
                                                    f"dynamic and the manifest gives no size")
                    shape[axis] = fixed
            if shape[0] >= 0:
                continue
            profile = profile or builder.create_optimization_profile()
            profile.set_shape(tensor.name, tuple([flags.min_batch] + shape[1:]),
                              tuple([flags.opt_batch] + shape[1:]),
                              tuple([flags.max_batch] + shape[1:]))
        if profile is not None:
            config.add_optimization_profile(profile)

    def _attach_timing_cache(self, config: Any, key: EngineKey) -> Any:
        data = self.cache.load_timing_cache(key.trt_version, key.gpu_name)
        timing_cache = None
        try:
            timing_cache = config.create_timing_cache(data)
        except Exception as exc:  # a damaged cache file must not stop the build
            self.log.warning("ignoring unreadable timing cache (%s)", exc)
        if timing_cache is None and data:
            timing_cache = config.create_timing_cache(b"")
        if timing_cache is not None:
            config.set_timing_cache(timing_cache, False)  # ignore_mismatch=False
        return timing_cache

    def _save_timing_cache(self, config: Any, key: EngineKey) -> None:
        try:
            data = config.get_timing_cache().serialize()
            self.cache.save_timing_cache(key.trt_version, key.gpu_name, bytes(data))
        except Exception as exc:  # losing timings only slows the next build
            self.log.warning("could not save the timing cache (%s)", exc)

    def _attach_progress_monitor(self, config: Any, model_name: str) -> Any:
        if not hasattr(self.trt, "IProgressMonitor"):
            return None
        monitor = _make_progress_monitor(self.trt, self.log, model_name)
        config.progress_monitor = monitor
        return monitor


def _make_progress_monitor(trt: ModuleType, log: logging.Logger, model_name: str) -> Any:
    """An ``IProgressMonitor`` that logs TensorRT's top-level build phases."""

    class LogTopLevelPhases(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None,
                        num_steps: int) -> None:
            if parent_phase is None:
                log.info("engine build %s: %s (%d steps)", model_name, phase_name, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            pass

    return LogTopLevelPhases()


class _Heartbeat:
    """Logs "still building" every ``interval`` seconds until the block ends."""

    def __init__(self, log: logging.Logger, model_name: str, interval: float, started: float):
        self.log, self.model_name, self.interval, self.started = log, model_name, interval, started
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="engine-build-heartbeat",
                                        daemon=True)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self.log.info("still building engine for %s (%d s)", self.model_name,
                          time.monotonic() - self.started)
