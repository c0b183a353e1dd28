"""Folding the trunk's "same" padding into its convolutions: same outputs, no Pad left,
and only the Pads a Conv can absorb are touched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from engines.manifest import InputSpec, OutputSpec, load_manifest, sha256_file, verify_model
from training import fold_pads
from training.efficientnet_lite import _SamePadConv
from training.fold_pads import fold_pads_into_convs
from training.onnx_export import write_model_manifest


def _ops(path: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def _run(path: Path, image: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: image})[0]


@pytest.fixture
def same_pad_network(tmp_path: Path) -> Path:
    """The trunk's padding cases: 3×3 stride 1, 3×3 depthwise stride 2 (asymmetric), 5×5
    stride 2 (asymmetric), exported with dynamic height and width as the scorer is."""
    torch.manual_seed(0)
    network = nn.Sequential(_SamePadConv(3, 8, 3), nn.ReLU6(),
                            _SamePadConv(8, 8, 3, stride=2, groups=8), nn.ReLU6(),
                            _SamePadConv(8, 4, 5, stride=2)).eval()
    path = tmp_path / "same_pad.onnx"
    with torch.no_grad():
        torch.onnx.export(network, torch.zeros(1, 3, 64, 64), str(path), input_names=["image"],
                          output_names=["out"], opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "N", 2: "H", 3: "W"}})
    return path


def test_folded_network_computes_the_same_at_every_size(same_pad_network: Path, tmp_path: Path):
    original = tmp_path / "original.onnx"
    original.write_bytes(same_pad_network.read_bytes())
    assert _ops(original).count("Pad") == 3
    assert fold_pads_into_convs(same_pad_network) == 3
    assert "Pad" not in _ops(same_pad_network)
    rng = np.random.default_rng(1)
    for size in (64, 96, 160):
        image = rng.standard_normal((2, 3, size, size)).astype(np.float32)
        expected, folded = _run(original, image), _run(same_pad_network, image)
        assert folded.shape == expected.shape == (2, 4, size // 4, size // 4)
        np.testing.assert_allclose(folded, expected, rtol=0, atol=1e-5)
    assert fold_pads_into_convs(same_pad_network) == 0      # nothing left to fold


def _pad_then_conv(pads_source: str, mode: str = "constant", fill: float = 0.0,
                   pads: tuple[int, ...] = (0, 0, 1, 1, 0, 0, 1, 1),
                   conv_pads: tuple[int, ...] = (0, 0, 0, 0), opset: int = 17) -> onnx.ModelProto:
    """x (1×1×8×8) → Pad → 3×3 Conv → y; ``pads_source``: "constant" (an initializer),
    "input" (a graph input) or "overridable" (an initializer also listed as an input)."""
    rng = np.random.default_rng(3)
    weight = numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32),
                                     "weight")
    amounts = numpy_helper.from_array(np.array(pads, np.int64), "pads")
    value = numpy_helper.from_array(np.array(fill, np.float32), "fill")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])]
    initializers = [weight, value]
    if pads_source in ("input", "overridable"):
        inputs.append(helper.make_tensor_value_info("pads", TensorProto.INT64, [8]))
    if pads_source in ("constant", "overridable"):
        initializers.append(amounts)
    if opset < 11:               # the amounts were an attribute then
        pad = helper.make_node("Pad", ["x"], ["padded"], mode=mode, pads=list(pads),
                               value=fill)
    else:
        pad = helper.make_node("Pad", ["x", "pads", "fill"], ["padded"], mode=mode)
    height = 8 + pads[2] + pads[6] + conv_pads[0] + conv_pads[2] - 2
    width = 8 + pads[3] + pads[7] + conv_pads[1] + conv_pads[3] - 2
    conv = helper.make_node("Conv", ["padded", "weight"], ["y"], pads=list(conv_pads))
    graph = helper.make_graph([pad, conv], "g", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             [1, 2, height, width])],
                              initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=8 if opset >= 11 else 5)


@pytest.mark.parametrize("case", [dict(pads_source="input"), dict(pads_source="overridable"),
                                  dict(pads_source="constant", mode="reflect"),
                                  dict(pads_source="constant", fill=1.0),
                                  dict(pads_source="constant", pads=(0, 1, 1, 1, 0, 0, 1, 1)),
                                  dict(pads_source="constant", opset=10)])
def test_pads_a_conv_cannot_absorb_are_left_alone(case, tmp_path: Path):
    """Amounts fed at run time, a reflecting border, a non-zero fill and channel padding are
    not what a Conv's own padding does; the opset-10 form is not read."""
    path = tmp_path / "model.onnx"
    onnx.save(_pad_then_conv(**case), str(path))
    assert fold_pads_into_convs(path) == 0
    assert _ops(path) == ["Pad", "Conv"]


@pytest.mark.parametrize("pads, conv_pads", [((0, 0, 1, 1, 0, 0, 1, 1), (0, 0, 0, 0)),
                                             ((0, 0, 1, 0, 0, 0, 2, 3), (0, 0, 0, 0)),
                                             ((0, 0, 0, 2, 0, 0, 1, 0), (1, 0, 2, 1))])
def test_a_constant_zero_pad_is_folded_into_the_conv(pads, conv_pads, tmp_path: Path):
    """Each side lands on its own axis and end (top, left, bottom, right), added to any
    padding the Conv had."""
    path = tmp_path / "model.onnx"
    onnx.save(_pad_then_conv("constant", pads=pads, conv_pads=conv_pads), str(path))
    image = np.random.default_rng(2).standard_normal((1, 1, 8, 8)).astype(np.float32)
    expected = _run(path, image)
    assert fold_pads_into_convs(path) == 1
    assert _ops(path) == ["Conv"]
    np.testing.assert_allclose(_run(path, image), expected, atol=1e-5)


def _describe(path: Path) -> None:
    """A manifest for the small network, as the export writes one."""
    image = InputSpec("image", ("N", 3, "H", "W"), size=(64, 64), mean=(0.5,) * 3,
                      std=(0.25,) * 3, colour_order="RGB")
    write_model_manifest(path, name="tiny", version="1", task="scorer", inputs=[image],
                         outputs=[OutputSpec("out", ("N", 4, "H/4", "W/4"), "stand-in")],
                         training_description="none", dataset_id="none", metrics={})


def test_folding_a_model_keeps_its_manifest_true(same_pad_network: Path, tmp_path: Path,
                                                 capsys):
    """``python -m training.fold_pads``: the manifest gets the new sha256 (the station
    verifies it) and a note; a file its manifest does not describe is refused."""
    _describe(same_pad_network)
    assert fold_pads.main([str(same_pad_network)]) == 0
    assert "3 pads folded" in capsys.readouterr().out
    manifest = load_manifest(same_pad_network.with_suffix(".yaml"))
    assert manifest.sha256 == sha256_file(same_pad_network)
    assert fold_pads.NOTE in manifest.notes
    verify_model(same_pad_network)
    assert fold_pads.main([str(same_pad_network)]) == 0
    assert "nothing to fold" in capsys.readouterr().out
    same_pad_network.write_bytes(same_pad_network.read_bytes() + b"\0")
    assert fold_pads.main([str(same_pad_network)]) == 1
    assert "does not match the sha256" in capsys.readouterr().err


def test_an_interrupted_fold_is_finished_by_running_it_again(same_pad_network: Path,
                                                             monkeypatch, capsys):
    """The manifest is written before the folded file replaces the old one; a stop in
    between leaves the old file under a manifest naming the folded one, which a second run
    completes (and any other mismatch is still refused)."""
    _describe(same_pad_network)
    original_replace = Path.replace

    def stop_before_renaming_the_model(self, target):
        if Path(target) == same_pad_network:
            raise KeyboardInterrupt
        return original_replace(self, target)

    monkeypatch.setattr(Path, "replace", stop_before_renaming_the_model)
    with pytest.raises(KeyboardInterrupt):
        fold_pads.main([str(same_pad_network)])
    monkeypatch.undo()
    with pytest.raises(Exception, match="sha256 mismatch"):
        verify_model(same_pad_network)          # the station would refuse it now
    assert fold_pads.main([str(same_pad_network)]) == 0
    assert "finished an interrupted fold" in capsys.readouterr().out
    verify_model(same_pad_network)
    assert "Pad" not in _ops(same_pad_network)
    assert not list(same_pad_network.parent.glob("*.folding*"))
