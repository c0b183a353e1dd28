"""Choosing the runtime: TensorRT when tensorrt + pycuda + a GPU are here, else ONNX Runtime.

The GPU stack is the FAKE tensorrt/pycuda from tests/engines/fakes, or hidden entirely.
"""

from __future__ import annotations

import logging

import pytest

from engines.manifest import ModelError
from engines.runtime import (RuntimeUnavailable, load_model, probe_tensorrt,
                             select_runtime)
from tests.engines.fakes import hide_gpu_stack, install_fake_gpu, tiny_models


@pytest.fixture
def model(tmp_path):
    return tiny_models.write_model(tmp_path / "models")


def runtime_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("runtime:")]


def test_auto_without_tensorrt_picks_onnxruntime_with_the_reason(monkeypatch):
    hide_gpu_stack(monkeypatch)
    assert select_runtime("auto") == ("onnxruntime", "tensorrt not installed")


def test_auto_with_tensorrt_but_no_pycuda(monkeypatch):
    install_fake_gpu(monkeypatch, with_pycuda=False)
    assert select_runtime("auto") == ("onnxruntime", "pycuda not installed")


def test_auto_with_the_stack_but_no_device(monkeypatch):
    install_fake_gpu(monkeypatch, device_count=0)
    choice = select_runtime("auto")
    assert choice.name == "onnxruntime" and "no CUDA device" in choice.reason


def test_auto_with_fakes_and_a_device_picks_tensorrt(monkeypatch):
    install_fake_gpu(monkeypatch, trt_version="10.3.0", gpu_name="NVIDIA Fake A2000")
    probe = probe_tensorrt()
    assert probe.missing is None and probe.compute_capability == (8, 9)
    assert select_runtime("auto", probe) == ("tensorrt",
                                             "tensorrt 10.3.0, GPU NVIDIA Fake A2000")


def test_forced_onnxruntime_wins_even_with_a_gpu(monkeypatch):
    gpu = install_fake_gpu(monkeypatch)
    assert select_runtime("onnxruntime") == ("onnxruntime", "forced by configuration")
    assert gpu.cuda.calls == []  # did not even probe


@pytest.mark.parametrize("install, missing", [
    (lambda mp: hide_gpu_stack(mp), "tensorrt not installed"),
    (lambda mp: install_fake_gpu(mp, with_pycuda=False), "pycuda not installed"),
    (lambda mp: install_fake_gpu(mp, device_count=0), "no CUDA device"),
])
def test_forced_tensorrt_when_unavailable_says_what_and_how_to_fix(monkeypatch, install,
                                                                   missing):
    install(monkeypatch)
    with pytest.raises(RuntimeUnavailable) as caught:
        select_runtime("tensorrt")
    assert missing in str(caught.value) and "`gpu` extra" in str(caught.value)


def test_unknown_runtime_name_is_rejected():
    with pytest.raises(ValueError, match="auto, tensorrt, onnxruntime"):
        select_runtime("cuda")


def test_load_model_logs_exactly_one_runtime_line_for_onnxruntime(model, monkeypatch, caplog):
    hide_gpu_stack(monkeypatch)
    with caplog.at_level(logging.INFO, logger="engines.runtime"):
        session = load_model(model)
    assert session.name == "onnxruntime"
    assert runtime_lines(caplog) == ["runtime: onnxruntime (reason: tensorrt not installed)"]


def test_load_model_logs_exactly_one_runtime_line_for_tensorrt(model, monkeypatch, caplog,
                                                               tmp_path):
    install_fake_gpu(monkeypatch, trt_version="10.8.0.43")
    with caplog.at_level(logging.INFO, logger="engines.runtime"):
        with load_model(model, engine_cache=tmp_path / "engines") as session:
            assert session.name == "tensorrt"
    assert runtime_lines(caplog) == [
        "runtime: tensorrt (tensorrt 10.8.0.43, GPU NVIDIA FakeGPU 9000 (test fake))"]


def test_load_model_forced_onnxruntime_with_fakes(model, monkeypatch, caplog):
    install_fake_gpu(monkeypatch)
    with caplog.at_level(logging.INFO, logger="engines.runtime"):
        assert load_model(model, runtime="onnxruntime").name == "onnxruntime"
    assert runtime_lines(caplog) == ["runtime: onnxruntime (reason: forced by configuration)"]


def test_load_model_refuses_a_bad_model_before_choosing_a_runtime(model, monkeypatch, caplog):
    gpu = install_fake_gpu(monkeypatch)
    model.write_bytes(model.read_bytes() + b"\0")
    with caplog.at_level(logging.INFO), pytest.raises(ModelError, match="sha256 mismatch"):
        load_model(model)
    assert runtime_lines(caplog) == [] and gpu.cuda.calls == []
