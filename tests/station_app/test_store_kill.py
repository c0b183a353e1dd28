"""Kill the capture writer (SIGKILL) at random moments: what it reported stored survives,
the database passes its integrity check, records are whole, leftovers are only orphans."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from station_app.store import CaptureStore
from tests.station_app.store_writer import make_confirmation, make_record

REPOSITORY = Path(__file__).resolve().parents[2]
KILLS = 5


def run_and_kill(root: Path, run: str, delay_s: float) -> tuple[list[str], list[str]]:
    """Start a writer, kill it ``delay_s`` after it is ready; ids it reported stored/confirmed."""
    writer = subprocess.Popen([sys.executable, "-m", "tests.station_app.store_writer", str(root), run, "100000"],
                              cwd=REPOSITORY, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(delay_s)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        output, _ = writer.communicate(timeout=10)
    assert writer.returncode == -signal.SIGKILL        # it was still writing when killed
    # Only whole lines are reports: the kill may cut the writer off in the middle of one.
    whole = output.split("\n")[:-1]
    lines = [line.split() for line in whole]
    assert all(len(fields) == 2 for fields in lines), whole
    return ([i for word, i in lines if word == "stored"], [i for word, i in lines if word == "confirmed"])


@pytest.mark.timeout(60)
def test_killing_the_writer_never_corrupts_or_half_stores_a_capture(tmp_path: Path) -> None:
    root = tmp_path / "captures"
    rng = random.Random(os.environ.get("STORE_KILL_SEED", "7"))
    stored, confirmed = [], []
    for kill in range(KILLS):
        new_stored, new_confirmed = run_and_kill(root, f"k{kill}", rng.uniform(0.05, 0.4))
        stored += new_stored
        confirmed += new_confirmed

    with CaptureStore(root, min_free_gb=0.1, gallery_size=3) as store:
        health = store.verify()
        assert health.integrity == () and health.missing_files == ()
        records = {record.capture_id: record for record in store.list()}
        # Everything the writer saw stored is there; at most the capture in flight is extra.
        assert set(stored) <= set(records)
        assert len(records) - len(stored) <= KILLS
        assert len(stored) >= KILLS                                   # the writer did get going
        for capture_id, record in records.items():
            expected = make_record(capture_id, item=record.item_identifier,
                                   minutes=int(capture_id.split("-")[1]))
            assert record.outputs == expected.outputs and record.latencies_ms == expected.latencies_ms
            assert record.camera_settings == expected.camera_settings
            assert set(record.files) == {"frame", "tray", "mask", "item_crop", "heatmap"}
            if record.confirmation is not None:
                assert record.confirmation == make_confirmation(capture_id)
        for capture_id in confirmed:
            assert records[capture_id].confirmation == make_confirmation(capture_id)
        # Leftovers of killed writes are orphans, never captures; cleaning them is safe.
        assert all(orphan.name not in records or orphan.parent.name in records
                   for orphan in health.orphans)
        store.clean_orphans()
        assert store.orphans() == [] and store.verify().ok and store.count() == len(records)
        for item in store.gallery.items():
            assert len(store.gallery.references(item)) <= 3
