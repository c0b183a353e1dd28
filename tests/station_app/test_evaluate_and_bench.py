"""``evaluate segmenter`` and ``bench`` with the bundled models on synthetic data."""

from __future__ import annotations

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
                  "warp+segmentation+crop", "supervised", "reference", "fusion_verdict",
                  "heatmap_render", "frame to verdict"):
        assert stage in figures["stages"], stage
        assert figures["stages"][stage]["runs"] == 2
        assert stage in printed
    assert figures["peak_memory_mib"] > 0
    assert "peak memory" in printed
