"""The one interface every inference runtime offers.

Callers (segmentation, scoring, replay, bench) see named tensors in and named numpy
arrays out, whatever runs underneath; feeds are checked here once, so every backend
rejects a wrong name, rank, size or dtype with the same clear message.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from engines.manifest import ModelManifest

# Runs at the serving shape before the first item. Measured with ONNX Runtime on CPU
# (bundled models, 2 cores): the first two runs at a new shape take 2–3× the steady time
# (about a second more on the first item), the third is steady.
WARM_UP_RUNS = 2

Dim = int | str | None
"""A fixed size, or a symbol / None where the runtime accepts any size (dynamic batch)."""


class FeedError(ValueError):
    """Arrays handed to ``run`` that do not fit the model's inputs."""


@dataclass(frozen=True)
class TensorSpec:
    """A named model input or output as the runtime sees it."""

    name: str
    shape: tuple[Dim, ...]
    dtype: np.dtype

    @property
    def has_dynamic_batch(self) -> bool:
        return bool(self.shape) and not isinstance(self.shape[0], int)


class InferenceSession(abc.ABC):
    """A compiled model, ready to run on numpy arrays.

    Use as a context manager (or call ``close``) so device memory is given back.
    """

    name: str = "abstract"
    """Runtime name: ``"onnxruntime"`` or ``"tensorrt"``."""

    def __init__(self, onnx_path: str | Path, manifest: ModelManifest | None = None):
        self.onnx_path = Path(onnx_path)
        self.manifest = manifest

    # -- description

    @property
    @abc.abstractmethod
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Named inputs, in the model's order."""

    @property
    @abc.abstractmethod
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Named outputs, in the model's order."""

    @property
    @abc.abstractmethod
    def max_batch(self) -> int | None:
        """Largest batch one ``run`` accepts; None where the runtime sets no limit."""

    # -- execution

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on a batch; returns every output by name (arrays the caller owns)."""
        self.check_feeds(feeds)
        return self._run({spec.name: np.ascontiguousarray(feeds[spec.name])
                          for spec in self.inputs})

    @abc.abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Backend work on feeds already checked against ``inputs``."""

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Raise ``FeedError`` naming the model and the first problem found."""
        expected = {spec.name for spec in self.inputs}
        missing = sorted(expected - set(feeds))
        unexpected = sorted(set(feeds) - expected)
        if missing or unexpected:
            raise FeedError(f"{self.model_name}: feeds must be exactly {sorted(expected)}; "
                            f"missing {missing}, unexpected {unexpected}")
        batch_sizes = set()
        for spec in self.inputs:
            array = feeds[spec.name]
            if not isinstance(array, np.ndarray):
                raise FeedError(f"{self.model_name}: input {spec.name!r} must be a numpy "
                                f"array, got {type(array).__name__}")
            if array.dtype != spec.dtype:
                raise FeedError(f"{self.model_name}: input {spec.name!r} expects "
                                f"{spec.dtype}, got {array.dtype}")
            if array.ndim != len(spec.shape) or any(
                    isinstance(want, int) and want != got
                    for want, got in zip(spec.shape, array.shape)):
                raise FeedError(f"{self.model_name}: input {spec.name!r} expects shape "
                                f"{_shape_text(spec.shape)}, got {list(array.shape)}")
            if spec.has_dynamic_batch:
                batch_sizes.add(array.shape[0])
        if len(batch_sizes) > 1:
            raise FeedError(f"{self.model_name}: inputs disagree on batch size "
                            f"{sorted(batch_sizes)}")
        batch = next(iter(batch_sizes), None)
        if batch is not None and batch < 1:
            raise FeedError(f"{self.model_name}: empty batch")
        if batch is not None and self.max_batch is not None and batch > self.max_batch:
            raise FeedError(f"{self.model_name}: batch {batch} exceeds this {self.name} "
                            f"session's max batch {self.max_batch}; split the batch")

    # -- life cycle

    def close(self) -> None:
        """Release runtime resources; the session cannot run afterwards."""

    def __enter__(self) -> "InferenceSession":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def model_name(self) -> str:
        return self.manifest.name if self.manifest is not None else self.onnx_path.name

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}{_shape_text(s.shape)}:{s.dtype}" for s in self.inputs)
        outs = ", ".join(f"{s.name}{_shape_text(s.shape)}:{s.dtype}" for s in self.outputs)
        return f"<{type(self).__name__} {self.model_name} ({ins}) -> ({outs})>"


def _shape_text(shape: tuple[Dim, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
