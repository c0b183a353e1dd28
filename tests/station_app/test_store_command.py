"""``station-app store ...`` through ``station_app.cli.main`` on a real capture store
(SQLite + image files written by ``CaptureStore``), a real PIN file and the real data-set
checker. Images are the small deterministic ones of ``store_writer``."""

from __future__ import annotations

import hashlib
import io
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from calibration.pin import PinStore
from engines.dataset import available_splits, read_split
from station_app.cli import main
from station_app.config import load_config
from station_app.store import CaptureStore, Confirmation
from tests.station_app.store_writer import make_images, make_record

# (capture id, item, minutes after BASE_TIME, station verdict, confirmation or None).
# Gallery size 2: item-A's references end up c-6 and c-1 (c-0 ages out), item-B's c-4.
CAPTURES = [
    ("c-0", "item-A", 0, "DAMAGED", ("none", ())),          # an override
    ("c-1", "item-A", 1, "OK", ("none", ())),
    ("c-2", "item-A", 2, "DAMAGED", ("major", ("penetration",))),
    ("c-3", "item-B", 3, "REVIEW", None),
    ("c-4", "item-B", 4, "OK", ("none", ())),
    ("c-5", "item-B", 5, "REVIEW", ("minor", ("deformation", "superficial"))),
    ("c-6", "item-A", 6, "OK", ("none", ())),
]
CONFIRMED_BY = {"c-0": "badge-1", "c-1": "badge-2", "c-2": "badge-3", "c-4": "badge-4",
                "c-5": "badge-5", "c-6": "badge-6"}
PIN = "2580"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "station.yaml"
    path.write_text(f"data:\n  root: {tmp_path / 'data'}\n  min_free_gb: 0.1\n"
                    f"  gallery_size: 2\ncalibration:\n  pin_max_failures: 3\n")
    return path


@pytest.fixture
def root(config: Path) -> Path:
    """The store of CAPTURES, closed again (as a running station would have left it)."""
    data = load_config(config, env={}).data
    with CaptureStore(data.captures, data.min_free_gb, data.gallery_size) as store:
        for capture_id, item, minutes, verdict, confirmation in CAPTURES:
            record = make_record(capture_id, item=item, minutes=minutes)
            record = replace(record, outputs=replace(record.outputs, verdict=verdict))
            store.add_capture(record, make_images(capture_id, size=48))
            if confirmation is not None:
                severity, types = confirmation
                store.confirm(capture_id, Confirmation(
                    CONFIRMED_BY[capture_id], severity, agrees=(severity == "none") == (verdict == "OK"),
                    defect_types=types, confirmed_at=record.captured_at))
    return data.captures


def store_cli(config: Path, *argv: str, stdin: str = "", monkeypatch=None) -> int:
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["store", *argv, "--config", str(config)])


def database_bytes(root: Path) -> str:
    return hashlib.sha256((root / "captures.sqlite3").read_bytes()).hexdigest()


def capture_files(root: Path) -> list[Path]:
    """Everything under the root but SQLite's own side files."""
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if not p.name.startswith("captures.sqlite3-"))


def pins(config: Path) -> PinStore:
    calibration = load_config(config, env={}).calibration
    return PinStore(calibration.pin_file, calibration.pin_max_failures,
                    calibration.pin_lockout_minutes)


@pytest.mark.parametrize("action", ["summary", "list", "show", "export", "gallery",
                                    "remove-reference", "check"])
def test_every_action_has_help(action, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["store", action, "--help"])
    assert exit_info.value.code == 0
    assert "--store DIR" in capsys.readouterr().out


def test_summary_counts_the_store(config, root, capsys):
    assert store_cli(config, "summary") == 0
    lines = {line.split("  ", 1)[0]: line.split("  ", 1)[1].strip()
             for line in capsys.readouterr().out.splitlines()}
    assert lines["capture store"] == str(root)
    assert lines["captures"] == "7 (6 confirmed, 1 unconfirmed)"
    assert lines["verdicts"] == "OK 3, REVIEW 2, DAMAGED 2"
    assert lines["confirmed as"] == "none 4, minor 1, major 1; 1 override"
    assert lines["items"] == "2"
    assert lines["gallery"] == "3 references of 2 items (up to 2 per item, data.gallery_size)"
    assert lines["captured"] == "2025-03-01 08:00:00Z .. 2025-03-01 08:06:00Z"
    assert "used by the store" in lines["disk"] and "reserve 0.1 GB" in lines["disk"]
    assert lines["disk"].endswith(": OK")


def test_list_shows_one_line_per_capture_newest_first_and_filters(config, root, capsys):
    assert store_cli(config, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["capture", "captured", "item", "verdict", "fused", "confirmation"]
    assert [line.split()[0] for line in lines[1:]] == [f"c-{i}" for i in range(6, -1, -1)]
    c5 = lines[2].split(None, 6)
    fused = make_record("c-5").outputs.fused
    assert c5[:6] == ["c-5", "2025-03-01", "08:05:00Z", "item-B", "REVIEW", f"{fused:.3f}"]
    assert c5[6] == "minor (deformation, superficial) by badge-5"
    assert lines[4].split()[-1] == "unconfirmed" and lines[4].startswith("c-3 ")
    assert lines[7].startswith("c-0 ") and lines[7].endswith("DAMAGED  " + f"{make_record('c-0').outputs.fused:.3f}  none by badge-1, override")

    assert store_cli(config, "list", "--item", "item-B", "--since", "2025-03-01T08:04:00") == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["c-5", "c-4"]
    assert store_cli(config, "list", "--unconfirmed") == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["c-3"]
    assert store_cli(config, "list", "--limit", "2") == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["c-6", "c-5"]
    assert store_cli(config, "list", "--item", "nothing") == 0
    assert capsys.readouterr().out.strip() == "no captures match (of 7 in the store)"


def test_show_prints_the_whole_record_with_file_paths(config, root, capsys):
    assert store_cli(config, "show", "c-2") == 0
    out = capsys.readouterr().out
    fields = {line.split("  ", 1)[0]: line.split("  ", 1)[1].strip() for line in out.splitlines()}
    record = make_record("c-2", item="item-A", minutes=2)
    assert fields["capture"] == "c-2"
    assert fields["captured at"] == record.captured_at
    assert fields["station"] == "st-01" and fields["operator"] == "badge-42"
    assert fields["item"] == "item-A (cardboard)"
    assert fields["camera"] == "exposure_us 8000.0, gain_db 1.5, white_balance [1.9, 1.0, 1.6]"
    assert fields["profile version"] == "profile-7"
    assert fields["model versions"] == "scorer scorer-3.0.1, segmenter seg-1.2.0"
    assert fields["p_any"] == f"{record.outputs.p_any:.3f}"
    assert f"penetration {record.outputs.p_types['penetration']:.3f}" in fields["p_types"]
    assert fields["item crop p_any"] == (f"{record.outputs.item_p_any:.3f} "
                                         f"(p_major {record.outputs.item_p_major:.3f})")
    assert fields["fused"] == f"{record.outputs.fused:.3f}"
    assert fields["verdict"] == "DAMAGED (deformation)"
    assert fields["latencies ms"] == ("grab 41.5, preprocess 12.25, reference 8.5, supervised 30 "
                                      "(total 92.25)")   # the store keeps them sorted
    assert fields["confirmation"].startswith("major by badge-3 at 2025-03-01T08:02:00")
    assert fields["confirmation"].endswith("agrees with the verdict")
    assert fields["defect types"] == "penetration"
    assert fields["gallery"] == "not a reference"
    for kind, name in [("frame", "frame.jpg"), ("tray", "tray.jpg"), ("mask", "mask.png"),
                       ("item_crop", "item_crop.jpg"), ("heatmap", "heatmap.png")]:
        assert fields[f"file {kind}"] == str(root / "2025/03/01/c-2" / name)
    assert store_cli(config, "show", "c-6") == 0
    assert "reference of item-A" in capsys.readouterr().out


def test_unknown_capture_missing_store_and_empty_store_are_one_line_errors(
        config, root, tmp_path, capsys):
    assert store_cli(config, "show", "nope") == 1
    error = capsys.readouterr().err.strip()
    assert error == (f"station-app store: no capture 'nope' in {root}: ids are listed by "
                     "`station-app store list`")
    missing = tmp_path / "elsewhere"
    assert store_cli(config, "summary", "--store", str(missing)) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"no capture store at {missing}" in error[0]
    assert "--store DIR" in error[0]
    assert not missing.exists()     # a reader creates nothing
    CaptureStore(tmp_path / "empty").close()
    assert store_cli(config, "export", "--store", str(tmp_path / "empty"),
                     "--out", str(tmp_path / "set")) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "is empty: nothing to export" in error[0]
    assert store_cli(config, "list", "--store", str(tmp_path / "empty")) == 0
    assert capsys.readouterr().out.strip() == f"no captures in {tmp_path / 'empty'} yet"


def test_export_writes_a_data_set_the_checker_accepts_with_the_confirmations_as_labels(
        config, root, tmp_path, capsys):
    out = tmp_path / "export"
    assert store_cli(config, "export", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "exporting 6 confirmed captures" in printed
    assert "0 errors" in printed.splitlines()[-1]
    queries = {}
    references = {}
    for split in available_splits(out):
        data = read_split(out, split)
        queries.update({query.capture_id: query for query in data.queries})
        for reference in data.references:
            references.setdefault(reference.item_identifier, set()).add(
                Path(reference.reference_image).parent.name)
    # Queries: confirmed, not current references (c-0 aged out of item-A's gallery).
    assert set(queries) == {"c-0", "c-2", "c-5"}
    for capture_id, (_, item, _, verdict, (severity, types)) in (
            (c[0], c) for c in CAPTURES if c[0] in queries):
        query = queries[capture_id]
        assert query.item_identifier == item
        assert (query.defect, query.major_defect, query.defect_types) == (
            severity != "none", severity == "major", types)
        assert query.extra["station_verdict"] == verdict
        assert query.extra["confirmed_by"] == CONFIRMED_BY[capture_id]
    assert references == {"item-A": {"c-6", "c-1"}, "item-B": {"c-4"}}

    # A non-empty folder is refused unless --force (which updates the export in place).
    assert store_cli(config, "export", "--out", str(out)) == 1
    assert "is not empty" in capsys.readouterr().err
    assert store_cli(config, "export", "--out", str(out), "--force",
                     "--since", "2025-03-01T08:05:00+00:00") == 0
    assert "exporting 2 confirmed captures since" in capsys.readouterr().out
    assert store_cli(config, "export", "--out", str(tmp_path / "early"),
                     "--until", "2025-03-01T08:05:00+00:00") == 0
    printed = capsys.readouterr()
    assert "exporting 4 confirmed captures until" in printed.out
    assert "export [" in printed.err                  # the copy shows its progress


def test_export_runs_the_checker_and_fails_on_what_it_finds(config, root, tmp_path, capsys):
    # item-A goes to train and item-B to validation (split_of); a broken test split left
    # in the folder is not rewritten by the export, and the checker must report it.
    out = tmp_path / "export"
    out.mkdir()
    (out / "query-test.parquet").write_bytes(b"not parquet")
    assert store_cli(config, "export", "--out", str(out), "--force") == 1
    printed = capsys.readouterr().out.splitlines()
    assert "train: 2 queries, 2 references" in printed
    assert "validation: 1 queries, 1 references" in printed
    assert any("test in" in line and "earlier export" in line for line in printed)
    assert any(line.startswith(str(out / "query-test.parquet")) for line in printed)
    assert printed[-1].startswith("1 error")


def test_gallery_lists_the_references_newest_first(config, root, capsys):
    assert store_cli(config, "gallery", "item-A") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["capture", "captured", "joined", "confirmed", "by"]
    assert lines[1].split()[:3] == ["c-6", "2025-03-01", "08:06:00Z"]
    assert lines[1].split()[-1] == "badge-6"
    assert lines[2].split()[0] == "c-1" and lines[2].split()[-1] == "badge-2"
    assert lines[3] == "2 of at most 2 references of item-A (newest first)"
    assert store_cli(config, "gallery", "item-Z") == 0
    assert "item item-Z has no references" in capsys.readouterr().out


def test_remove_reference_needs_a_pin_set_and_the_right_pin(config, root, capsys, monkeypatch):
    argv = ("remove-reference", "c-1", "--reason", "glare on the lid", "--by", "tech-1",
            "--pin-stdin")
    assert store_cli(config, *argv, stdin=f"{PIN}\n", monkeypatch=monkeypatch) == 1
    assert capsys.readouterr().err.strip() == (
        "station-app store: no technician PIN is set: set one with `station-app profile "
        "set-pin`, then run remove-reference again")
    pins(config).set_pin(PIN)
    assert store_cli(config, *argv, stdin="1111\n", monkeypatch=monkeypatch) == 1
    assert "wrong PIN; 2 attempts left" in capsys.readouterr().err
    assert store_cli(config, "gallery", "item-A") == 0
    assert "c-1 " in capsys.readouterr().out           # still a reference

    assert store_cli(config, *argv, stdin=f"{PIN}\n", monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out.strip() == (
        "removed c-1 from the gallery of item-A (by tech-1: glare on the lid); 1 reference left")
    assert store_cli(config, "gallery", "item-A") == 0
    out = capsys.readouterr().out
    assert "c-1 " not in out and out.splitlines()[1].startswith("c-6 ")
    with CaptureStore(root, read_only=True) as store:
        row = store._query("SELECT removed_by, removal_reason FROM gallery WHERE capture_id = 'c-1'")
    assert tuple(row[0]) == ("tech-1", "glare on the lid")

    # Not a reference (any more), or no such capture: refused before the PIN is asked.
    assert store_cli(config, *argv, stdin="", monkeypatch=monkeypatch) == 1
    assert "c-1 is not a reference of item item-A" in capsys.readouterr().err
    assert store_cli(config, "remove-reference", "nope", "--reason", "x", "--pin-stdin",
                     stdin="", monkeypatch=monkeypatch) == 1
    assert "no capture 'nope'" in capsys.readouterr().err


def test_check_passes_a_sound_store_and_fails_on_a_missing_image(config, root, capsys):
    orphan = root / "2025/03/01/crashed-capture"
    orphan.mkdir()
    (orphan / "tray.jpg").write_bytes(b"partial")
    assert store_cli(config, "check") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["orphan (no capture row, removed when the station starts): "
                   "2025/03/01/crashed-capture",
                   f"7 captures checked in {root}: 0 database problems, 0 missing files, 1 orphan"]

    (root / "2025/03/01/c-4/mask.png").unlink()
    assert store_cli(config, "check") == 1
    out = capsys.readouterr().out
    assert "missing file: c-4: mask 2025/03/01/c-4/mask.png" in out
    assert "7 captures checked" in out and "1 missing file," in out
    assert store_cli(config, "show", "c-4") == 0
    assert "mask.png  (MISSING)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["summary"], ["list"], ["list", "--unconfirmed"], ["show", "c-5"], ["gallery", "item-A"],
    ["check"], ["export", "--out", "{out}"]])
def test_read_only_actions_leave_the_database_bytes_unchanged(config, root, tmp_path, argv):
    before = database_bytes(root)
    files_before = capture_files(root)
    argv = [arg.replace("{out}", str(tmp_path / "export")) for arg in argv]
    assert store_cli(config, *argv) == 0
    assert database_bytes(root) == before
    # A WAL reader may create the -wal and -shm files (SQLite's shared index), but writes
    # no page: the log stays empty.
    wal = root / "captures.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    assert capture_files(root) == files_before


def test_a_reader_works_beside_a_writer_that_holds_the_store_open(config, root, capsys):
    data = load_config(config, env={}).data
    with CaptureStore(data.captures, data.min_free_gb, data.gallery_size) as writer:
        writer.add_capture(make_record("c-7", item="item-C", minutes=7), make_images("c-7", 48))
        assert store_cli(config, "list", "--limit", "1") == 0
        assert capsys.readouterr().out.splitlines()[1].startswith("c-7 ")
        writer.add_capture(make_record("c-8", item="item-C", minutes=8), make_images("c-8", 48))
        assert store_cli(config, "summary") == 0
    assert "9 (6 confirmed, 3 unconfirmed)" in capsys.readouterr().out
