"""A run folder as report data, and its ``report.html``.

Everything comes from ``run.json`` and ``results.jsonl`` (plus the image files they name),
so a report can be rebuilt, and two runs compared, without re-scoring anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from station_app.replay.results import SCORED, SKIPPED, ResultLog
from station_app.replay.runner import read_run_info, run_files
from station_app.report import (CaptureImages, CaptureRow, ReportData, SkippedCapture,
                                render_report)

PRIMARY_SCORER = "fused"


def _scores(record: dict[str, Any]) -> dict[str, float]:
    scores = {PRIMARY_SCORER: record.get("fused"), "supervised p_any": record.get("p_any"),
              "reference": record.get("reference_score")}
    return {name: float(value) for name, value in scores.items() if value is not None}


def _model_label(model: dict[str, Any]) -> str:
    sha = str(model.get("sha256") or "")
    return (f"{model.get('name', '')} {model.get('version', '')}".strip()
            + (f" (sha256 {sha[:12]})" if sha else ""))


def load_run(run_dir: Path, title: str | None = None, with_images: bool = True,
             bootstrap_resamples: int = 1000) -> ReportData:
    """The run's report data: scored captures as rows, skipped ones with their reasons."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    records = ResultLog(run_files(run_dir)["results"]).read()
    rows, skipped = [], []
    for record in records:
        if record["status"] == SKIPPED:
            skipped.append(SkippedCapture(record["capture_id"], record["reason"],
                                          record.get("path") or ""))
            continue
        if record["status"] != SCORED:
            continue
        images = CaptureImages()
        if with_images:
            heatmap = record.get("heatmap")
            images = CaptureImages(tray=record.get("image"),
                                   heatmap=str(run_dir / heatmap) if heatmap else None,
                                   crop=record.get("crop"),
                                   references=list(record.get("references") or ()),
                                   heatmap_on="tray")
        rows.append(CaptureRow(
            capture_id=record["capture_id"], item_identifier=record.get("item_identifier", ""),
            material=record.get("material", ""), defect=bool(record["defect"]),
            major=bool(record["major_defect"]), scores=_scores(record),
            defect_types=tuple(record.get("defect_types") or ()),
            # The data set flags damage-like artwork on defective captures too; the report's
            # look-alikes are the good ones.
            lookalike=bool(record.get("lookalike")) and not bool(record["defect"]),
            verdict=record.get("verdict"),
            images=images))
    source = info.get("source", {})
    thresholds = info.get("thresholds")
    models = {name: _model_label(model) for name, model in (info.get("models") or {}).items()
              if isinstance(model, dict)}
    return ReportData(
        title=title or f"Replay {run_dir.name}", captures=rows,
        scorers=[PRIMARY_SCORER, "supervised p_any", "reference"],
        primary_scorer=PRIMARY_SCORER,
        data_set=f"{source.get('root', '')} ({source.get('split', '')})",
        created=str(info.get("started") or ""), model_versions=models,
        thresholds=(thresholds["ok_below"], thresholds["damaged_above"]) if thresholds else None,
        skipped=skipped, bootstrap_resamples=bootstrap_resamples)


def all_capture_ids(run_dir: Path) -> list[str]:
    """Every capture the run covered, scored or skipped."""
    return [r["capture_id"] for r in ResultLog(run_files(run_dir)["results"]).read()]


def write_run_report(run_dir: Path, bootstrap_resamples: int = 1000) -> Path:
    return render_report(load_run(run_dir, bootstrap_resamples=bootstrap_resamples),
                         run_files(run_dir)["report"])
