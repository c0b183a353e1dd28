"""Replay reports: one self-contained HTML file with the right numbers, charts and tiles.

``python -m tests.station_app.test_report OUT_DIR`` renders the sample report and a
comparison from the fabricated run below, for looking at in a browser.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.metrics import benchmark_metrics
from station_app.report import (CaptureImages, CaptureRow, ReportData, SkippedCapture,
                                render_comparison, render_report)

MATERIALS = ("cardboard", "plastic_loose_bag", "book_paper", "paper", "plastic_hard",
             "plastic_tight_wrap")
TYPES = ("deformation", "penetration", "deconstruction", "superficial", "spillage",
         "actuation", "missing_unit")
TYPE_VISIBILITY = {"deformation": 0.6, "penetration": 1.2, "deconstruction": 1.8,
                   "superficial": 0.4, "spillage": 1.0, "actuation": 1.1, "missing_unit": 0.2}


def sigmoid(value):
    return 1 / (1 + np.exp(-value))


def fake_images(rng: np.random.Generator, index: int, defect: bool) -> CaptureImages:
    """A grey tray with a coloured box item; a heat blob where the 'damage' is."""
    tray = np.full((320, 320, 3), (70, 74, 80), np.uint8)
    colour = tuple(int(c) for c in rng.integers(90, 230, 3))
    x, y = (int(v) for v in rng.integers(60, 140, 2))
    w, h = (int(v) for v in rng.integers(90, 150, 2))
    cv2.rectangle(tray, (x, y), (x + w, y + h), colour, -1)
    cv2.putText(tray, f"#{index}", (x + 8, y + 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                (20, 20, 20), 2)
    crop = cv2.resize(tray[y - 10:y + h + 10, x - 10:x + w + 10], (160, 160))
    yy, xx = np.mgrid[0:64, 0:64]
    cx, cy = rng.integers(12, 52, 2)
    heat = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 7.0 ** 2)) * (0.9 if defect else 0.5)
    if defect:
        cv2.line(crop, (40, 40), (120, 110), (30, 20, 20), 5)
    reference = cv2.resize(tray[y - 10:y + h + 10, x - 10:x + w + 10], (160, 160))
    return CaptureImages(tray=tray, heatmap=heat.astype(np.float32), crop=crop,
                         references=[reference] if index % 3 else [])


def fabricate_run(seed: int = 0, size: int = 600, title: str = "Replay of synthetic test split",
                  improvement: float = 0.0, image_dir: Path | None = None) -> ReportData:
    """Realistic-looking scores for two scorers; images only where galleries will look."""
    rng = np.random.default_rng(seed)
    rows = []
    noise = rng.normal(size=(size, 2))
    for index in range(size):
        defect = bool(rng.random() < 0.3)
        major = defect and bool(rng.random() < 0.35)
        types = tuple(sorted(set(rng.choice(TYPES, size=int(rng.integers(1, 3)),
                                            p=[.35, .2, .12, .13, .05, .1, .05])))) \
            if defect else ()
        lookalike = (not defect) and bool(rng.random() < 0.07)
        signal = (max(TYPE_VISIBILITY[t] for t in types) if types else 0.0) + 0.9 * major
        supervised = sigmoid(-1.6 + 1.6 * signal + 1.2 * lookalike + 0.9 * noise[index, 0])
        reference = sigmoid(-1.0 + (0.9 + improvement) * signal + 0.3 * lookalike
                            + 1.1 * noise[index, 1])
        rows.append(CaptureRow(
            capture_id=f"cap-{index:05d}", item_identifier=f"item-{index // 2:04d}",
            material=MATERIALS[int(rng.integers(len(MATERIALS)))], defect=defect, major=major,
            scores={"supervised": float(supervised), "reference": float(reference)},
            defect_types=types, lookalike=lookalike))
    run = ReportData(title=title, captures=rows, data_set="synthetic-v1/test",
                     created="2025-03-04 10:20 UTC",
                     model_versions={"scorer": "0.3.1", "segmenter": "1.0.0"},
                     thresholds=(0.35, 0.75), bootstrap_resamples=100, seed=1,
                     gallery_size=6,
                     skipped=[SkippedCapture("cap-x0001", "query image missing",
                                             "query/cap-x0001.jpg"),
                              SkippedCapture("cap-x0002", "unreadable JPEG",
                                             "query/cap-x0002.jpg"),
                              SkippedCapture("cap-x0003", "query image missing",
                                             "query/cap-x0003.jpg")])
    scores = run.scores(run.primary())
    defect, _ = run.labels()
    worst = set(np.flatnonzero(~defect)[np.argsort(-scores[~defect])][:8]) | \
        set(np.flatnonzero(defect)[np.argsort(scores[defect])][:8])
    for index in sorted(worst):
        rows[index].images = fake_images(rng, index, rows[index].defect)
        if image_dir is not None and index % 2:   # some as files, one file missing
            image_dir.mkdir(parents=True, exist_ok=True)
            tray_path = image_dir / f"{rows[index].capture_id}.jpg"
            cv2.imwrite(str(tray_path), cv2.cvtColor(rows[index].images.tray, cv2.COLOR_RGB2BGR))
            rows[index].images.tray = tray_path
            rows[index].images.crop = image_dir / f"{rows[index].capture_id}-gone.jpg"
    return run


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    run = fabricate_run(image_dir=folder / "images")
    path = render_report(run, folder / "report.html")
    return run, path, path.read_text(encoding="utf-8")


def test_report_is_one_self_contained_file(sample):
    _, path, html = sample
    assert [p.name for p in path.parent.iterdir() if p.is_file()] == ["report.html"]
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "<script" not in html and "@import" not in html
    assert "url(" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources, "the galleries should embed images"
    assert all(source.startswith("data:image/jpeg;base64,") for source in sources)
    assert all(re.match(r"data:image/jpeg;base64,/9j/", source) for source in sources)


def test_report_table_has_the_metrics_of_every_scorer(sample):
    run, _, html = sample
    defect, major = run.labels()
    metrics_part = html.split('id="metrics"')[1].split('id="curves"')[0]
    for scorer in run.scorer_names():
        expected = benchmark_metrics(defect, major, run.scores(scorer))
        for cell in expected.as_row():
            assert cell in metrics_part, (scorer, cell)
    assert re.search(r"\[\d+\.\d\d, \d+\.\d\d\]", metrics_part), "intervals are shown"


def test_report_counts_and_lists_skipped_captures(sample):
    run, _, html = sample
    assert "<b>3</b>skipped" in html
    skipped_part = html.split('id="skipped"')[1]
    assert "cap-x0002" in skipped_part and "unreadable JPEG" in skipped_part
    assert "2 × query image missing" in skipped_part
    assert f"<b>{len(run.captures)}</b>captures scored" in html


def test_report_galleries_show_the_worst_captures_first(sample):
    run, _, html = sample
    scores = run.scores("supervised")
    defect, _ = run.labels()
    worst_good = run.captures[int(np.flatnonzero(~defect)[np.argmax(scores[~defect])])]
    worst_bad = run.captures[int(np.flatnonzero(defect)[np.argmin(scores[defect])])]
    fp_part = html.split('id="false-positives"')[1].split('id="false-negatives"')[0]
    fn_part = html.split('id="false-negatives"')[1].split('id="skipped"')[0]
    assert fp_part.index(worst_good.capture_id) < fp_part.index("cap-", fp_part.index(
        worst_good.capture_id) + 1)
    assert worst_bad.capture_id in fn_part and worst_good.capture_id not in fn_part
    assert fp_part.count('class="tile"') == run.gallery_size
    assert "missing: cap-" in html  # a tile whose crop file is gone says so


def test_report_has_charts_and_breakdowns(sample):
    _, _, html = sample
    assert html.count("<svg") >= 5  # PR, ROC, 2 histograms, threshold curves
    for text in ("Per defect type", "Per material", "Per severity", "Look-alikes",
                 "penetration", "cardboard", "ok_below 0.35", "max_f1", "Verdicts against"):
        assert text in html, text


def test_report_on_degenerate_run_says_why_instead_of_crashing(tmp_path):
    run = fabricate_run(size=40)
    for row in run.captures:
        row.defect, row.major, row.defect_types = False, False, ()
    html = render_report(run, tmp_path / "r.html").read_text()
    assert "no positives" in html


def test_comparison_marks_a_real_improvement_significant(tmp_path):
    run_a = fabricate_run(seed=3, title="baseline")
    run_b = fabricate_run(seed=3, title="better reference model", improvement=1.5)
    for run in (run_a, run_b):
        run.primary_scorer = "reference"
    run_b.captures = run_b.captures[:-5]  # B missed a few captures
    path = render_comparison(run_a, run_b, tmp_path / "compare.html")
    html = path.read_text()
    assert "5 capture(s) only in A" in html
    ap_row = html.split("AP_any [%]</td>")[1].split("</tr>")[0]
    assert "yes" in ap_row and "+" in ap_row
    assert "changed verdict" in html and "→" in html
    assert all(s.startswith("data:") for s in re.findall(r'src="([^"]*)"', html))


def test_comparison_of_a_run_with_itself_finds_nothing(tmp_path):
    run = fabricate_run(seed=4, size=200)
    html = render_comparison(run, run, tmp_path / "same.html").read_text()
    assert '<span class="yes">' not in html
    assert "0 capture(s) changed verdict" in html


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/report-sample")
    sample_run = fabricate_run(image_dir=out / "images")
    sample_run.bootstrap_resamples = 1000
    print(render_report(sample_run, out / "report.html"))
    better = fabricate_run(title="reference model v2", improvement=1.5)
    for r in (sample_run, better):
        r.primary_scorer = "reference"
    print(render_comparison(sample_run, better, out / "compare.html"))
