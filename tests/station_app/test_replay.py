"""``station-app replay``: run folder contents, resume after an interrupt, skipped captures,
threshold fitting, and ``compare`` on two real runs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from engines.preprocess import read_rgb
from engines.reference import REFERENCE_READ_REDUCTION, file_identity
from engines.scoring import DEFAULT_ITEM_SECOND_SIZE, DEFAULT_ITEM_SIZE, DEFAULT_VIEWS
from station_app.cli import main
from station_app.config import load_config
from station_app.replay import ReplayOptions, read_predictions, run_replay
from station_app.replay.results import ResultLog
from station_app.replay.run_report import load_run, write_run_report
from station_app.replay.runner import _load
from station_app.replay.setup import open_replay_models
from station_app.replay.source import DatasetSource

SPLIT = "train"          # 5 queries, 1 defective, 2 references for items=3, seed=1


@pytest.fixture(scope="module")
def scorer_onnx(tmp_path_factory) -> Path:
    """A small untrained scorer export (the trunk's ImageNet features are real)."""
    torch = pytest.importorskip("torch")
    from training.efficientnet_lite import load_imagenet_lite0
    from training.scorer.export import export_scorer_onnx
    from training.scorer.model import DefectScorer
    from training.scorer.train import ScorerOptions, _write_manifest

    torch.manual_seed(0)
    path = export_scorer_onnx(DefectScorer(load_imagenet_lite0()),
                              tmp_path_factory.mktemp("scorer") / "scorer.onnx", 64)
    _write_manifest(path, Path("synthetic"), ScorerOptions(size=64), {})
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from training.synth import generate_dataset

    root = tmp_path_factory.mktemp("data")
    generate_dataset(root, items=3, seed=1, workers=1, write_frames=False)
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bank-cache")


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, dataset, scorer_onnx, cache_dir) -> Path:
    out = tmp_path_factory.mktemp("runs") / "full"
    assert _replay(dataset, out, scorer_onnx, cache_dir) == 0
    return out


def _replay(data: Path, out: Path, scorer: Path, cache: Path, *extra: str) -> int:
    return main(["replay", str(data), "--out", str(out), "--split", SPLIT, "--scorer",
                 str(scorer), "--cache", str(cache), *extra])


def _records(run: Path) -> list[dict]:
    return ResultLog(run / "results.jsonl").read()


def test_replay_writes_predictions_results_run_info_and_a_self_contained_report(full_run, dataset):
    expected_ids = [c.capture_id for c in DatasetSource(dataset, SPLIT).captures()]
    records = _records(full_run)
    assert sorted(r["capture_id"] for r in records) == sorted(expected_ids)
    assert all(r["status"] == "scored" for r in records)
    predictions = read_predictions(full_run / "predictions.csv", expected_ids)
    for record in records:
        assert predictions[record["capture_id"]] == pytest.approx(record["fused"], abs=1e-6)
        assert set(record["p_types"]) >= {"penetration", "missing_unit"}
        assert record["verdict"] in {"OK", "REVIEW", "DAMAGED"}
        assert record["reference_score"] is not None and record["reference_count"] == 2
        assert {"supervised", "reference", "read"} <= set(record["timings_ms"])
        assert (full_run / record["heatmap"]).is_file()
    info = json.loads((full_run / "run.json").read_text())
    assert info["status"] == "finished" and info["source"]["split"] == SPLIT
    assert info["counts"] == {"captures": 5, "scored": 5, "skipped": 0, "remaining": 0,
                              "skip_reasons": {}}
    assert len(info["models"]["scorer"]["sha256"]) == 64
    html = (full_run / "report.html").read_text()
    assert "data:image/jpeg;base64," in html                       # galleries embedded
    assert "src=\"http" not in html and "<link" not in html and "src=\"/" not in html


def test_queries_are_read_at_full_size_as_the_station_sees_them(dataset):
    """The item scorer's crop is cut from the tray as the station holds it (full size), so
    a replay must not halve the query; references are read as the fusion was fitted."""
    capture = next(c for c in DatasetSource(dataset, SPLIT).captures() if c.references)
    loaded = _load(capture, ReplayOptions())
    full = read_rgb(str(capture.image))
    assert loaded.item.tray_image.shape == full.shape
    assert loaded.item.mask.shape == full.shape[:2]
    reference_image, reference_mask = loaded.item.references[0].load()
    reference_full = read_rgb(str(capture.references[0].image))
    assert reference_image.shape[0] == reference_full.shape[0] // REFERENCE_READ_REDUCTION
    assert reference_mask.shape == reference_image.shape[:2]
    # Its bank is keyed apart from the station's full-size one, should they share a cache.
    paths = (capture.references[0].image, capture.references[0].mask)
    assert loaded.item.references[0].identity == file_identity(
        *paths, reduction=REFERENCE_READ_REDUCTION)
    assert file_identity(*paths) != file_identity(*paths, reduction=REFERENCE_READ_REDUCTION)
    assert file_identity(*paths) == file_identity(*paths, reduction=1)


def test_the_report_counts_only_good_captures_as_look_alikes(tmp_path, full_run):
    """The data set flags damage-like artwork on defective captures too; the report's
    look-alike rows (a part of the good items' verdicts) must not count those."""
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    for record in records:
        record["lookalike"] = True
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = load_run(run, with_images=False).captures
    assert [row.lookalike for row in rows] == [not r["defect"] for r in records]
    good = sum(not r["defect"] for r in records)
    assert 0 < good < len(records)
    html = write_run_report(run, bootstrap_resamples=10).read_text()
    verdict_rows = html.split("Verdicts against the truth")[1].split("</table>")[0]
    lookalike_row = verdict_rows.split("of which look-alikes")[1].split("</tr>")[0]
    assert f">{good}<" in lookalike_row


def test_interrupted_replay_resumes_without_scoring_a_capture_twice(tmp_path, dataset,
                                                                    scorer_onnx, cache_dir,
                                                                    full_run):
    models = open_replay_models(load_config(None), scorer_onnx, cache_dir=cache_dir)
    inspected: list[int] = []
    original = models.inspector.inspect_batch

    def counting(captures):
        inspected.append(len(captures))
        return original(captures)

    models.inspector.inspect_batch = counting
    source, options = DatasetSource(dataset, SPLIT), ReplayOptions(batch_size=2)

    def interrupt_after_two(done, total, note=""):
        if done == 2:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    first = run_replay(source, models.inspector, out, models.info, options,
                       progress=interrupt_after_two)
    assert first.interrupted and first.scored == 2
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    second = run_replay(source, models.inspector, out, models.info, options)
    assert not second.interrupted and second.resumed == 2 and second.scored == 5
    ids = [r["capture_id"] for r in _records(out)]
    assert len(ids) == len(set(ids)) == 5
    assert sum(inspected) == 5                                     # nobody scored twice
    resumed = read_predictions(out / "predictions.csv")
    uninterrupted = read_predictions(full_run / "predictions.csv")
    assert resumed.keys() == uninterrupted.keys()
    for capture_id, value in uninterrupted.items():
        assert resumed[capture_id] == pytest.approx(value, abs=2e-6)


def _fusion_warnings(caplog, config_text: str, tmp_path: Path, fusion_path: Path | None = None):
    config = tmp_path / "station.yaml"
    config.write_text(config_text or "{}\n")
    caplog.clear()
    with caplog.at_level("WARNING", logger="station_app.replay"):
        models = open_replay_models(load_config(config), cache_dir=tmp_path / "cache",
                                    fusion_path=fusion_path)
    return models, [r.getMessage() for r in caplog.records if "fusion" in r.getMessage()]


@pytest.mark.parametrize("setting, value, fix", [
    ("item_score_resolution", 512, "--item-size 512"),
    ("item_score_views", 1, "--item-views 1"),
    ("item_score_second_resolution", 0, "--item-second-size 0"),
    ("score_views", 2, "--views 2"),
    ("item_scorer", '""', "models.item_scorer"),
])
def test_settings_other_than_the_fusions_are_warned_about(tmp_path, caplog, setting, value, fix):
    """The bundled fusion was fitted with the bundled models at the default settings: they
    open without a warning; another setting still scores, with a warning naming the fix."""
    models, messages = _fusion_warnings(caplog, "", tmp_path)
    assert messages == []
    assert models.info["scoring"]["item_resolution"] == DEFAULT_ITEM_SIZE
    models, messages = _fusion_warnings(caplog, f"models:\n  {setting}: {value}\n", tmp_path)
    assert len(messages) == 1, messages
    assert f"models.{setting}" in messages[0] and fix in messages[0]
    _assert_refit_command_names_the_configuration(messages[0], models)


def _assert_refit_command_names_the_configuration(message: str, models) -> None:
    """The printed re-fit is a command fusion_fit accepts, with every setting the station
    uses spelled out and the warned-about file as its output."""
    import shlex

    from training.fusion_fit import build_parser

    command = message.split("re-fit the fusion (", 1)[1].rsplit("), then the thresholds", 1)[0]
    words = shlex.split(command.split(" (DATA:")[0])
    assert words[:3] == ["python", "-m", "training.fusion_fit"]
    args = build_parser().parse_args(words[3:])
    scoring = models.info["scoring"]
    assert args.views == scoring["views"]
    assert str(args.out) == message.split(": ", 1)[0]
    if scoring["item_views"] is None:
        assert args.item_scorer == "none"
    else:
        assert args.item_scorer == models.info["models"]["item_scorer"]["path"]
        assert (args.item_views, args.item_size, args.item_second_size) == (
            scoring["item_views"], scoring["item_resolution"], scoring["item_second_resolution"])


@pytest.mark.parametrize("edit, expected", [
    ({"provenance": {"scorer_sha256": "0" * 64}}, "another tray scorer"),
    ({"provenance": {"item_scorer_sha256": "0" * 64}}, "another item scorer"),
    ({"coefficients": {"logit_item_p_any": 0.0, "logit_item_p_major": 0.0}}, "no weight"),
    ({"provenance": {"item_second_resolution": 640}},
     "gets a second look at 768 px (models.item_score_second_resolution) but the fusion was "
     "fitted with a second look at 640 px"),
    # A fusion fitted before the second look existed was fitted without one.
    ({"provenance": {"item_second_resolution": None}},
     "but the fusion was fitted with no second look"),
])
def test_a_fusion_fitted_with_other_models_is_warned_about(tmp_path, caplog, edit, expected):
    import yaml

    from station_app.models import model_path

    bundled = model_path(load_config().models, "scorer").with_name("fusion.yaml")
    data = yaml.safe_load(bundled.read_text())
    for section, values in edit.items():
        data[section].update(values)
        for key in [key for key, value in values.items() if value is None]:
            del data[section][key]
    edited = tmp_path / "fusion.yaml"
    edited.write_text(yaml.safe_dump(data))
    models, messages = _fusion_warnings(caplog, "", tmp_path, fusion_path=edited)
    assert len(messages) == 1 and expected in messages[0], messages
    _assert_refit_command_names_the_configuration(messages[0], models)
    assert str(edited) in messages[0]


def test_a_fusion_without_provenance_or_item_weight_is_warned_about_once(tmp_path, caplog):
    """A hand-made fusion (no provenance) on the tray scorer alone: nothing to compare, no
    warning. A fusion that gives the configured item scorer no weight says so once, not
    also about item settings it does not use."""
    from engines.fusion import FusionModel, save_fusion

    fusion = tmp_path / "fusion.yaml"
    save_fusion(FusionModel(0.0, {"logit_p_any": 1.0}), fusion)
    _, messages = _fusion_warnings(caplog, 'models:\n  item_scorer: ""\n', tmp_path, fusion)
    assert messages == []
    save_fusion(FusionModel(0.0, {"logit_p_any": 1.0}, provenance={"item_views": 2}), fusion)
    _, messages = _fusion_warnings(caplog, "models:\n  item_score_views: 1\n", tmp_path, fusion)
    assert len(messages) == 1 and "no weight" in messages[0], messages


def test_resume_with_other_settings_is_refused(tmp_path, dataset, scorer_onnx, cache_dir,
                                               full_run, capsys):
    out = tmp_path / "copy"
    shutil.copytree(full_run, out)
    assert _replay(dataset, out, scorer_onnx, cache_dir, "--ok-below", "0.1") == 1
    assert "other settings (differing: thresholds.ok_below)" in capsys.readouterr().err
    # Another scoring size (models.score_resolution) gives other scores: refused too.
    config = tmp_path / "station.yaml"
    config.write_text("models:\n  score_resolution: 384\n")
    assert _replay(dataset, out, scorer_onnx, cache_dir, "--config", str(config)) == 1
    assert "other settings" in capsys.readouterr().err
    # So do other test-time views (models.score_views).
    config.write_text("models:\n  score_views: 4\n")
    assert _replay(dataset, out, scorer_onnx, cache_dir, "--config", str(config)) == 1
    assert "other settings" in capsys.readouterr().err
    # And another item-crop size (models.item_score_resolution).
    config.write_text("models:\n  item_score_resolution: 512\n")
    assert _replay(dataset, out, scorer_onnx, cache_dir, "--config", str(config)) == 1
    assert "other settings (differing: item_resolution)" in capsys.readouterr().err
    # And another second look at it (models.item_score_second_resolution).
    config.write_text("models:\n  item_score_second_resolution: 0\n")
    assert _replay(dataset, out, scorer_onnx, cache_dir, "--config", str(config)) == 1
    assert "other settings (differing: item_second_resolution)" in capsys.readouterr().err
    # A run from before the query was read at full size names the options that changed.
    info = json.loads((out / "run.json").read_text())
    options = info["options"]
    info["options"] = {**{k: v for k, v in options.items() if not k.endswith("_reduction")},
                       "read_reduction": 2}
    (out / "run.json").write_text(json.dumps(info))
    assert _replay(dataset, out, scorer_onnx, cache_dir) == 1
    assert ("differing: options.query_reduction, options.read_reduction, "
            "options.reference_reduction)") in capsys.readouterr().err
    scoring = json.loads((full_run / "run.json").read_text())["scoring"]
    assert scoring["resolution"] == 512 and scoring["views"] == DEFAULT_VIEWS
    assert scoring["item_resolution"] == DEFAULT_ITEM_SIZE
    assert scoring["item_second_resolution"] == DEFAULT_ITEM_SECOND_SIZE


def test_torn_last_line_is_dropped_and_that_capture_rescored(tmp_path, dataset, scorer_onnx,
                                                             cache_dir, full_run):
    out = tmp_path / "torn"
    shutil.copytree(full_run, out)
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines[:3]) + lines[3][:40])   # crash mid-write
    assert _replay(dataset, out, scorer_onnx, cache_dir) == 0
    ids = [r["capture_id"] for r in _records(out)]
    assert len(ids) == len(set(ids)) == 5


def test_missing_and_unreadable_images_are_skipped_and_counted(tmp_path, dataset, scorer_onnx,
                                                               cache_dir):
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    captures = DatasetSource(data, SPLIT).captures()
    captures[1].image.unlink()
    captures[3].image.write_bytes(b"not a jpeg")
    out = tmp_path / "run"
    assert _replay(data, out, scorer_onnx, cache_dir) == 0
    by_id = {r["capture_id"]: r for r in _records(out)}
    assert len(by_id) == 5                                         # none silently dropped
    assert by_id[captures[1].capture_id]["status"] == "skipped"
    assert by_id[captures[1].capture_id]["reason"] == "image missing"
    assert by_id[captures[3].capture_id]["reason"] == "image unreadable"
    info = json.loads((out / "run.json").read_text())
    assert info["counts"]["skipped"] == 2 and info["counts"]["scored"] == 3
    with open(out / "predictions.csv") as handle:
        predicted = {row["capture_id"] for row in csv.DictReader(handle)}
    assert captures[1].capture_id not in predicted and len(predicted) == 3
    html = (out / "report.html").read_text()
    assert "Skipped captures (2)" in html and "image missing" in html


def test_fit_thresholds_saves_a_new_profile_version_with_provenance(tmp_path, dataset,
                                                                   scorer_onnx, cache_dir,
                                                                   full_run, capsys):
    from calibration.profile import CameraProfile, ProfileStore, StationProfile

    store = ProfileStore(tmp_path / "profiles")
    store.save_new_version(StationProfile(station_id="bay-3",
                                          camera=CameraProfile(exposure_us=8000)),
                           "ana", "calibrated")
    out = tmp_path / "run"
    shutil.copytree(full_run, out)    # already complete: only the fit runs
    assert _replay(dataset, out, scorer_onnx, cache_dir, "--fit-thresholds", "max_f1",
                   "--profile-dir", str(store.root), "--author", "ben") == 0
    assert "saved as profile v0002" in capsys.readouterr().out
    current = store.current()
    assert (current.version, current.author, current.based_on) == (2, "ben", 1)
    assert current.camera.exposure_us == 8000          # the rest of the profile is kept
    fused = [r["fused"] for r in _records(out)]
    assert min(fused) <= current.thresholds.ok_below <= max(fused)
    provenance = current.thresholds.provenance
    assert "max_f1" in provenance.method and str(out) in provenance.data_set
    assert set(provenance.model_versions) >= {"scorer"}
    assert store.get(1).thresholds is None             # history is not rewritten
    # A method that cannot be fitted is refused before anything is scored.
    assert _replay(dataset, tmp_path / "never", scorer_onnx, cache_dir,
                   "--fit-thresholds", "fpr:lots") == 1
    assert "is not a number" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_compare_two_runs_and_refuse_different_capture_sets(tmp_path, dataset, scorer_onnx,
                                                            cache_dir, full_run, capsys):
    other = tmp_path / "other"
    assert _replay(dataset, other, scorer_onnx, cache_dir, "--segmenter-masks") == 0
    capsys.readouterr()
    assert main(["compare", str(full_run), str(other), "--out", str(tmp_path / "c.html"),
                 "--resamples", "50"]) == 0
    printed = capsys.readouterr().out
    assert "AP_any" in printed and "significant" in printed
    assert (tmp_path / "c.html").read_text().count("Verdict changes") == 1
    partial = tmp_path / "partial"
    assert _replay(dataset, partial, scorer_onnx, cache_dir, "--limit", "3") == 0
    capsys.readouterr()
    assert main(["compare", str(full_run), str(partial)]) == 1
    error = capsys.readouterr().err
    missing = [c.capture_id for c in DatasetSource(dataset, SPLIT).captures()][3:]
    assert "only in A" in error and all(capture_id in error for capture_id in missing)


def test_the_item_scorer_is_configurable_and_a_missing_one_is_named(tmp_path, dataset,
                                                                    scorer_onnx, cache_dir,
                                                                    full_run, capsys):
    assert all(r["item_p_any"] is not None for r in _records(full_run))   # bundled, default
    info = json.loads((full_run / "run.json").read_text())
    assert info["models"]["item_scorer"]["name"] == "item_scorer"
    assert info["scoring"]["item_views"] == load_config(None).models.item_score_views

    off = tmp_path / "off.yaml"
    off.write_text('models:\n  item_scorer: ""\n')
    assert _replay(dataset, tmp_path / "off", scorer_onnx, cache_dir, "--config", str(off)) == 0
    assert all(r["item_p_any"] is None for r in _records(tmp_path / "off"))
    assert "item_scorer" not in json.loads((tmp_path / "off" / "run.json").read_text())["models"]

    missing = tmp_path / "missing.yaml"
    missing.write_text("models:\n  item_scorer: no_such_model\n")
    capsys.readouterr()
    assert _replay(dataset, tmp_path / "missing", scorer_onnx, cache_dir,
                   "--config", str(missing)) == 1
    error = capsys.readouterr().err
    assert "no_such_model.onnx" in error and 'models.item_scorer: ""' in error


def test_a_run_from_before_the_second_look_resumes_as_one_without_it():
    """run.json of a replay made before models.item_score_second_resolution existed: it
    scored the item crop without a second look, so only that setting resumes it."""
    from station_app.replay.runner import _identity_of
    before = {"scoring": {"item_views": 2, "item_resolution": 576}}
    assert _identity_of(before)["item_second_resolution"] == 0
    assert _identity_of({"scoring": {"item_views": None}})["item_second_resolution"] is None
