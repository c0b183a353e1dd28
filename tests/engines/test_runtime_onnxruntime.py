"""The ONNX Runtime backend on tiny real models: numbers, batching, threads, feed errors."""

from __future__ import annotations

import numpy as np
import pytest

from engines.runtime import FeedError, InferenceSession, OnnxRuntimeSession, load_model
from tests.engines.fakes import hide_gpu_stack, tiny_models


@pytest.fixture
def model(tmp_path):
    return tiny_models.write_model(tmp_path)


@pytest.fixture
def session(model, monkeypatch):
    hide_gpu_stack(monkeypatch)
    with load_model(model, runtime="auto", threads=1) as opened:
        yield opened


def test_describes_named_inputs_and_outputs(session):
    assert isinstance(session, InferenceSession) and session.name == "onnxruntime"
    [image] = session.inputs
    assert (image.name, image.shape, image.dtype) == ("image", (None, 3, 8, 8), np.float32)
    assert [o.name for o in session.outputs] == ["heatmap", "score"]
    assert session.outputs[1].shape == (None, 2)
    assert session.max_batch is None  # dynamic batch: ONNX Runtime sets no limit
    assert session.providers == ["CPUExecutionProvider"]


@pytest.mark.parametrize("batch", [1, 5])
def test_outputs_match_numpy(session, batch):
    image = tiny_models.random_image(batch, seed=batch)
    outputs = session.run({"image": image})
    expected = tiny_models.reference_outputs(image)
    assert set(outputs) == {"heatmap", "score"}
    for name, value in outputs.items():
        assert value.shape == expected[name].shape
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6)


def test_batched_run_equals_single_runs(session):
    image = tiny_models.random_image(4, seed=9)
    together = session.run({"image": image})["score"]
    one_by_one = np.concatenate([session.run({"image": image[i:i + 1]})["score"]
                                 for i in range(4)])
    np.testing.assert_allclose(together, one_by_one, rtol=1e-6)


@pytest.mark.parametrize("threads", [1, 3])
def test_thread_count_reaches_the_session_options(model, threads):
    session = OnnxRuntimeSession(model, threads=threads)
    assert session.session_options.intra_op_num_threads == threads
    assert session.threads == threads


def test_idle_threads_sleep_instead_of_spinning(model):
    """Sessions run back to back on 2 cores; spinning threads of one slow the next (the
    figures are in the backend's comment and in ``station-app bench``)."""
    from engines.runtime.onnxruntime_backend import SPINNING_KEY
    session = OnnxRuntimeSession(model, threads=2)
    assert session.session_options.get_session_config_entry(SPINNING_KEY) == "0"


def test_zero_threads_is_rejected(model):
    with pytest.raises(ValueError, match="threads"):
        OnnxRuntimeSession(model, threads=0)


def test_fixed_batch_model_reports_its_max_batch(tmp_path):
    session = OnnxRuntimeSession(tiny_models.write_model(tmp_path, batch=2))
    assert session.max_batch == 2
    with pytest.raises(FeedError, match=r"expects shape \[2, 3, 8, 8\], got \[3, 3, 8, 8\]"):
        session.run({"image": tiny_models.random_image(3)})


@pytest.mark.parametrize("feeds, message", [
    ({"img": np.zeros((1, 3, 8, 8), np.float32)}, r"missing \['image'\], unexpected \['img'\]"),
    ({}, r"missing \['image'\]"),
    ({"image": np.zeros((1, 3, 8, 9), np.float32)}, r"expects shape \[\?, 3, 8, 8\]"),
    ({"image": np.zeros((3, 8, 8), np.float32)}, r"got \[3, 8, 8\]"),
    ({"image": np.zeros((1, 3, 8, 8), np.float64)}, "expects float32, got float64"),
    ({"image": [[0.0]]}, "must be a numpy array"),
    ({"image": np.zeros((0, 3, 8, 8), np.float32)}, "empty batch"),
])
def test_bad_feeds_get_clear_errors(session, feeds, message):
    with pytest.raises(FeedError, match=message) as caught:
        session.run(feeds)
    assert str(caught.value).startswith("tiny:")


def test_closed_session_refuses_to_run(model):
    session = OnnxRuntimeSession(model)
    session.close()
    with pytest.raises(RuntimeError, match="closed"):
        session.run({"image": tiny_models.random_image(1)})
