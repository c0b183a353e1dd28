"""``station-app replay`` over the station's own capture store: confirmations as truth,
references as the gallery stood, skipped and unconfirmed captures reported, resume, and a
store that is only read (a writer beside the replay still works).

The store is real (SQLite + files, written by ``CaptureStore``) and holds synthetic tray
scenes from the data-set generator; the models are the bundled ones.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from engines.dataset import read_split
from station_app.cli import main
from station_app.config import load_config
from station_app.replay import ReplayOptions, read_predictions, run_replay
from station_app.replay.results import ResultLog
from station_app.replay.runner import UNLABELLED_REASON
from station_app.replay.setup import open_replay_models
from station_app.replay.store_source import CaptureStoreSource
from station_app.store import CaptureStore, CaptureStoreError, Confirmation
from tests.station_app.store_writer import BASE_TIME, make_record

ITEM_A, ITEM_B = "2000010000005", "2000010000012"     # items of generate_dataset(3, seed=1)

# (capture id, image in the data set, minutes after BASE_TIME, confirmed severity and types;
# None: never confirmed). Capture ids are the data set's, so images are easy to trace.
CAPTURES = [
    (f"{ITEM_A}-r0", ("train", "reference", 0), 0, ("none", ())),
    (f"{ITEM_B}-r0", ("validation", "reference", 0), 1, ("none", ())),
    (f"{ITEM_A}-r1", ("train", "reference", 1), 2, ("none", ())),
    (f"{ITEM_A}-q0", ("train", "query", 0), 3, ("none", ())),
    (f"{ITEM_A}-q2", ("train", "query", 2), 4, ("major", ("deformation",))),
    (f"{ITEM_A}-q1", ("train", "query", 1), 5, None),
    (f"{ITEM_A}-q3", ("train", "query", 3), 6, ("none", ())),
    (f"{ITEM_B}-q0", ("validation", "query", 0), 7, ("none", ())),
    (f"{ITEM_A}-q4", ("train", "query", 4), 8, ("none", ())),     # its tray image is deleted
]
UNCONFIRMED = f"{ITEM_A}-q1"
NO_IMAGE = f"{ITEM_A}-q4"
REPLAYED = [c[0] for c in CAPTURES if c[0] not in (UNCONFIRMED, NO_IMAGE)]
# The gallery as it stood at each capture: confirmed-OK, same item, captured before, newest first.
EXPECTED_REFERENCES = {
    f"{ITEM_A}-r0": [], f"{ITEM_B}-r0": [], f"{ITEM_A}-r1": [f"{ITEM_A}-r0"],
    f"{ITEM_A}-q0": [f"{ITEM_A}-r1", f"{ITEM_A}-r0"],
    f"{ITEM_A}-q2": [f"{ITEM_A}-q0", f"{ITEM_A}-r1", f"{ITEM_A}-r0"],
    # q2 (confirmed damaged) and q1 (unconfirmed) are not references; q3 itself is not either
    f"{ITEM_A}-q3": [f"{ITEM_A}-q0", f"{ITEM_A}-r1", f"{ITEM_A}-r0"],
    f"{ITEM_B}-q0": [f"{ITEM_B}-r0"],
}


def _minutes(minutes: float) -> str:
    return (BASE_TIME + timedelta(minutes=minutes)).isoformat()


def _images(dataset, kind: str, index: int) -> dict[str, bytes]:
    """The data set's tray image, mask and item crop, as the store keeps them (encoded)."""
    if kind == "reference":
        row = dataset.references[index]
        paths = (row.reference_image, row.reference_mask, row.reference_crop)
    else:
        row = dataset.queries[index]
        paths = (row.query_image, row.query_mask, row.query_crop)
    return {kind: dataset.path(path).read_bytes()
            for kind, path in zip(("tray", "mask", "item_crop"), paths)}


def _add(store: CaptureStore, datasets, capture_id: str, image: tuple[str, str, int],
         minutes: float, confirmation) -> None:
    split, kind, index = image
    item = capture_id.rsplit("-", 1)[0]
    material = {q.item_identifier: q.item_material for q in datasets[split].queries}[item]
    store.add_capture(make_record(capture_id, item=item, minutes=minutes, material=material),
                      _images(datasets[split], kind, index))
    if confirmation is not None:
        severity, types = confirmation
        store.confirm(capture_id, Confirmation("badge-7", severity, agrees=severity == "none",
                                               defect_types=types,
                                               confirmed_at=_minutes(minutes + 0.5)))


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {str(path.relative_to(root)): (hashlib.sha256(path.read_bytes()).hexdigest(),
                                          path.stat().st_mtime_ns)
            for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    from training.synth import generate_dataset

    root = tmp_path_factory.mktemp("data")
    generate_dataset(root, items=3, seed=1, workers=1, write_frames=False)
    return {split: read_split(root, split) for split in ("train", "validation")}


@pytest.fixture(scope="module")
def store_root(tmp_path_factory, datasets) -> Path:
    """The station's store, closed (as after a shift); one capture lost its tray image."""
    root = tmp_path_factory.mktemp("station") / "captures"
    with CaptureStore(root, min_free_gb=0.0) as store:
        for capture_id, image, minutes, confirmation in CAPTURES:
            _add(store, datasets, capture_id, image, minutes, confirmation)
        store.path(store.get(NO_IMAGE), "tray").unlink()
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bank-cache")


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, store_root, cache_dir):
    """One replay of the whole store through the command line, and what it printed."""
    before = _snapshot(store_root)
    out = tmp_path_factory.mktemp("runs") / "full"
    code, printed = _main_capturing(["replay", str(store_root / "captures.sqlite3"), "--out",
                                     str(out), "--cache", str(cache_dir)])
    assert code == 0, printed
    return out, printed, before


def _main_capturing(argv: list[str]) -> tuple[int, str]:
    """``main`` with stdout captured (module fixtures cannot use capsys)."""
    import contextlib
    import io

    stream = io.StringIO()
    with contextlib.redirect_stdout(stream):
        code = main(argv)
    return code, stream.getvalue()


def _records(run: Path) -> dict[str, dict]:
    return {r["capture_id"]: r for r in ResultLog(run / "results.jsonl").read()}


def _predicted_ids(run: Path) -> list[str]:
    with open(run / "predictions.csv", newline="") as handle:
        return [row["capture_id"] for row in csv.DictReader(handle)]


# ---------------------------------------------------------------- the whole store


@pytest.mark.slow
def test_store_replay_scores_confirmed_captures_with_the_gallery_as_it_stood(full_run):
    out, printed, _ = full_run
    records = _records(out)
    assert _predicted_ids(out) == REPLAYED                   # capture order, no others
    assert set(records) == set(REPLAYED) | {NO_IMAGE}       # the unconfirmed one not replayed
    assert "1 unconfirmed capture(s) not replayed" in printed
    assert "7 scored, 1 skipped (1 image missing)" in printed
    for capture_id in REPLAYED:
        record = records[capture_id]
        assert record["status"] == "scored" and record["verdict"] in {"OK", "REVIEW", "DAMAGED"}
        assert record["extra"]["reference_ids"] == EXPECTED_REFERENCES[capture_id]
        assert record["reference_count"] == len(EXPECTED_REFERENCES[capture_id])
        assert (record["reference_score"] is not None) == bool(EXPECTED_REFERENCES[capture_id])
        assert {"supervised", "read"} <= set(record["timings_ms"])
    damaged = records[f"{ITEM_A}-q2"]                       # truth is the confirmation
    assert (damaged["defect"], damaged["major_defect"], damaged["defect_types"]) == (
        True, True, ["deformation"])
    assert damaged["extra"]["severity"] == "major" and damaged["material"] == "book_other"
    ok = records[f"{ITEM_A}-q3"]
    assert (ok["defect"], ok["major_defect"], ok["defect_types"]) == (False, False, [])
    info = json.loads((out / "run.json").read_text())
    assert info["source"]["kind"] == "capture_store" and info["status"] == "finished"
    assert info["counts"]["skip_reasons"] == {"image missing": 1}
    assert info["source_notes"] == [line for line in printed.splitlines() if "unconfirmed" in line]


@pytest.mark.slow
def test_a_capture_without_its_image_is_skipped_and_reported(full_run, store_root):
    out, _, _ = full_run
    skipped = _records(out)[NO_IMAGE]
    assert skipped["status"] == "skipped" and skipped["reason"] == "image missing"
    assert skipped["path"].endswith(f"{NO_IMAGE}/tray.jpg")
    html = (out / "report.html").read_text()
    assert "Skipped captures (1)" in html and "image missing" in html and NO_IMAGE in html


@pytest.mark.slow
def test_the_replay_leaves_the_store_as_it_was(full_run, store_root):
    _, _, before = full_run
    after = _snapshot(store_root)
    assert {path: after[path] for path in before} == before       # bytes and mtimes
    # New files can only be SQLite's shared-memory index of the reader and an empty WAL.
    new = set(after) - set(before)
    assert new <= {"captures.sqlite3-shm", "captures.sqlite3-wal"}
    if "captures.sqlite3-wal" in new:
        assert (store_root / "captures.sqlite3-wal").stat().st_size == 0


# ---------------------------------------------------------------- selection


@pytest.mark.slow
def test_unconfirmed_captures_are_scored_outside_the_metrics_when_asked(
        tmp_path, store_root, cache_dir):
    out = tmp_path / "run"
    # Times without a zone are UTC: 08:05 is the unconfirmed capture, 08:08 the lost image.
    code, printed = _main_capturing(
        ["replay", str(store_root), "--out", str(out), "--cache", str(cache_dir),
         "--include-unconfirmed", "--since", "2025-03-01T08:05", "--until",
         "2025-03-01T08:08"])
    assert code == 0, printed
    assert "not replayed" not in printed
    records = _records(out)
    assert set(records) == {UNCONFIRMED, f"{ITEM_A}-q3", f"{ITEM_B}-q0"}
    unlabelled = records[UNCONFIRMED]
    assert unlabelled["status"] == "skipped" and unlabelled["reason"] == UNLABELLED_REASON
    assert 0.0 <= unlabelled["fused"] <= 1.0 and unlabelled["verdict"] is not None
    assert unlabelled["defect"] is None and unlabelled["major_defect"] is None
    assert _predicted_ids(out) == [f"{ITEM_A}-q3", f"{ITEM_B}-q0"]
    html = (out / "report.html").read_text()
    assert "Skipped captures (1)" in html and UNLABELLED_REASON in html
    assert json.loads((out / "run.json").read_text())["source"]["since"] == (
        "2025-03-01T08:05:00.000000+00:00")


def test_references_follow_the_gallery_size_removals_and_lost_files(tmp_path, store_root):
    root = tmp_path / "captures"
    shutil.copytree(store_root, root)

    def references(gallery_size: int = 5) -> dict[str, tuple[list[str], list[str]]]:
        source = CaptureStoreSource(root, gallery_size=gallery_size)
        try:
            return {c.capture_id: (c.extra["reference_ids"],
                                   c.extra.get("references_passed_over", {}).get("ids", []))
                    for c in source.captures()}
        finally:
            source.close()

    assert {k: v[0] for k, v in references().items()} == {**EXPECTED_REFERENCES, NO_IMAGE: [
        f"{ITEM_A}-q3", f"{ITEM_A}-q0", f"{ITEM_A}-r1", f"{ITEM_A}-r0"]}
    assert references(2)[f"{ITEM_A}-q3"][0] == [f"{ITEM_A}-q0", f"{ITEM_A}-r1"]
    with CaptureStore(root, min_free_gb=0.0) as store:
        store.gallery.remove_reference(f"{ITEM_A}-r1", by="tech-1", reason="glare")
        store.path(store.get(f"{ITEM_A}-r0"), "mask").unlink()
    after = references(2)
    assert after[f"{ITEM_A}-q3"] == ([f"{ITEM_A}-q0"], [f"{ITEM_A}-r0"])
    assert after[f"{ITEM_A}-q0"] == ([], [f"{ITEM_A}-r0"])


def test_data_that_is_neither_a_data_set_nor_a_store_is_refused(tmp_path, capsys, datasets,
                                                                store_root):
    (tmp_path / "something.sqlite3").write_bytes(b"")
    for data in (tmp_path, tmp_path / "something.sqlite3"):
        assert main(["replay", str(data), "--out", str(tmp_path / "run")]) == 1
        error = capsys.readouterr().err
        assert "Kaputt layout" in error and "capture store" in error
    dataset_root = datasets["train"].root
    assert main(["replay", str(dataset_root), "--out", str(tmp_path / "run"),
                 "--since", "2025-03-01"]) == 1
    assert "--since" in capsys.readouterr().err
    assert main(["replay", str(store_root), "--out", str(tmp_path / "run"),
                 "--since", "yesterday"]) == 1
    assert "ISO" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_read_only_store_refuses_every_write(tmp_path, store_root):
    with pytest.raises(CaptureStoreError, match="no capture store"):
        CaptureStore(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()
    with CaptureStore(store_root, read_only=True) as store:
        assert store.count() == len(CAPTURES)
        with pytest.raises(CaptureStoreError, match="read-only"):
            store.confirm(UNCONFIRMED, Confirmation("badge-7", "none", agrees=True))
        with pytest.raises(CaptureStoreError, match="read-only"):
            store.add_capture(make_record("new-1"), {})
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store._connection.execute("DELETE FROM captures")
        assert store.count() == len(CAPTURES) and not store.get(UNCONFIRMED).confirmed


# ---------------------------------------------------------------- resume beside a station


@pytest.mark.slow
def test_interrupted_store_replay_resumes_while_the_station_keeps_writing(
        tmp_path, store_root, datasets, cache_dir, full_run):
    root = tmp_path / "captures"
    shutil.copytree(store_root, root)
    models = open_replay_models(load_config(None), cache_dir=cache_dir)
    inspected: list[int] = []
    original = models.inspector.inspect_batch

    def counting(captures):
        inspected.append(len(captures))
        return original(captures)

    models.inspector.inspect_batch = counting
    late = f"{ITEM_A}-late"

    def station_writes_then_interrupt(done, total, note=""):
        if done == 2:
            # The station stores and confirms a capture while the replay holds the store open.
            with CaptureStore(root, min_free_gb=0.0) as station:
                _add(station, datasets, late, ("train", "query", 3), 20, ("none", ()))
            raise KeyboardInterrupt

    out = tmp_path / "run"
    source = CaptureStoreSource(root)               # as the command opens it (gallery size 5)
    first = run_replay(source, models.inspector, out, models.info, ReplayOptions(batch_size=2),
                       progress=station_writes_then_interrupt)
    source.close()
    assert first.interrupted and first.scored == 2
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"

    code, printed = _main_capturing(["replay", str(root), "--out", str(out), "--cache",
                                     str(cache_dir), "--batch-size", "2"])
    assert code == 0, printed
    records = _records(out)
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(records) == len(REPLAYED) + 2          # nobody twice
    info = json.loads((out / "run.json").read_text())
    assert sum(inspected) == 2 and info["last_session"]["newly_done"] == len(records) - 2
    # The capture stored during the pause is replayed on resume, with its gallery (the lost
    # image of q4 passed over, and said so).
    assert records[late]["status"] == "scored"
    assert records[late]["extra"]["reference_ids"] == [f"{ITEM_A}-q3", f"{ITEM_A}-q0",
                                                       f"{ITEM_A}-r1", f"{ITEM_A}-r0"]
    assert records[late]["extra"]["references_passed_over"]["ids"] == [NO_IMAGE]
    resumed = read_predictions(out / "predictions.csv")
    uninterrupted = read_predictions(full_run[0] / "predictions.csv")
    assert list(resumed) == REPLAYED + [late]
    for capture_id, value in uninterrupted.items():
        assert resumed[capture_id] == pytest.approx(value, abs=2e-6)
    with CaptureStore(root, read_only=True) as store:
        assert store.get(late).confirmed and store.gallery.is_reference(late)
