"""``compare`` logic and predictions files on fabricated runs (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from station_app.cli import main
from station_app.errors import StationError
from station_app.replay import PredictionsError, read_predictions, write_predictions
from station_app.replay.comparison import compare_runs
from station_app.replay.results import ResultLog
from station_app.replay.runner import RUN_FORMAT_VERSION


def _fake_run(folder: Path, scores: dict[str, float], defects: dict[str, bool]) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({
        "format_version": RUN_FORMAT_VERSION, "source": {"root": "fake", "split": "test"},
        "models": {}, "thresholds": {"ok_below": 0.3, "damaged_above": 0.7}}))
    log = ResultLog(folder / "results.jsonl")
    for capture_id, score in scores.items():
        log.append({"capture_id": capture_id, "status": "scored", "defect": defects[capture_id],
                    "major_defect": defects[capture_id], "defect_types": [], "fused": score,
                    "p_any": score, "verdict": None})
    return folder


@pytest.fixture
def labelled() -> tuple[list[str], dict[str, bool], np.random.Generator]:
    rng = np.random.default_rng(7)
    ids = [f"c{i:03d}" for i in range(80)]
    return ids, {capture_id: i % 3 == 0 for i, capture_id in enumerate(ids)}, rng


def test_better_run_is_significantly_better_and_a_copy_is_not(tmp_path, labelled):
    ids, defects, rng = labelled
    weak = {i: float(rng.uniform()) for i in ids}
    strong = {i: float(np.clip(0.7 * defects[i] + rng.uniform(0, 0.3), 0, 1)) for i in ids}
    run_a = _fake_run(tmp_path / "a", weak, defects)
    run_b = _fake_run(tmp_path / "b", strong, defects)
    better = compare_runs(run_a, run_b, tmp_path / "ab.html", bootstrap_resamples=200)
    assert better.differences["auroc"].significant and better.differences["auroc"].difference > 0
    assert (tmp_path / "ab.html").is_file()
    same = compare_runs(run_a, _fake_run(tmp_path / "a2", weak, defects), bootstrap_resamples=200)
    assert not same.differences["auroc"].significant
    assert any("AUROC" in line and "not significant" in line for line in same.lines())


def test_runs_over_different_captures_are_refused_with_the_ids(tmp_path, labelled):
    ids, defects, _ = labelled
    run_a = _fake_run(tmp_path / "a", {i: 0.5 for i in ids}, defects)
    run_b = _fake_run(tmp_path / "b", {i: 0.5 for i in ids[:-2] + ["extra"]}, {**defects,
                                                                              "extra": False})
    with pytest.raises(StationError) as refused:
        compare_runs(run_a, run_b)
    message = str(refused.value)
    assert ids[-1] in message and ids[-2] in message and "extra" in message


def test_predictions_with_unknown_or_missing_ids_are_refused_listing_them(tmp_path):
    path = write_predictions(tmp_path / "p.csv", {"a": 0.1, "b": 0.9, "stranger": 0.5})
    assert read_predictions(path, ["a", "b", "stranger"]) == pytest.approx(
        {"a": 0.1, "b": 0.9, "stranger": 0.5})
    with pytest.raises(PredictionsError) as refused:
        read_predictions(path, ["a", "b", "c"])
    assert "unknown capture id(s): stranger" in str(refused.value)
    assert "missing capture id(s): c" in str(refused.value)


@pytest.mark.parametrize("text, problem", [
    ("id,score\na,0.1\n", "header"),
    ("capture_id,pred\na,1.5\n", "not in [0, 1]"),
    ("capture_id,pred\na,x\n", "not a number"),
    ("capture_id,pred\na,0.1\na,0.2\n", "repeated capture id(s): a"),
])
def test_malformed_predictions_are_refused(tmp_path, text, problem):
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(PredictionsError, match=problem.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        read_predictions(tmp_path / "p.csv")


def test_compare_command_takes_a_predictions_file_for_run_b(tmp_path, labelled, capsys):
    ids, defects, rng = labelled
    run_a = _fake_run(tmp_path / "a", {i: float(rng.uniform()) for i in ids}, defects)
    good = write_predictions(tmp_path / "b.csv", {i: float(defects[i]) for i in ids})
    assert main(["compare", str(run_a), str(good), "--resamples", "50"]) == 0
    assert "AUROC" in capsys.readouterr().out
    bad = write_predictions(tmp_path / "bad.csv", {i: 0.5 for i in ids[1:] + ["ghost"]})
    assert main(["compare", str(run_a), str(bad)]) == 1
    error = capsys.readouterr().err
    assert "ghost" in error and ids[0] in error
