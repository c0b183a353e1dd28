"""``evaluate segmenter`` and ``bench`` with the bundled models on synthetic data."""

from __future__ import annotations

import csv
import json
import re

import pytest

from station_app.cli import main
from training.synth import generate_dataset


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-data")
    generate_dataset(root, items=3, seed=21, workers=1, write_frames=False)
    return root


def test_evaluate_segmenter_prints_the_mean_iou(small_dataset, capsys):
    assert main(["evaluate", "segmenter", "--data", str(small_dataset), "--split", "test"]) == 0
    out = capsys.readouterr().out
    mean = float(re.search(r"mean mask IoU (\d\.\d+)", out).group(1))
    # The bundled model segments synthetic items well; a broken model or a broken
    # preprocessing path (wrong colour order, wrong normalisation) falls far below this.
    assert mean > 0.85, out


def test_evaluate_refuses_a_folder_without_a_split(tmp_path, capsys):
    assert main(["evaluate", "segmenter", "--data", str(tmp_path)]) == 1
    assert "query-test.parquet" in capsys.readouterr().err


def test_bench_prints_stages_and_writes_json(tmp_path, capsys):
    out_file = tmp_path / "bench.json"
    assert main(["bench", "--runs", "2", "--warmup", "1", "--json", str(out_file)]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(out_file.read_text())
    for stage in ("demosaic", "tray_check", "tray_warp", "segmentation", "crop",
                  "warp+segmentation+crop", "supervised", "item_scorer", "reference",
                  "fusion_verdict", "heatmap_render", "frame to verdict"):
        assert stage in figures["stages"], stage
        assert figures["stages"][stage]["runs"] == 2
        assert stage in printed
    assert figures["peak_memory_mib"] > 0
    assert "peak memory" in printed


def test_evaluate_scorers_writes_the_table_and_scores_as_configured(small_dataset, tmp_path,
                                                                    capsys):
    """The Table 2 rows are printed and written; ``models.score_views``,
    ``models.item_score_resolution`` and ``models.item_score_second_resolution`` from the
    station config reach the scorers (four looks, another crop size, no second look give
    other probabilities than the defaults)."""
    def column(out, name):
        with open(out / "scores.csv", newline="") as handle:
            return [float(row[name]) for row in csv.DictReader(handle)]

    def p_any(out, *extra):
        assert main(["evaluate", "scorers", "--data", str(small_dataset), "--split", "test",
                     "--out", str(out), *extra]) == 0
        return column(out, "p_any")

    default = p_any(tmp_path / "default")
    printed = capsys.readouterr().out
    assert "| fused |" in printed and "| supervised alone (tray) |" in printed
    assert (tmp_path / "default" / "table.md").read_text().strip() in printed
    config = tmp_path / "station.yaml"
    config.write_text("models:\n  score_views: 4\n")
    four = p_any(tmp_path / "four", "--config", str(config))
    assert len(default) == len(four) > 0
    assert default != pytest.approx(four, abs=1e-6)
    default_item = column(tmp_path / "default", "item_p_any")
    config.write_text("models:\n  item_score_resolution: 512\n")
    p_any(tmp_path / "item512", "--config", str(config))
    at_512 = column(tmp_path / "item512", "item_p_any")
    assert len(default_item) == len(at_512) > 0
    assert default_item != pytest.approx(at_512, abs=1e-6)
    config.write_text("models:\n  item_score_second_resolution: 0\n")
    p_any(tmp_path / "one_size", "--config", str(config))
    one_size = column(tmp_path / "one_size", "item_p_any")
    assert len(default_item) == len(one_size) > 0
    assert default_item != pytest.approx(one_size, abs=1e-6)


def test_replay_scores_as_evaluate_scorers_does(small_dataset, tmp_path):
    """Two ways to score a split offline must give the station's numbers: ``replay`` once
    decoded the queries at half size, so its item scorer saw half the resolution."""
    assert main(["evaluate", "scorers", "--data", str(small_dataset), "--split", "test",
                 "--out", str(tmp_path / "evaluate")]) == 0
    assert main(["replay", str(small_dataset), "--split", "test", "--out",
                 str(tmp_path / "replay"), "--no-report"]) == 0
    with open(tmp_path / "evaluate" / "scores.csv", newline="") as handle:
        evaluated = {row["capture_id"]: row for row in csv.DictReader(handle)}
    replayed = {record["capture_id"]: record for record in map(
        json.loads, (tmp_path / "replay" / "results.jsonl").read_text().splitlines())}
    assert sorted(replayed) == sorted(evaluated) and evaluated
    for capture_id, row in evaluated.items():
        for column in ("p_any", "item_p_any", "reference_score", "fused"):
            assert replayed[capture_id][column] == pytest.approx(float(row[column]), abs=1e-4), \
                (capture_id, column)
