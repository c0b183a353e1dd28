"""``station-app profile list|show|rollback|set-pin`` against a real profile store and PIN
file; the terminal prompt is driven through a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from calibration.pin import PinStore
from calibration.profile import (CameraProfile, ProfileStore, StationProfile,
                                 ThresholdsProfile)
from station_app.cli import main
from station_app.config import load_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "station.yaml"
    path.write_text(f"data:\n  root: {tmp_path / 'data'}\ncalibration:\n"
                    f"  pin_max_failures: 2\n  pin_lockout_minutes: 5\n")
    return path


@pytest.fixture
def store(config) -> ProfileStore:
    store = ProfileStore(load_config(config, env={}).calibration.profile_dir)
    store.save_new_version(StationProfile(camera=CameraProfile(exposure_us=8000),
                                          thresholds=ThresholdsProfile(0.3, 0.7)),
                           "ana", "first calibration")
    store.update_current("ben", "thresholds from replay val-0412",
                         thresholds=ThresholdsProfile(0.1, 0.5))
    return store


def pins(config: Path) -> PinStore:
    calibration = load_config(config, env={}).calibration
    return PinStore(calibration.pin_file, calibration.pin_max_failures,
                    calibration.pin_lockout_minutes)


def run(argv: list[str], monkeypatch, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["profile", *argv])


def test_list_shows_who_when_why_and_the_current_one(config, store, capsys, monkeypatch):
    assert run(["list", "--config", str(config)], monkeypatch) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["version", "saved", "by", "from", "note"]
    assert lines[1].split()[0] == "v0001" and "ana" in lines[1]
    assert lines[1].endswith("first calibration")
    assert lines[2].split()[:2] == ["v0002", "*"] and " v0001 " in lines[2]
    assert lines[2].endswith("thresholds from replay val-0412")


def test_list_of_an_empty_store_says_what_to_do(config, capsys, monkeypatch):
    assert run(["list", "--config", str(config)], monkeypatch) == 0
    assert "no calibration profiles" in capsys.readouterr().out


def test_show_prints_the_current_or_a_given_version(config, store, capsys, monkeypatch):
    assert run(["show", "--config", str(config)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {store.path(2)} (current)") and "ok_below: 0.1" in out
    assert run(["show", "v0001", "--config", str(config)], monkeypatch) == 0
    assert "ok_below: 0.3" in capsys.readouterr().out
    assert run(["show", "7", "--config", str(config)], monkeypatch) == 1
    assert "no profile v0007" in capsys.readouterr().err


def test_rollback_is_refused_until_a_pin_is_set(config, store, capsys, monkeypatch):
    assert run(["rollback", "1", "--author", "cara", "--config", str(config)],
               monkeypatch) == 1
    assert ("no technician PIN is set: set one with `station-app profile set-pin`"
            in capsys.readouterr().err)
    assert store.current_version() == 2 and len(store.versions()) == 2
    pins(config).set_pin("2580")
    assert run(["rollback", "1", "--author", "cara", "--note", "drift", "--pin-stdin",
                "--config", str(config)], monkeypatch, "2580\n") == 0
    assert "v0003 is a copy of v0001" in capsys.readouterr().out
    current = store.current()
    assert current.version == 3 and current.thresholds.ok_below == 0.3
    assert current.author == "cara" and current.note == "rollback to v0001: drift"


def test_rollback_in_an_empty_store_needs_no_pin_and_says_what_is_missing(
        config, capsys, monkeypatch):
    assert run(["rollback", "1", "--author", "cara", "--config", str(config)],
               monkeypatch) == 1
    assert "no profile v0001" in capsys.readouterr().err


@pytest.mark.parametrize("pointer", ["v0007\n", "garbage\n"])
def test_a_damaged_current_pointer_is_repaired_by_the_rollback_it_names(
        config, store, capsys, monkeypatch, pointer):
    (store.root / "current").write_text(pointer)
    pins(config).set_pin("2580")
    assert run(["show", "--config", str(config)], monkeypatch) == 1
    error = capsys.readouterr().err
    assert "station-app profile rollback VERSION" in error
    assert run(["show", "1", "--config", str(config)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "ok_below: 0.3" in out and "no version is current" in out
    assert run(["list", "--config", str(config)], monkeypatch) == 0
    assert "no version is current" in capsys.readouterr().out
    assert run(["rollback", "1", "--author", "me", "--pin-stdin", "--config", str(config)],
               monkeypatch, "2580\n") == 0
    assert "v0003 is a copy of v0001" in capsys.readouterr().out
    current = store.current()
    assert current.version == 3 and current.based_on == 1
    assert current.note == "rollback to v0001; repaired the current pointer"
    assert (store.root / "current").read_text() == "v0003\n"


def test_rollback_asks_the_pin_when_one_is_set(config, store, capsys, monkeypatch):
    pins(config).set_pin("2580")
    assert run(["rollback", "1", "--pin-stdin", "--config", str(config)], monkeypatch,
               "1111\n") == 1
    assert "wrong PIN; 1 attempt left" in capsys.readouterr().err
    assert store.current_version() == 2
    assert run(["rollback", "1", "--pin-stdin", "--config", str(config)], monkeypatch,
               "2580\n") == 0
    assert store.current_version() == 3


def test_set_pin_from_stdin_then_change_it(config, capsys, monkeypatch):
    assert run(["set-pin", "--pin-stdin", "--config", str(config)], monkeypatch, "4711\n") == 0
    assert "technician PIN set" in capsys.readouterr().out
    assert pins(config).verify("4711").accepted
    assert run(["set-pin", "--pin-stdin", "--config", str(config)], monkeypatch,
               "4711\n13579\n") == 0
    assert "changed" in capsys.readouterr().out
    assert pins(config).verify("13579").accepted
    # A bad new PIN and a wrong current PIN are refused in one line each.
    assert run(["set-pin", "--pin-stdin", "--config", str(config)], monkeypatch,
               "13579\n12\n") == 1
    assert capsys.readouterr().err.strip() == ("station-app profile: a technician PIN is 4 "
                                               "to 12 digits")
    for attempt in range(2):
        assert run(["set-pin", "--pin-stdin", "--config", str(config)], monkeypatch,
                   "0000\n2222\n") == 1
    assert "locked until" in capsys.readouterr().err
    assert run(["set-pin", "--pin-stdin", "--config", str(config)], monkeypatch,
               "13579\n2222\n") == 1   # locked: even the right PIN waits
    assert "locked until" in capsys.readouterr().err
    assert run(["set-pin", "--pin-stdin", "--config", str(config)], monkeypatch, "") == 1
    assert "standard input ended" in capsys.readouterr().err


def _converse(argv: list[str], answers: list[str], limit_s: float = 30.0) -> tuple[int, str]:
    """Run the CLI in a child on a new pseudo-terminal; answer each ``PIN`` prompt."""
    pid, fd = os.forkpty()
    if pid == 0:  # child: the terminal is its controlling tty, where getpass reads
        try:
            os.chdir(ROOT)
            os.execv(sys.executable, [sys.executable, "-m", "station_app.cli", *argv])
        finally:
            os._exit(127)
    output, pending, deadline = b"", list(answers), time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            # A prompt is waiting when the output ends in it (getpass has turned echo off
            # before writing it; after the answer it writes a newline).
            if pending and output.endswith(b": ") and b"PIN" in output.rsplit(b"\n", 1)[-1]:
                os.write(fd, pending.pop(0).encode() + b"\r")
    finally:
        reaped, status = os.waitpid(pid, os.WNOHANG)
        give_up = time.monotonic() + 10
        while reaped == 0 and time.monotonic() < give_up:
            time.sleep(0.05)
            reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped == 0:
            os.kill(pid, signal.SIGKILL)   # stuck: do not hang the test run
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_set_pin_asks_on_the_terminal_twice_without_echo(config):
    code, output = _converse(["profile", "set-pin", "--config", str(config)], ["8642", "8642"])
    assert code == 0, output
    assert "New technician PIN (4 to 12 digits):" in output and "Repeat the new PIN:" in output
    assert "8642" not in output    # not echoed
    assert pins(config).verify("8642").accepted
    code, output = _converse(["profile", "set-pin", "--config", str(config)],
                             ["8642", "1234", "4321"])
    assert code == 1 and "the two new PINs differ; nothing changed" in output
    assert pins(config).verify("8642").accepted
