"""Test doubles for the GPU stack: FAKE ``tensorrt`` and FAKE ``pycuda`` modules.

Neither is NVIDIA's software; they exist because TensorRT and pycuda cannot be
installed on CI machines. ``install_fake_gpu`` loads fresh copies (so call records and
settings never leak between tests) and puts them into ``sys.modules`` under the real
names via ``monkeypatch``, which puts everything back after the test.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

FAKES_DIR = Path(__file__).resolve().parent


@dataclass
class FakeGpu:
    trt: ModuleType       # the fake tensorrt module
    cuda: ModuleType      # the fake pycuda.driver module


def _load(name: str, path: Path, package_dir: Path | None = None) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(package_dir)] if package_dir else None)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def install_fake_gpu(monkeypatch: pytest.MonkeyPatch, *, trt_version: str = "10.8.0.43",
                     device_count: int = 1, gpu_name: str | None = None,
                     fast_fp16: bool = True, with_tensorrt: bool = True,
                     with_pycuda: bool = True) -> FakeGpu:
    """Fresh fake modules in ``sys.modules``; ``trt_version`` 11.x drops weak typing."""
    cuda = _load("pycuda.driver", FAKES_DIR / "pycuda" / "driver.py")
    cuda.DEVICE_COUNT = device_count
    if gpu_name is not None:
        cuda.GPU_NAME = gpu_name
    trt = _load("tensorrt", FAKES_DIR / "tensorrt.py")
    trt.__version__ = trt_version
    trt.PLATFORM_HAS_FAST_FP16 = fast_fp16
    if int(trt_version.split(".")[0]) >= 11:
        trt.remove_weak_typing()
    if with_pycuda:
        package = _load("pycuda", FAKES_DIR / "pycuda" / "__init__.py", FAKES_DIR / "pycuda")
        package.driver = cuda
        monkeypatch.setitem(sys.modules, "pycuda", package)
        monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    else:
        monkeypatch.setitem(sys.modules, "pycuda", None)      # import pycuda -> ImportError
        monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    monkeypatch.setitem(sys.modules, "tensorrt", trt if with_tensorrt else None)
    return FakeGpu(trt=trt, cuda=cuda)


def hide_gpu_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import tensorrt`` / ``import pycuda`` fail, even where they are installed."""
    for name in ("tensorrt", "pycuda", "pycuda.driver"):
        monkeypatch.setitem(sys.modules, name, None)
