"""``station-app demo --headless``: the whole station with no hardware, end to end."""

from __future__ import annotations

import re

from station_app.cli import main
from station_app.demo import demo_item_codes, ean13
from station_app.store import CaptureStore
from drivers.scanner.codes import CodeRules, validate_code


def test_demo_item_codes_are_valid_ean13():
    assert ean13("400638133393") == "4006381333931"
    codes = demo_item_codes(3)
    assert len(set(codes)) == 3
    assert all(validate_code(code, CodeRules()) == code for code in codes)


def test_headless_demo_runs_two_inspections_into_the_store(tmp_path, capsys):
    config = tmp_path / "station.yaml"
    config.write_text(f"data:\n  root: {tmp_path / 'data'}\n  min_free_gb: 0.1\n")
    assert main(["demo", "--headless", "--count", "2", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "trigger->verdict" in line and "fused=" in line]
    assert len(lines) == 2, out
    assert all(re.search(r": (OK|REVIEW|DAMAGED) fused=\d\.\d{3}", line) for line in lines)
    assert re.search(r"latency over 2 verdict\(s\): p50 \d+ ms, p95 \d+ ms", out), out

    report = tmp_path / "data" / "demo" / "report.html"
    assert report.is_file() and report.stat().st_size > 1000
    with CaptureStore(tmp_path / "data" / "captures", min_free_gb=0.1) as store:
        records = store.list()
        assert len(records) == 2
        assert all(record.confirmed and record.confirmation.agrees for record in records)
        assert [r.item_identifier for r in records] == demo_item_codes(2)
        assert all({"frame", "tray", "mask", "item_crop"} <= set(r.files) for r in records)
        item_scores = [(r.outputs.item_p_any, r.outputs.item_p_major) for r in records]
        assert all(p is not None and 0.0 <= p <= 1.0 for pair in item_scores for p in pair), item_scores
        assert store.verify().ok


def test_demo_failure_is_one_clear_line(tmp_path, capsys):
    config = tmp_path / "station.yaml"
    config.write_text(f"data:\n  root: {tmp_path / 'data'}\n")
    assert main(["demo", "--headless", "--count", "0", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "station-app demo: --count must be at least 1, got 0"
