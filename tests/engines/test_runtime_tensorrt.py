"""The TensorRT backend's logic, run against FAKE tensorrt and pycuda modules.

No real TensorRT or GPU is involved (they cannot be installed on CI machines): the fakes
in tests/engines/fakes record every call and execute the ONNX with ONNX Runtime, so these
tests check builder flags per TensorRT version, cache hits and rebuild decisions, buffer
and binding set-up, and error paths — not TensorRT's kernels.
"""

from __future__ import annotations

import hashlib
import logging
import time

import numpy as np
import pytest

from engines.manifest import ModelError, verify_model
from engines.runtime import FeedError
from engines.runtime.engine_cache import EngineCache, decode_engine_file
from engines.runtime.tensorrt_backend import TensorRTSession
from tests.engines.fakes import install_fake_gpu, tiny_models


@pytest.fixture
def model(tmp_path):
    return tiny_models.write_model(tmp_path / "models")


@pytest.fixture
def cache(tmp_path):
    return EngineCache(tmp_path / "engines")


def open_session(model, cache, **options) -> TensorRTSession:
    return TensorRTSession(model, verify_model(model), cache, **options)


def builds(gpu) -> list[dict]:
    return [details for call, details in gpu.trt.calls if call == "build_serialized_network"]


def deserialized_hashes(gpu) -> list[str]:
    return [details for call, details in gpu.trt.calls if call == "deserialize_cuda_engine"]


# --------------------------------------------------------------------------- builder paths

def test_trt10_sets_fp16_when_the_gpu_has_fast_fp16(model, cache, monkeypatch):
    gpu = install_fake_gpu(monkeypatch, trt_version="10.8.0.43", fast_fp16=True)
    with open_session(model, cache) as session:
        assert session.key.flags.fp16 and not session.key.flags.strongly_typed
    assert builds(gpu) == [{"flags": ["FP16"], "strongly_typed": False}]
    assert [d for c, d in gpu.trt.calls if c == "create_network"] == [0]


def test_trt10_builds_fp32_when_the_gpu_has_no_fast_fp16(model, cache, monkeypatch, caplog):
    gpu = install_fake_gpu(monkeypatch, trt_version="10.8.0.43", fast_fp16=False)
    with caplog.at_level(logging.INFO), open_session(model, cache):
        pass
    assert builds(gpu) == [{"flags": [], "strongly_typed": False}]
    assert "FP32: this GPU has no fast FP16" in caplog.text


def test_trt10_fp16_can_be_switched_off(model, cache, monkeypatch):
    gpu = install_fake_gpu(monkeypatch, trt_version="10.8.0.43")
    with open_session(model, cache, fp16=False) as session:
        assert not session.key.flags.fp16
    assert builds(gpu) == [{"flags": [], "strongly_typed": False}]


def test_trt11_builds_strongly_typed_with_no_precision_flag(model, cache, monkeypatch):
    gpu = install_fake_gpu(monkeypatch, trt_version="11.1.0.5")
    assert not hasattr(gpu.trt.BuilderFlag, "FP16")  # the fake really is "TensorRT 11"
    with open_session(model, cache, fp16=True) as session:
        assert session.key.flags.strongly_typed and not session.key.flags.fp16
        image = tiny_models.random_image(2)
        np.testing.assert_allclose(session.run({"image": image})["score"],
                                   tiny_models.reference_outputs(image)["score"], rtol=1e-5)
    strongly_typed = 1 << int(gpu.trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert [d for c, d in gpu.trt.calls if c == "create_network"] == [strongly_typed]
    assert builds(gpu) == [{"flags": [], "strongly_typed": True}]


# --------------------------------------------------------------------------- running

@pytest.mark.parametrize("batch", [1, 5, 8])
def test_outputs_match_numpy(model, cache, monkeypatch, batch):
    install_fake_gpu(monkeypatch)
    with open_session(model, cache) as session:
        image = tiny_models.random_image(batch, seed=batch)
        outputs = session.run({"image": image})
    expected = tiny_models.reference_outputs(image)
    assert set(outputs) == {"heatmap", "score"}
    for name in outputs:
        np.testing.assert_allclose(outputs[name], expected[name], rtol=1e-5, atol=1e-6)


def test_describes_io_and_profile_limit(model, cache, monkeypatch):
    install_fake_gpu(monkeypatch)
    with open_session(model, cache, max_batch=4, opt_batch=2) as session:
        assert session.name == "tensorrt" and session.max_batch == 4
        assert [(s.name, s.shape) for s in session.inputs] == [("image", (None, 3, 8, 8))]
        assert [s.name for s in session.outputs] == ["heatmap", "score"]
        with pytest.raises(FeedError, match="exceeds this tensorrt session's max batch 4"):
            session.run({"image": tiny_models.random_image(5)})


def test_buffers_are_allocated_once_and_every_tensor_is_bound(model, cache, monkeypatch):
    gpu = install_fake_gpu(monkeypatch)
    with open_session(model, cache) as session:
        allocations = gpu.cuda.call_count("mem_alloc"), gpu.cuda.call_count("pagelocked_empty")
        assert allocations == (3, 3)  # image, heatmap, score
        bound = {name for call, (name, _) in
                 ((c, d) for c, d in gpu.trt.calls if c == "set_tensor_address")}
        assert bound == {"image", "heatmap", "score"}
        results = [session.run({"image": tiny_models.random_image(b, seed=i)})
                   for i, b in enumerate([1, 3, 3, 1, 8])]
        assert (gpu.cuda.call_count("mem_alloc"), gpu.cuda.call_count("pagelocked_empty")) \
            == allocations
        assert gpu.trt.call_count("set_tensor_address") == 3
    # One stream for everything; results are copies, not views of the reused buffers.
    handles = {d for c, d in gpu.trt.calls if c == "execute_async_v3"}
    copy_handles = {d[1] for c, d in gpu.cuda.calls if c.startswith("memcpy")}
    assert len(handles) == 1 and copy_handles == handles
    assert gpu.trt.call_count("execute_async_v3") == 5
    assert gpu.cuda.call_count("synchronize") == 5
    assert results[0]["score"].shape == (1, 2) and results[4]["score"].shape == (8, 2)
    np.testing.assert_allclose(
        results[0]["score"], tiny_models.reference_outputs(tiny_models.random_image(1, 0))["score"],
        rtol=1e-5)
    # set_input_shape: once per tensor at set-up (max shape), then only when the batch changes
    shapes = [d[1][0] for c, d in gpu.trt.calls if c == "set_input_shape"]
    assert shapes == [8, 1, 3, 1, 8]


def test_close_frees_device_memory_and_the_context(model, cache, monkeypatch):
    gpu = install_fake_gpu(monkeypatch)
    session = open_session(model, cache)
    session.run({"image": tiny_models.random_image(1)})
    assert gpu.cuda.Context.get_current() is None  # every push was popped
    session.close()
    assert gpu.cuda.call_count("free") == 3 and gpu.cuda.call_count("detach") == 1
    with pytest.raises(RuntimeError, match="closed"):
        session.run({"image": tiny_models.random_image(1)})
    session.close()  # twice is harmless


def test_fixed_batch_model_needs_no_profile(tmp_path, cache, monkeypatch):
    install_fake_gpu(monkeypatch)
    model = tiny_models.write_model(tmp_path / "fixed", batch=2)
    with open_session(model, cache) as session:
        assert session.max_batch == 2 and session.key.flags.max_batch == 2
        image = tiny_models.random_image(2)
        np.testing.assert_allclose(session.run({"image": image})["heatmap"],
                                   tiny_models.reference_outputs(image)["heatmap"], rtol=1e-5)


# --------------------------------------------------------------------------- engine cache

def test_second_start_uses_the_cached_engine(model, cache, monkeypatch, caplog):
    gpu = install_fake_gpu(monkeypatch)
    open_session(model, cache).close()
    with caplog.at_level(logging.INFO):
        open_session(model, cache).close()
    assert len(builds(gpu)) == 1
    assert "from cache" in caplog.text
    [engine_file] = cache.directory.glob("*.engine")
    header, engine = decode_engine_file(engine_file.read_bytes())
    assert header["onnx_sha256"] == verify_model(model).sha256
    assert header["trt_version"] == "10.8.0.43"
    assert header["gpu_name"] == gpu.cuda.GPU_NAME and header["compute_capability"] == "8.9"
    assert header["flags"]["fp16"] is True
    assert deserialized_hashes(gpu)[-1] == hashlib.sha256(engine).hexdigest()


def test_changed_onnx_is_rebuilt_and_runs_the_new_weights(model, cache, monkeypatch, caplog):
    gpu = install_fake_gpu(monkeypatch)
    open_session(model, cache).close()
    tiny_models.rewrite_model(model, seed=7)
    with caplog.at_level(logging.INFO), open_session(model, cache) as session:
        image = tiny_models.random_image(1)
        np.testing.assert_allclose(session.run({"image": image})["score"],
                                   tiny_models.reference_outputs(image, seed=7)["score"],
                                   rtol=1e-5)
    assert len(builds(gpu)) == 2
    assert "stale: ONNX changed" in caplog.text


@pytest.mark.parametrize("second, reason", [
    ({"gpu_name": "NVIDIA Other GPU (test fake)"}, "mismatch: built for GPU"),
    ({"trt_version": "10.9.1.0"}, "mismatch: built with TensorRT 10.8.0.43"),
])
def test_new_gpu_or_tensorrt_is_rebuilt(model, cache, monkeypatch, caplog, second, reason):
    first = install_fake_gpu(monkeypatch)
    open_session(model, cache).close()
    assert len(builds(first)) == 1
    again = install_fake_gpu(monkeypatch, **second)
    with caplog.at_level(logging.INFO):
        open_session(model, cache).close()
    assert len(builds(again)) == 1 and reason in caplog.text
    assert len(list(cache.directory.glob("*.engine"))) == 2


@pytest.mark.parametrize("damage", [
    lambda data: data[:-10],                                       # truncated
    lambda data: data[:-50] + bytes([data[-50] ^ 0x80]) + data[-49:],  # one bit flipped
])
def test_corrupt_engine_is_rebuilt_and_never_deserialized(model, cache, monkeypatch, damage):
    install_fake_gpu(monkeypatch)
    open_session(model, cache).close()
    [engine_file] = cache.directory.glob("*.engine")
    damaged = damage(engine_file.read_bytes())
    engine_file.write_bytes(damaged)
    gpu = install_fake_gpu(monkeypatch)
    with open_session(model, cache) as session:
        session.run({"image": tiny_models.random_image(1)})
    assert len(builds(gpu)) == 1
    rebuilt = decode_engine_file(engine_file.read_bytes())[1]
    # The only engine TensorRT saw is the rebuilt one, never the damaged bytes.
    assert deserialized_hashes(gpu) == [hashlib.sha256(rebuilt).hexdigest()]
    assert all(hashlib.sha256(damaged[i:]).hexdigest() not in deserialized_hashes(gpu)
               for i in range(0, 600))


def test_engine_tensorrt_cannot_deserialize_is_discarded_and_rebuilt(model, cache,
                                                                     monkeypatch, caplog):
    """A well-formed file whose payload TensorRT rejects (deserialize returns None)."""
    install_fake_gpu(monkeypatch)
    probe = open_session(model, cache)
    key = probe.key
    probe.close()
    cache.store(key, b"not an engine TensorRT accepts")
    gpu = install_fake_gpu(monkeypatch)
    with caplog.at_level(logging.INFO), open_session(model, cache) as session:
        session.run({"image": tiny_models.random_image(1)})
    assert "could not deserialize the cached engine" in caplog.text
    assert len(builds(gpu)) == 1 and len(deserialized_hashes(gpu)) == 2
    assert cache.lookup(key).engine.startswith(gpu.trt.ENGINE_MAGIC)


def test_timing_cache_is_saved_and_fed_to_the_next_build(model, cache, monkeypatch):
    gpu = install_fake_gpu(monkeypatch)
    open_session(model, cache).close()
    saved = cache.load_timing_cache("10.8.0.43", gpu.cuda.GPU_NAME)
    assert saved == b"FAKETIMING1"
    tiny_models.rewrite_model(model, seed=3)
    open_session(model, cache).close()
    fed = [d for c, d in gpu.trt.calls if c == "create_timing_cache"]
    assert fed == [b"", b"FAKETIMING1"]
    assert cache.load_timing_cache("10.8.0.43", gpu.cuda.GPU_NAME) == b"FAKETIMING2"


def test_damaged_timing_cache_does_not_stop_the_build(model, cache, monkeypatch, caplog):
    gpu = install_fake_gpu(monkeypatch)
    cache.save_timing_cache("10.8.0.43", gpu.cuda.GPU_NAME, b"garbage")
    with caplog.at_level(logging.WARNING), open_session(model, cache):
        pass
    assert "ignoring unreadable timing cache" in caplog.text and len(builds(gpu)) == 1


# --------------------------------------------------------------------------- errors, progress

def test_failed_build_raises_model_error_and_stores_nothing(model, cache, monkeypatch):
    gpu = install_fake_gpu(monkeypatch)
    gpu.trt.BUILD_RETURNS_NONE = True
    with pytest.raises(ModelError, match="TensorRT could not build an engine") as caught:
        open_session(model, cache)
    assert caught.value.path == model
    assert list(cache.directory.glob("*.engine")) == []
    assert gpu.cuda.Context.get_current() is None


def test_parser_errors_are_reported_with_the_model_path(model, cache, monkeypatch):
    gpu = install_fake_gpu(monkeypatch)
    gpu.trt.UNSUPPORTED_OPS = {"ReduceMean"}
    with pytest.raises(ModelError, match=r"could not parse the ONNX: .*ReduceMean") as caught:
        open_session(model, cache)
    assert caught.value.path == model


def test_build_logs_start_heartbeat_and_end(model, cache, monkeypatch, caplog):
    gpu = install_fake_gpu(monkeypatch)
    real_build = gpu.trt.Builder.build_serialized_network

    def slow_build(self, network, config):
        time.sleep(0.35)
        return real_build(self, network, config)

    monkeypatch.setattr(gpu.trt.Builder, "build_serialized_network", slow_build)
    with caplog.at_level(logging.INFO), open_session(model, cache, heartbeat_s=0.1):
        pass
    messages = [r.getMessage() for r in caplog.records]
    start = next(i for i, m in enumerate(messages) if m.startswith("building TensorRT engine"))
    end = next(i for i, m in enumerate(messages) if m.startswith("built TensorRT engine"))
    beats = [m for m in messages[start:end] if m.startswith("still building engine for tiny")]
    assert start < end and len(beats) >= 2
    assert "engine build tiny: Building engine (2 steps)" in messages  # IProgressMonitor
