"""The replay loop: score every capture of a source into a run folder, resumably.

Run folder layout::

    RUN/run.json          what was replayed, with which models, thresholds and options;
                          started/finished, counts (rewritten atomically at the end)
    RUN/results.jsonl     one record per capture: every score, verdict, timings, or the
                          reason it was skipped (append-only; the run resumes from it)
    RUN/predictions.csv   capture_id,pred (the fused score) of every scored capture
    RUN/heatmaps/ID.png   the verdict heatmap of each scored capture (for the report)

A rerun with the same ``--out`` skips the captures already in ``results.jsonl``; it is
refused when the source, models or thresholds differ from the ones the run started with,
so one run never mixes two configurations. An interrupt (``should_stop``, or a
KeyboardInterrupt from the progress callback) lets the batch in flight be written, since
it is already scored, then stops; the run resumes where it stopped.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from engines.files import write_atomic
from engines.inspection import CaptureInput, CaptureScores, Inspector, ReferenceImage, Refused
from engines.preprocess import read_mask, read_rgb
from engines.reference import REFERENCE_READ_REDUCTION
from station_app.errors import StationError
from station_app.replay.predictions import write_predictions
from station_app.replay.results import SCORED, SKIPPED, ResultLog
from station_app.replay.source import ReplayCapture, ReplaySource

RUN_FORMAT_VERSION = 1
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay; all of it goes into ``run.json`` (and must match on resume)."""

    batch_size: int = 4
    limit: int | None = None
    # Queries decoded at full size, as the station sees its trays (the item scorer's crop
    # is cut from them); references at half size, as the fusion was fitted (their banks
    # embed 320 px crops, so the full size adds nothing but decoding time).
    query_reduction: int = 1
    reference_reduction: int = REFERENCE_READ_REDUCTION
    segmenter_masks: bool = False


@dataclass
class ReplaySummary:
    run_dir: Path
    total: int
    scored: int
    skipped: int
    resumed: int                 # captures found done in results.jsonl at start
    seconds: float
    interrupted: bool = False
    skip_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def captures_per_second(self) -> float:
        new = self.scored + self.skipped - self.resumed
        return new / self.seconds if self.seconds > 0 else math.nan


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run_files(run_dir: Path) -> dict[str, Path]:
    run_dir = Path(run_dir)
    return {"run": run_dir / "run.json", "results": run_dir / "results.jsonl",
            "predictions": run_dir / "predictions.csv", "heatmaps": run_dir / "heatmaps",
            "report": run_dir / "report.html"}


def read_run_info(run_dir: Path) -> dict[str, Any]:
    path = run_files(run_dir)["run"]
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StationError(f"{run_dir} is not a replay run (no readable run.json: {error})") from error
    if not isinstance(info, dict) or info.get("format_version") != RUN_FORMAT_VERSION:
        raise StationError(f"{path}: not a replay run of format {RUN_FORMAT_VERSION}")
    return info


def _differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two run identities, one level deep: ``options.limit``."""
    names = []
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key), now.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            names += [f"{key}.{field}" for field in sorted(set(old) | set(new))
                      if old.get(field) != new.get(field)]
        else:
            names.append(key)
    return names


def _write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    write_atomic(run_files(run_dir)["run"], json.dumps(info, indent=2, sort_keys=False) + "\n")


def _identity_of(info: dict[str, Any]) -> dict[str, Any]:
    """The parts of a run that must not change between an interrupted run and its resume."""
    identity = {key: info.get(key) for key in ("source", "models", "thresholds", "options")}
    scoring = info.get("scoring") or {}
    identity["resolution"] = scoring.get("resolution")
    identity["views"] = scoring.get("views", 1)   # runs from before views existed used 1
    identity["item_views"] = scoring.get("item_views")   # None: no item scorer
    identity["item_resolution"] = scoring.get("item_resolution")
    # Runs from before the second look existed took none.
    identity["item_second_resolution"] = scoring.get(
        "item_second_resolution", None if identity["item_views"] is None else 0)
    return identity


def _record_base(capture: ReplayCapture) -> dict[str, Any]:
    labelled = capture.labelled
    record = {"capture_id": capture.capture_id, "item_identifier": capture.item_identifier,
              "material": capture.material, "defect": capture.defect if labelled else None,
              "major_defect": capture.major_defect if labelled else None,
              "defect_types": list(capture.defect_types) if labelled else None,
              "lookalike": capture.lookalike, "image": str(capture.image),
              "crop": str(capture.crop) if capture.crop else None,
              "references": [str(r.crop or r.image) for r in capture.references]}
    if capture.extra:
        record["extra"] = dict(capture.extra)
    return record


# Scored, but with no ground truth: a skipped record (with every score) keeps it out of the
# metrics, the report's rows and predictions.csv, and the report counts it with this reason.
UNLABELLED_REASON = "unconfirmed: scored, no ground truth, left out of metrics"


def skipped_record(capture: ReplayCapture, reason: str, path: str = "",
                   codes: Sequence[str] = ()) -> dict[str, Any]:
    return {**_record_base(capture), "status": SKIPPED, "reason": reason, "path": path,
            "gate_codes": list(codes)}


def scored_record(capture: ReplayCapture, scores: CaptureScores, heatmap_file: str | None
                  ) -> dict[str, Any]:
    verdict = scores.verdict
    return {**_record_base(capture), "status": SCORED, "fused": scores.fused,
            "p_any": scores.p_any, "p_major": scores.p_major, "p_types": scores.p_types,
            "item_p_any": scores.item.p_any if scores.item else None,
            "item_p_major": scores.item.p_major if scores.item else None,
            "reference_score": scores.reference_score,
            "reference_count": len(capture.references),
            "verdict": verdict.label if verdict else None,
            "likely_types": list(verdict.likely_types) if verdict else [],
            "verdict_reason": verdict.reason if verdict else None,
            "heatmap_source": verdict.heatmap_source if verdict else "supervised",
            "heatmap": heatmap_file,
            "timings_ms": {k: round(v, 3) for k, v in scores.timings_ms.items()}}


class _Loaded:
    """A capture whose files were read, ready for the inspector."""

    def __init__(self, capture: ReplayCapture, item: CaptureInput, read_ms: float) -> None:
        self.capture, self.item, self.read_ms = capture, item, read_ms


def _load(capture: ReplayCapture, options: ReplayOptions) -> _Loaded | dict[str, Any]:
    """The capture's images, or a skipped record naming the file that failed."""
    started = time.perf_counter()
    reduce = options.query_reduction
    if not capture.image.is_file():
        return skipped_record(capture, "image missing", str(capture.image))
    try:
        image = read_rgb(str(capture.image), reduce)
    except OSError:
        return skipped_record(capture, "image unreadable", str(capture.image))
    mask = None
    if not options.segmenter_masks:
        if capture.mask is None or not capture.mask.is_file():
            return skipped_record(capture, "mask missing", str(capture.mask or ""))
        try:
            mask = read_mask(str(capture.mask), reduce)
        except OSError:
            return skipped_record(capture, "mask unreadable", str(capture.mask))
        if mask.shape[:2] != image.shape[:2]:
            return skipped_record(capture, f"mask size {mask.shape[:2]} is not the image's "
                                  f"{image.shape[:2]}", str(capture.mask))
    references = []
    for reference in capture.references:
        for path in (reference.image, reference.mask):
            if not path.is_file():
                return skipped_record(capture, "reference image missing", str(path))
        try:
            references.append(ReferenceImage.from_files(reference.image, reference.mask,
                                                        options.reference_reduction))
        except OSError:
            return skipped_record(capture, "reference image unreadable", str(reference.image))
    read_ms = (time.perf_counter() - started) * 1000.0
    return _Loaded(capture, CaptureInput(image, mask, references), read_ms)


def _save_heatmap(folder: Path, capture_id: str, heatmap: np.ndarray | None) -> str | None:
    if heatmap is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in capture_id) + ".png"
    levels = np.round(np.clip(heatmap, 0.0, 1.0) * 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", levels)
    if ok:
        write_atomic(folder / name, encoded.tobytes())
    return f"heatmaps/{name}"


def _inspect(inspector: Inspector, batch: list[_Loaded]) -> list[CaptureScores | Refused | str]:
    """Results of a batch; when the batch fails on one capture's reference files, each
    capture is retried alone so only the broken one is skipped (with the reason)."""
    try:
        return list(inspector.inspect_batch([loaded.item for loaded in batch]))
    except (OSError, ValueError):
        if len(batch) == 1:
            raise
    results: list[CaptureScores | Refused | str] = []
    for loaded in batch:
        try:
            results.append(inspector.inspect(loaded.item))
        except (OSError, ValueError) as error:
            results.append(f"scoring failed: {error}")
    return results


def run_replay(source: ReplaySource, inspector: Inspector, run_dir: Path,
               info: dict[str, Any], options: ReplayOptions = ReplayOptions(),
               progress: Progress | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> ReplaySummary:
    """Replay ``source`` into ``run_dir``; ``info`` holds models and thresholds for
    run.json (plain data). Returns counts; ``interrupted`` when stopped early."""
    started = time.monotonic()
    run_dir = Path(run_dir)
    files = run_files(run_dir)
    run_info = {"format_version": RUN_FORMAT_VERSION, "source": source.describe(), **info,
                "options": asdict(options)}
    log = ResultLog(files["results"])
    if files["run"].exists():
        previous = read_run_info(run_dir)
        differences = _differences(_identity_of(previous), _identity_of(run_info))
        if differences:
            raise StationError(f"{run_dir} holds a replay with other settings (differing: "
                               f"{', '.join(differences)}); resume it with the same settings "
                               f"or choose another --out")
        run_info["started"] = previous.get("started")
    elif log.path.exists():
        raise StationError(f"{log.path} exists without run.json; choose another --out")
    else:
        run_info["started"] = _now()
    run_dir.mkdir(parents=True, exist_ok=True)
    run_info.update(status="running", finished=None)
    _write_run_info(run_dir, run_info)

    captures = list(source.captures())
    if options.limit is not None:
        captures = captures[:options.limit]
    wanted = {c.capture_id for c in captures}
    if len(wanted) != len(captures):
        raise StationError("the source lists a capture id twice; capture ids must be unique")
    done = {r["capture_id"] for r in log.read() if r["capture_id"] in wanted}
    todo = [c for c in captures if c.capture_id not in done]
    total, finished_count, interrupted = len(captures), len(done), False
    interrupt_seen = False

    def written(record: dict[str, Any]) -> None:
        nonlocal finished_count, interrupt_seen
        log.append(record)
        finished_count += 1
        if progress:
            elapsed = time.monotonic() - started
            rate = (finished_count - len(done)) / elapsed if elapsed > 0 else 0.0
            try:
                progress(finished_count, total, f"{rate:.2f} captures/s")
            except KeyboardInterrupt:
                # Captures of this batch are already scored: write them, then stop.
                interrupt_seen = True

    def stopping() -> bool:
        return interrupt_seen or should_stop()

    try:
        if progress:
            progress(finished_count, total, "resuming" if done else "")
        position = 0
        while position < len(todo) and not stopping():
            batch: list[_Loaded] = []
            while position < len(todo) and len(batch) < max(1, options.batch_size):
                loaded = _load(todo[position], options)
                position += 1
                if isinstance(loaded, dict):
                    written(loaded)
                else:
                    batch.append(loaded)
            if not batch:
                continue
            for loaded, result in zip(batch, _inspect(inspector, batch)):
                capture = loaded.capture
                if isinstance(result, str):
                    written(skipped_record(capture, result, str(capture.image)))
                elif isinstance(result, Refused):
                    message = "; ".join(issue.message for issue in result.issues)
                    written(skipped_record(capture, "quality gate: " + ", ".join(result.codes),
                                           message, result.codes))
                else:
                    result.timings_ms["read"] = loaded.read_ms
                    heat = result.verdict.heatmap if result.verdict else result.heatmap
                    heatmap_file = _save_heatmap(files["heatmaps"], capture.capture_id, heat)
                    record = scored_record(capture, result, heatmap_file)
                    if not capture.labelled:
                        record.update(status=SKIPPED, reason=UNLABELLED_REASON, path="",
                                      gate_codes=[])
                    written(record)
        interrupted = position < len(todo) or finished_count < total
    except KeyboardInterrupt:
        interrupted = True
    records = [r for r in log.read() if r["capture_id"] in wanted]
    scored = [r for r in records if r["status"] == SCORED]
    skipped = [r for r in records if r["status"] == SKIPPED]
    reasons: dict[str, int] = {}
    for record in skipped:
        reasons[record["reason"]] = reasons.get(record["reason"], 0) + 1
    order = {c.capture_id: i for i, c in enumerate(captures)}
    scored.sort(key=lambda r: order[r["capture_id"]])
    write_predictions(files["predictions"], {r["capture_id"]: r["fused"] for r in scored
                                             if r.get("fused") is not None})
    seconds = time.monotonic() - started
    run_info.update(status="interrupted" if interrupted else "finished",
                    finished=None if interrupted else _now(),
                    counts={"captures": total, "scored": len(scored), "skipped": len(skipped),
                            "remaining": total - len(records), "skip_reasons": reasons},
                    last_session={"seconds": round(seconds, 3), "resumed_from": len(done),
                                  "newly_done": finished_count - len(done),
                                  "captures_per_second": round((finished_count - len(done))
                                                               / seconds, 4) if seconds else None})
    _write_run_info(run_dir, run_info)
    return ReplaySummary(run_dir, total, len(scored), len(skipped), len(done), seconds,
                         interrupted, reasons)
