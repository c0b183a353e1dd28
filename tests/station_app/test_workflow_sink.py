"""The capture store as the workflow's sink: a full inspection leaves one confirmed row
with its files, model outputs and confirmation in SQLite."""

from __future__ import annotations

import sqlite3

import pytest

from station_app.store import CaptureStore
from station_app.store.workflow_sink import StoreCaptureSink
from station_app.workflow import Confirm, ConfirmationSaved, State, Trigger, VerdictReady
from station_app.workflow.commands import Severity
from tests.station_app.test_workflow import (ITEM, _to_waiting, frames, lights,  # noqa: F401
                                             models, scene, simulator, station)


def test_a_workflow_run_leaves_one_confirmed_record_with_files(station, tmp_path):
    store = CaptureStore(tmp_path / "captures", min_free_gb=0.1)
    sink = StoreCaptureSink(store, model_versions={"scorer": "test-1"},
                            calibration_profile_version="v-test")
    workflow, recorder, _, _, _ = station(sink=sink)
    _to_waiting(workflow)
    workflow.submit(Trigger())
    verdict = recorder.wait_for(lambda e: isinstance(e, VerdictReady))
    assert workflow.wait_until_idle() and workflow.state is State.VERDICT_SHOWN
    stored = store.get(verdict.capture_id)
    assert stored is not None and not stored.confirmed
    assert not (sink.pending_root / verdict.capture_id).exists()

    workflow.submit(Confirm(agree=False, severity=Severity.MINOR, defect_types=("deformation",)))
    recorder.wait_for(lambda e: isinstance(e, ConfirmationSaved))
    assert workflow.wait_until_idle() and workflow.state is State.SIGNED_IN

    records = store.list()
    assert [r.capture_id for r in records] == [verdict.capture_id]
    record = records[0]
    assert (record.operator, record.item_identifier) == ("badge-7", ITEM)
    assert record.outputs.verdict == verdict.label
    assert record.outputs.fused == pytest.approx(verdict.fused_score)
    assert record.outputs.likely_types == verdict.likely_types
    assert record.model_versions == {"scorer": "test-1"}
    assert record.calibration_profile_version == "v-test"
    assert record.lighting_level == pytest.approx(70.0)
    assert {"grab", "segmentation", "supervised", "processing_total"} <= set(record.latencies_ms)
    assert set(record.files) == {"frame", "tray", "mask", "item_crop", "heatmap"}
    assert all(store.path(record, kind).is_file() for kind in record.files)
    assert store.verify().ok
    confirmation = record.confirmation
    assert confirmation is not None
    assert (confirmation.confirmed_by, confirmation.agrees, confirmation.severity,
            confirmation.defect_types) == ("badge-7", False, "minor", ("deformation",))
    store.close()

    # Straight from SQLite, as another process would see it.
    with sqlite3.connect(tmp_path / "captures" / "captures.sqlite3") as connection:
        rows = connection.execute("SELECT id, verdict, fused, confirmed_by, severity, agrees "
                                  "FROM captures").fetchall()
    assert rows == [(verdict.capture_id, verdict.label, pytest.approx(verdict.fused_score),
                     "badge-7", "minor", 0)]
