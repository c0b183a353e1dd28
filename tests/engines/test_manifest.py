"""Model manifests and the start-up gate that refuses models which must not run."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
import yaml

from engines.manifest import (ModelError, load_manifest, manifest_path_for, sha256_file,
                              verify_model, write_manifest)
from tests.engines.fakes import tiny_models


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_models.write_model(tmp_path / "models")


def edit_manifest(onnx_path: Path, edit) -> Path:
    path = manifest_path_for(onnx_path)
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_round_trip_keeps_every_field(model):
    manifest = load_manifest(manifest_path_for(model))
    assert manifest.name == "tiny" and manifest.task == "scorer"
    assert manifest.inputs[0].shape == ("N", 3, 8, 8)
    assert manifest.inputs[0].mean == (0.485, 0.456, 0.406)
    assert manifest.output("score").meaning == "mean heatmap per class"
    assert manifest.metrics == {"AP_any": 0.5}
    copy = write_manifest(manifest, model.parent / "copy.yaml")
    assert load_manifest(copy) == manifest


def test_sha256_file_matches_hashlib(model):
    assert sha256_file(model) == hashlib.sha256(model.read_bytes()).hexdigest()


def test_a_good_model_passes(model):
    assert verify_model(model).sha256 == sha256_file(model)


def test_missing_model_file_is_refused_with_its_path(tmp_path):
    missing = tmp_path / "nowhere.onnx"
    with pytest.raises(ModelError) as caught:
        verify_model(missing)
    assert caught.value.path == missing
    assert "model file missing" in str(caught.value) and str(missing) in str(caught.value)


def test_missing_manifest_is_refused(model):
    manifest_path_for(model).unlink()
    with pytest.raises(ModelError, match="manifest file missing") as caught:
        verify_model(model)
    assert caught.value.path == manifest_path_for(model)


def test_sha_mismatch_names_both_hashes(model):
    manifest_sha = load_manifest(manifest_path_for(model)).sha256
    onnx.save(tiny_models.build_model(seed=5), str(model))  # same names, other weights
    with pytest.raises(ModelError) as caught:
        verify_model(model)
    message = str(caught.value)
    assert "sha256 mismatch" in message
    assert manifest_sha in message and sha256_file(model) in message
    assert str(model) in message


def test_corrupt_onnx_is_refused_even_when_its_sha_matches(model):
    model.write_bytes(bytes(range(256)) * 8)  # random-looking bytes, not a protobuf model
    edit_manifest(model, lambda d: d.update(sha256=sha256_file(model)))
    with pytest.raises(ModelError, match="corrupt ONNX") as caught:
        verify_model(model)
    assert caught.value.path == model


def test_onnx_whose_outputs_differ_from_the_manifest_is_refused(model):
    def rename(data):
        data["outputs"][1]["name"] = "p_any"
    edit_manifest(model, rename)
    with pytest.raises(ModelError, match=r"ONNX outputs \['heatmap', 'score'\] do not match"):
        verify_model(model)


def test_onnx_whose_input_shape_differs_from_the_manifest_is_refused(model):
    edit_manifest(model, lambda d: d["inputs"][0].update(shape=["N", 3, 16, 16],
                                                           size=[16, 16]))
    with pytest.raises(ModelError, match="'image' has shape"):
        verify_model(model)


def test_manifest_naming_another_file_is_refused(model):
    edit_manifest(model, lambda d: d.update(onnx="other.onnx"))
    with pytest.raises(ModelError, match="describes file 'other.onnx'"):
        verify_model(model)


@pytest.mark.parametrize("field", ["name", "sha256", "inputs", "training_data"])
def test_manifest_missing_a_field_names_it_and_the_line(model, field):
    path = edit_manifest(model, lambda d: d.pop(field))
    with pytest.raises(ModelError) as caught:
        load_manifest(path)
    message = str(caught.value)
    assert f"manifest field {field!r}: field missing" in message
    assert str(path) in message and "(line " in message


def test_nested_field_error_points_at_its_line(model):
    path = edit_manifest(model, lambda d: d["inputs"][0].update(std=[0.2, 0, 0.2]))
    with pytest.raises(ModelError) as caught:
        load_manifest(path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if text.strip().startswith("std:"))
    assert "inputs[0].std" in str(caught.value) and f"(line {line})" in str(caught.value)


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d.update(sha256="abc"), "64 hexadecimal"),
    (lambda d: d["inputs"][0].update(dtype="float64"), "inputs[0].dtype"),
    (lambda d: d["inputs"][0].update(colour_order="CMYK"), "inputs[0].colour_order"),
    (lambda d: d["inputs"][0].update(shape=["N", 3, 8]), "4-dimensional"),
    (lambda d: d["inputs"][0].update(mean=[0.5]), "one per channel"),
    (lambda d: d.update(metrics={"AP_any": "high"}), "metrics.AP_any"),
    (lambda d: d["outputs"][0].pop("meaning"), "outputs[0].meaning"),
])
def test_invalid_fields_are_named(model, edit, expected):
    path = edit_manifest(model, edit)
    with pytest.raises(ModelError, match="manifest field") as caught:
        load_manifest(path)
    assert expected in str(caught.value)


def test_manifest_that_is_not_yaml_mapping_is_refused(model):
    manifest_path_for(model).write_text("- just\n- a list\n")
    with pytest.raises(ModelError, match="must be a YAML mapping"):
        load_manifest(manifest_path_for(model))


def test_write_manifest_is_atomic_and_leaves_no_temp_files(model, tmp_path):
    manifest = load_manifest(manifest_path_for(model))
    target = tmp_path / "out" / "m.yaml"
    write_manifest(replace(manifest, notes="second"), target)
    assert load_manifest(target).notes == "second"
    assert [p.name for p in target.parent.iterdir()] == ["m.yaml"]
