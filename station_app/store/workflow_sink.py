"""The capture store as the inspection workflow's ``CaptureSink``.

The workflow hands over the frame the moment it exists (``save``), what processing made
of it later (``record_outcome``) and the associate's word last (``confirm``). A store row
needs the tray image, mask and item crop (``REQUIRED_IMAGE_KINDS``), which exist only
after processing, so the sink works in two steps:

1. ``save`` writes the frame (JPEG, as the store keeps frames) and its metadata under
   ``<store root>/pending/<capture id>/`` atomically and returns the id: a crash after
   this loses nothing, and ``pending/`` is outside the dated folders the store's orphan
   clean-up looks at.
2. ``record_outcome`` of a scored capture adds the store row with every image (frame,
   tray, mask, item crop, heatmap), the model outputs, versions and timings, then removes
   the pending folder. A rejected or failed capture has no tray/mask/crop and therefore no
   row; its pending folder stays, with ``outcome.json`` saying why (the store has no
   frame-only rows yet).

``confirm`` records the confirmation in SQLite (and so the reference gallery).
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from engines.files import write_atomic
from station_app.store.capture_store import CaptureStore, CaptureStoreError, encode_image
from station_app.store.records import CaptureRecord, Confirmation, ModelOutputs
from station_app.workflow import sink as workflow_sink

log = logging.getLogger("station_app.store.workflow_sink")

PENDING_FOLDER = "pending"


@dataclass
class _Pending:
    capture: workflow_sink.CaptureRecord
    folder: Path


def _lighting_level(lighting: Mapping[str, Any]) -> float | None:
    """The brightest lit channel's percent during the exposure (None: no channel lit)."""
    levels = [float(channel.get("percent", 0.0)) for channel in lighting.values()
              if isinstance(channel, Mapping) and channel.get("mode") not in (None, "OFF")]
    return max(levels) if levels else None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class StoreCaptureSink:
    """``CaptureSink`` over a :class:`CaptureStore` (see the module notes for the steps).

    ``model_versions`` and ``calibration_profile_version`` are stored with every row;
    ``item_material`` is the material recorded (the station does not know it yet).
    """

    def __init__(self, store: CaptureStore, *, model_versions: Mapping[str, str] | None = None,
                 calibration_profile_version: str = "", item_material: str = "other",
                 pending_root: Path | None = None) -> None:
        self.store = store
        self.model_versions = dict(model_versions or {})
        self.calibration_profile_version = calibration_profile_version
        self.item_material = item_material
        self.pending_root = pending_root or store.root / PENDING_FOLDER
        self._pending: dict[str, _Pending] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    # -- CaptureSink ---------------------------------------------------------------------

    def save(self, capture: workflow_sink.CaptureRecord) -> str:
        with self._lock:
            capture_id = self._new_id(capture)
            folder = self.pending_root / capture_id
            # Disk guard first: a full disk fails the save (the workflow keeps the frame
            # in memory and offers Retry) instead of filling the reserve.
            encoded = encode_image("frame", capture.frame.rgb)
            self.store.disk.require(len(encoded) * 3)
            write_atomic(folder / "frame.jpg", encoded)
            write_atomic(folder / "capture.json", json.dumps(_plain({
                "capture_id": capture_id, "station_id": capture.station_id,
                "operator": capture.operator, "item_identifier": capture.item_identifier,
                "trigger": capture.trigger, "captured_utc": capture.captured_utc,
                "camera": capture.frame.metadata(), "lighting": capture.lighting,
                "timings_ms": capture.timings_ms}), indent=2, sort_keys=True))
            self._pending[capture_id] = _Pending(capture, folder)
            return capture_id

    def record_outcome(self, capture_id: str, outcome: workflow_sink.CaptureOutcome) -> None:
        with self._lock:
            pending = self._pending.get(capture_id)
            if pending is None:
                if self.store.get(capture_id) is not None:
                    return    # a Retry after the row was written: nothing more to do
                raise CaptureStoreError(f"no capture {capture_id} was saved")
            if outcome.kind != "scored":
                write_atomic(pending.folder / "outcome.json", json.dumps(_plain({
                    "kind": outcome.kind, "error": outcome.error,
                    "issues": [[issue.code, issue.message] for issue in outcome.issues],
                    "timings_ms": outcome.timings_ms}), indent=2, sort_keys=True))
                log.info("capture %s %s: frame kept in %s (the store keeps only scored "
                         "captures)", capture_id, outcome.kind, pending.folder)
                return
            record, images = self._record(capture_id, pending.capture, outcome)
            images["frame"] = (pending.folder / "frame.jpg").read_bytes()  # encoded in save()
            self.store.add_capture(record, images)
            del self._pending[capture_id]
            shutil.rmtree(pending.folder, ignore_errors=True)

    def confirm(self, capture_id: str, confirmation: workflow_sink.Confirmation) -> None:
        self.store.confirm(capture_id, Confirmation(
            confirmed_by=confirmation.operator, severity=confirmation.severity,  # type: ignore[arg-type]
            agrees=confirmation.agree, defect_types=tuple(confirmation.defect_types),
            confirmed_at=confirmation.confirmed_utc))

    # -- helpers -------------------------------------------------------------------------

    def _new_id(self, capture: workflow_sink.CaptureRecord) -> str:
        moment = datetime.fromisoformat(capture.captured_utc).astimezone(timezone.utc)
        while True:
            capture_id = (f"{capture.station_id}-{moment:%Y%m%dT%H%M%S%f}Z-"
                          f"{next(self._counter):04d}")
            if capture_id not in self._pending and not (self.pending_root / capture_id).exists() \
                    and self.store.get(capture_id) is None:
                return capture_id

    def _record(self, capture_id: str, capture: workflow_sink.CaptureRecord,
                outcome: workflow_sink.CaptureOutcome) -> tuple[CaptureRecord, dict[str, Any]]:
        extracted, scores = outcome.extracted, outcome.scores
        if extracted is None or scores is None:
            raise CaptureStoreError(f"capture {capture_id}: a scored outcome without its "
                                    "extracted item or scores")
        verdict = scores.verdict
        heatmap = verdict.heatmap if verdict is not None else scores.heatmap
        latencies = {**capture.timings_ms, **outcome.timings_ms}
        record = CaptureRecord(
            capture_id=capture_id, captured_at=capture.captured_utc,
            station_id=capture.station_id, operator=capture.operator,
            item_identifier=capture.item_identifier, outputs=ModelOutputs.from_scores(scores),
            item_material=self.item_material,
            camera_settings={**_plain(capture.frame.metadata()), "trigger": capture.trigger,
                             "lighting": _plain(capture.lighting)},
            lighting_level=_lighting_level(capture.lighting),
            calibration_profile_version=self.calibration_profile_version,
            model_versions=self.model_versions,
            latencies_ms={name: float(value) for name, value in latencies.items()})
        images: dict[str, Any] = {"tray": extracted.tray_image, "mask": extracted.mask,
                                  "item_crop": extracted.crop}
        if heatmap is not None:
            images["heatmap"] = heatmap
        return record, images
