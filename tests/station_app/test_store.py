"""Capture store: record round trip, confirmation, disk guard, retention, gallery, export."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from engines.dataset import read_split
from engines.preprocess import read_mask
from engines.reference.bank import file_identity
from station_app.store import (CaptureFilter, CaptureStore, CaptureStoreError, Confirmation,
                               DiskFull, ModelOutputs, Usage, apply_retention,
                               export_confirmed, split_of)
from station_app.store.schema import SCHEMA_VERSION, connect
from tests.station_app.store_writer import BASE_TIME, make_images, make_record

GB = 1_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> CaptureStore:
    with CaptureStore(tmp_path / "captures", min_free_gb=0.1, gallery_size=2) as opened:
        yield opened


def ok(by: str = "badge-7") -> Confirmation:
    return Confirmation(by, "none", agrees=True)


def add(store: CaptureStore, capture_id: str, **kwargs) -> None:
    store.add_capture(make_record(capture_id, **kwargs), make_images(capture_id))


# ---------------------------------------------------------------- records and files


def test_a_full_record_comes_back_as_written_with_its_images(store: CaptureStore) -> None:
    record = make_record("c-1")
    images = make_images("c-1")
    ramp = np.linspace(0, 255, 96, dtype=np.float32)
    images["tray"] = np.stack([np.tile(ramp, (96, 1)), np.full((96, 96), 128.0),
                               np.tile(ramp[::-1], (96, 1))], axis=2).astype(np.uint8)
    stored = store.add_capture(record, images)

    read = store.get("c-1")
    assert read == stored == replace(record, files=stored.files)
    assert set(read.files) == {"frame", "tray", "mask", "item_crop", "heatmap"}
    assert read.files["tray"].startswith("2025/03/01/c-1/")
    np.testing.assert_array_equal(read_mask(str(store.path(read, "mask"))), images["mask"])
    tray = cv2.cvtColor(cv2.imread(str(store.path(read, "tray"))), cv2.COLOR_BGR2RGB)
    assert tray.shape == images["tray"].shape
    assert np.abs(tray.astype(int) - images["tray"]).max() < 12   # JPEG, and RGB not swapped
    assert store.path(read, "mask").suffix == ".png" and store.path(read, "tray").suffix == ".jpg"


def test_nan_scores_and_missing_optional_images_round_trip(store: CaptureStore) -> None:
    record = replace(make_record("c-2"), outputs=ModelOutputs(
        math.nan, math.nan, {}, None, math.nan, None))
    images = make_images("c-2")
    del images["frame"], images["heatmap"]
    store.add_capture(record, images)
    read = store.get("c-2")
    assert math.isnan(read.outputs.p_any) and math.isnan(read.outputs.fused)
    assert read.outputs.reference_score is None and read.outputs.verdict is None
    assert set(read.files) == {"tray", "mask", "item_crop"}


def test_a_capture_without_its_mask_or_with_a_duplicate_id_is_refused(store: CaptureStore) -> None:
    images = make_images("c-3")
    del images["mask"]
    with pytest.raises(CaptureStoreError, match="mask"):
        store.add_capture(make_record("c-3"), images)
    assert store.count() == 0 and store.orphans() == []
    add(store, "c-3")
    with pytest.raises(CaptureStoreError, match="already stored"):
        add(store, "c-3")
    assert store.count() == 1


def test_times_without_a_zone_are_refused_and_others_kept_in_utc() -> None:
    with pytest.raises(ValueError, match="time zone"):
        replace(make_record("c-4"), captured_at="2025-03-01T08:00:00")
    shifted = replace(make_record("c-4"), captured_at="2025-03-01T09:30:00+01:00")
    assert shifted.captured_at == "2025-03-01T08:30:00.000000+00:00"


def test_confirmation_is_stored_and_listed(store: CaptureStore) -> None:
    for index in range(3):
        add(store, f"c-{index}", minutes=index)
    confirmation = Confirmation("badge-9", "minor", agrees=False,
                                defect_types=("superficial", "deformation"))
    store.confirm("c-1", confirmation)

    assert store.get("c-1").confirmation == confirmation
    assert confirmation.defect_types == ("deformation", "superficial")   # taxonomy order
    assert [r.capture_id for r in store.unconfirmed()] == ["c-0", "c-2"]
    assert [r.capture_id for r in store.list(CaptureFilter(confirmed=True))] == ["c-1"]
    assert [r.capture_id for r in store.list(CaptureFilter(newest_first=True, limit=2))] == ["c-2", "c-1"]
    with pytest.raises(CaptureStoreError):
        store.confirm("nope", confirmation)
    with pytest.raises(ValueError, match="severity 'none'"):
        Confirmation("badge-9", "none", agrees=True, defect_types=("spillage",))


def test_the_database_is_wal_synchronous_full_and_versioned(store: CaptureStore) -> None:
    connection = connect(store.root / "captures.sqlite3")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL
    assert connection.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION
    add(store, "c-5")
    with pytest.raises(sqlite3.IntegrityError):                                 # half a confirmation
        connection.execute("UPDATE captures SET severity = 'none' WHERE id = 'c-5'")
    connection.close()


def test_a_version_1_database_is_upgraded_in_place_and_keeps_its_captures(tmp_path: Path) -> None:
    """Stores written before the item scorer existed gain its columns, empty, on opening."""
    root = tmp_path / "captures"
    with CaptureStore(root, min_free_gb=0.1) as written:
        add(written, "c-old")
        expected = written.get("c-old")
    connection = sqlite3.connect(root / "captures.sqlite3")
    for column in ("item_p_any", "item_p_major"):               # back to what version 1 wrote
        connection.execute(f"ALTER TABLE captures DROP COLUMN {column}")
    connection.execute("DELETE FROM schema_migrations WHERE version > 1")
    connection.commit()
    connection.close()

    with CaptureStore(root, min_free_gb=0.1) as upgraded:
        old = upgraded.get("c-old")
        add(upgraded, "c-new")
        new = upgraded.get("c-new")
    assert old.outputs.item_p_any is None and old.outputs.item_p_major is None
    assert old == replace(expected, outputs=replace(expected.outputs, item_p_any=None, item_p_major=None))
    assert new.outputs.item_p_any == make_record("c-new").outputs.item_p_any is not None


def test_orphan_folders_are_reported_and_cleaned_but_never_listed(store: CaptureStore) -> None:
    add(store, "c-6")
    orphan = store.root / "2025/03/01/c-crashed"
    orphan.mkdir(parents=True)
    (orphan / ".tray.jpg.x1.tmp").write_bytes(b"half")
    stray = store.root / "2025/03/01/c-6/.mask.png.y2.tmp"
    stray.write_bytes(b"half")

    assert sorted(store.orphans()) == sorted([orphan, stray])
    assert [r.capture_id for r in store.list()] == ["c-6"]
    assert sorted(store.clean_orphans()) == sorted([orphan, stray])
    assert store.orphans() == [] and store.verify().ok


# ---------------------------------------------------------------- disk space


def fake_disk(free_bytes: list[int]):
    return lambda path: Usage(100 * GB, 100 * GB - free_bytes[0], free_bytes[0])


def test_capturing_stops_before_the_reserve_is_reached_and_keeps_what_is_stored(tmp_path: Path) -> None:
    free = [int(2.5 * GB)]
    with CaptureStore(tmp_path, min_free_gb=2.0, disk_usage=fake_disk(free)) as store:
        add(store, "c-7")
        assert store.space().ok
        free[0] = 2 * GB + 1000          # above the reserve, but not by a capture's size
        with pytest.raises(DiskFull, match="data.min_free_gb") as raised:
            add(store, "c-8")
        assert raised.value.free_bytes == free[0] and raised.value.needed_bytes > 1000
        assert store.get("c-8") is None and store.orphans() == []
        assert store.verify().ok and store.get("c-7") is not None
        free[0] = GB
        assert not store.space().ok


def test_the_real_disk_is_checked_by_default(tmp_path: Path) -> None:
    with CaptureStore(tmp_path, min_free_gb=10000) as store:
        with pytest.raises(DiskFull):
            add(store, "c-9")
        assert store.count() == 0


# ---------------------------------------------------------------- retention


def test_retention_removes_only_old_confirmed_captures_and_only_when_configured(store: CaptureStore) -> None:
    now = BASE_TIME + timedelta(days=40)
    add(store, "old-confirmed", minutes=0)
    add(store, "old-unconfirmed", minutes=1)
    add(store, "new-confirmed", minutes=39 * 24 * 60)
    add(store, "old-reference", item="item-R", minutes=2)
    store.confirm("old-confirmed", Confirmation("badge-7", "major", agrees=True))
    store.confirm("new-confirmed", ok())
    store.confirm("old-reference", ok())

    assert apply_retention(store, 0, now) == []
    folder = store.path(store.get("old-confirmed"), "tray").parent
    assert apply_retention(store, 30, now) == ["old-confirmed"]
    assert not folder.exists()
    assert sorted(r.capture_id for r in store.list()) == ["new-confirmed", "old-reference", "old-unconfirmed"]
    assert store.verify().ok and store.orphans() == []


# ---------------------------------------------------------------- gallery


def test_confirmed_ok_captures_join_the_gallery_newest_first_and_bounded(store: CaptureStore) -> None:
    for index in range(4):
        add(store, f"g-{index}", item="item-G", minutes=index)
    add(store, "other", item="item-H")
    store.confirm("g-0", ok())
    store.confirm("g-2", ok())
    store.confirm("g-1", ok())
    store.confirm("g-3", Confirmation("badge-7", "minor", agrees=True))   # damaged: never a reference

    references = store.gallery.references("item-G")
    assert [r.capture_id for r in references] == ["g-2", "g-1"]            # size 2, newest kept
    record = store.get("g-2")
    assert references[0].tray_path == store.path(record, "tray")
    assert references[0].identity == file_identity(store.path(record, "tray"), store.path(record, "mask"))
    image, mask = references[0].reference_image().load()
    assert image.shape == (96, 96, 3) and mask.shape == (96, 96)
    assert store.gallery.references("item-H") == []

    store.confirm("g-2", Confirmation("badge-7", "major", agrees=False))   # corrected: leaves
    assert [r.capture_id for r in store.gallery.references("item-G")] == ["g-1"]


def test_a_technician_removes_a_bad_reference_for_good(store: CaptureStore) -> None:
    add(store, "r-0", item="item-R")
    add(store, "r-1", item="item-R", minutes=1)
    store.confirm("r-0", ok())
    store.confirm("r-1", ok())
    store.gallery.remove_reference("r-1", by="tech-1", reason="glare")
    assert [r.capture_id for r in store.gallery.references("item-R")] == ["r-0"]
    store.confirm("r-1", ok())
    assert [r.capture_id for r in store.gallery.references("item-R")] == ["r-0"]
    with pytest.raises(KeyError):
        store.gallery.remove_reference("r-1", by="tech-1")


# ---------------------------------------------------------------- export


def test_export_writes_a_kaputt_data_set_with_the_associates_labels(store: CaptureStore,
                                                                     tmp_path: Path) -> None:
    labels = {"e-ok": ("none", ()), "e-minor": ("minor", ("superficial",)),
              "e-major": ("major", ("penetration", "spillage"))}
    items = [f"item-{n}" for n in range(12)]
    for index, item in enumerate(items):
        for reference in range(3):    # gallery size 2: the oldest ages out and becomes a query
            add(store, f"ref{reference}-{index}", item=item, minutes=10 * reference + index)
            store.confirm(f"ref{reference}-{index}", ok())
        for name, (severity, types) in labels.items():
            capture_id = f"{name}-{index}"
            add(store, capture_id, item=item, minutes=index - 100)   # older than the references
            store.confirm(capture_id, Confirmation("badge-3", severity, agrees=False, defect_types=types))
    add(store, "unconfirmed", item=items[0])
    labels["ref0"] = labels["e-ok"]

    out = tmp_path / "export"
    summary = export_confirmed(store, out)
    assert summary.total_queries == 4 * len(items)
    seen = set()
    for split, count in summary.queries.items():
        data = read_split(out, split)
        assert len(data.queries) == count
        for query in data.queries:
            seen.add(query.capture_id)
            severity, types = labels[query.capture_id.rsplit("-", 1)[0]]
            assert query.defect == (severity != "none")
            assert query.major_defect == (severity == "major")
            assert query.defect_types == types
            assert split_of(query.item_identifier) == split
            assert query.extra["station_verdict"] == "REVIEW"
            index = items.index(query.item_identifier)
            references = data.references_for(query.item_identifier)
            assert sorted(r.reference_image for r in references) == [
                f"images/ref1-{index}/tray.jpg", f"images/ref2-{index}/tray.jpg"]
            assert (data.path(query.query_mask)).read_bytes() == \
                store.path(store.get(query.capture_id), "mask").read_bytes()
    assert "unconfirmed" not in seen                       # no label, no export
    assert not any(c.startswith(("ref1", "ref2")) for c in seen)   # references are not queries
    assert len(summary.queries) >= 2          # 12 items spread over more than one split


def test_split_of_is_deterministic_and_follows_the_fractions() -> None:
    items = [f"sku-{n}" for n in range(2000)]
    splits = [split_of(item) for item in items]
    assert splits == [split_of(item) for item in items]
    assert 0.75 < splits.count("train") / len(items) < 0.85
    assert {split_of(item, {"test": 1.0}) for item in items} == {"test"}
