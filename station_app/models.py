"""Finding and opening the station's models as the configuration says."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from engines.manifest import ModelError
from engines.runtime import InferenceSession, load_model
from station_app.config import ModelSettings
from station_app.errors import StationError

BUNDLED_MODELS = Path(__file__).resolve().parents[1] / "engines" / "models"


def model_directory(settings: ModelSettings) -> Path:
    return settings.dir if settings.dir else BUNDLED_MODELS


def model_path(settings: ModelSettings, name: str) -> Path:
    """The ONNX file of a model name (``<dir>/<name>.onnx``)."""
    return model_directory(settings) / f"{name}.onnx"


def runtime_threads(settings: ModelSettings) -> int:
    """Configured ONNX Runtime threads; 0 means one per CPU core."""
    return settings.threads or os.cpu_count() or 1


def open_model(settings: ModelSettings, name: str, path: Path | None = None,
               log: logging.Logger | None = None) -> InferenceSession:
    """Verify and open a model on the configured runtime; a bad model stops with the reason."""
    onnx_path = path or model_path(settings, name)
    try:
        return load_model(onnx_path, runtime=settings.runtime, threads=runtime_threads(settings),
                          engine_cache=settings.engine_cache, log=log)
    except ModelError as error:
        raise StationError(f"model refused: {error}") from error
