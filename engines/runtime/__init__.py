"""Inference runtimes: one interface, TensorRT on an NVIDIA GPU, ONNX Runtime elsewhere.

>>> with load_model("engines/models/scorer.onnx", runtime="auto") as session:
...     outputs = session.run({"image": batch})

``load_model`` refuses a model that must not run (missing, corrupt, sha256 differs from
its manifest) before choosing a runtime, then logs one line saying which runtime and
why. See ``README.md`` in this folder for the TensorRT 10 / 11 build paths.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from engines.manifest import ModelError, ModelManifest, verify_model
from engines.runtime.base import FeedError, InferenceSession, TensorSpec
from engines.runtime.engine_cache import EngineCache
from engines.runtime.onnxruntime_backend import OnnxRuntimeSession
from engines.runtime.selection import (RUNTIMES, RuntimeChoice, RuntimeUnavailable,
                                       probe_tensorrt, select_runtime)

__all__ = [
    "RUNTIMES", "EngineCache", "FeedError", "InferenceSession", "ModelError",
    "OnnxRuntimeSession", "RuntimeChoice", "RuntimeUnavailable", "TensorSpec",
    "default_engine_cache_dir", "load_model", "probe_tensorrt", "select_runtime",
]

logger = logging.getLogger("engines.runtime")


def default_engine_cache_dir() -> Path:
    """Engines are machine-specific, so they live in the user's cache, not the package."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "damage-station" / "engines"


def load_model(onnx_path: str | os.PathLike[str],
               manifest: ModelManifest | str | os.PathLike[str] | None = None,
               runtime: str = "auto", threads: int = 2,
               engine_cache: EngineCache | str | os.PathLike[str] | None = None,
               log: logging.Logger | None = None, *, fp16: bool = True, max_batch: int = 8,
               opt_batch: int = 1, workspace_mib: int = 2048) -> InferenceSession:
    """Verify a model against its manifest, pick a runtime and return a ready session.

    ``manifest``: a loaded manifest, its path, or None for ``<onnx stem>.yaml`` beside it.
    ``runtime``: ``auto``, ``tensorrt`` or ``onnxruntime`` (configuration may force one).
    ``threads``: ONNX Runtime intra-op threads. ``fp16``, ``max_batch``, ``opt_batch``,
    ``workspace_mib`` and ``engine_cache`` only concern TensorRT.

    Raises ``ModelError`` (path and reason) for a model that must not run, and
    ``RuntimeUnavailable`` when ``tensorrt`` is forced on a machine that lacks it.
    """
    log = log or logger
    checked = verify_model(onnx_path, manifest)
    choice = select_runtime(runtime)
    log.info(choice.log_line())
    if choice.name == "tensorrt":
        from engines.runtime.tensorrt_backend import TensorRTSession

        return TensorRTSession(onnx_path, checked,
                               engine_cache if engine_cache is not None
                               else default_engine_cache_dir(),
                               fp16=fp16, max_batch=max_batch, opt_batch=opt_batch,
                               workspace_mib=workspace_mib, log=log)
    return OnnxRuntimeSession(onnx_path, checked, threads=threads)
