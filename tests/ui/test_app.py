"""Starting the operator window: ``run_operator_window``, ``station-app demo`` choosing the
window or headless, ``station-app ui`` over a workflow-like client."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox

from station_app.cli import build_parser, main
from station_app.commands.demo import choose_mode
from station_app.config import load_config
from station_app.workflow import State
from tests.ui.conftest import ScriptedCore, write_station_config
from ui.app import run_operator_window, run_remote_window
from ui.operator_window import OperatorWindow


def _when_running(action) -> list:
    """Run ``action(window)`` once the event loop runs, then quit it; returns the windows
    seen (the call returns only after ``app.exec()`` started)."""
    seen: list = []

    def act() -> None:
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, OperatorWindow) and w.isVisible()]
        seen.extend(windows)
        if windows:
            action(windows[0])
        QApplication.instance().quit()
    QTimer.singleShot(0, act)
    return seen


@pytest.mark.parametrize("headless, environ, mode, why", [
    (True, {"DISPLAY": ":0"}, "headless", "--headless given"),
    (False, {}, "headless", "no screen"),
    (False, {"DISPLAY": ""}, "headless", "no screen"),
    (False, {"DISPLAY": ":99"}, "window", "DISPLAY=:99"),
    (False, {"WAYLAND_DISPLAY": "wayland-0"}, "window", "WAYLAND_DISPLAY"),
    (False, {"QT_QPA_PLATFORM": "offscreen"}, "window", "QT_QPA_PLATFORM=offscreen"),
])
def test_demo_chooses_the_window_only_with_a_screen(headless, environ, mode, why):
    chosen, reason = choose_mode(headless, environ)
    assert chosen == mode and why in reason


def test_demo_opens_the_window_with_a_screen(qapp, tmp_path, emulator_frames, monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    config = write_station_config(tmp_path)
    seen = _when_running(lambda window: None)
    assert main(["demo", "--config", str(config), "--image-source", str(emulator_frames),
                 "--out", str(tmp_path / "run")]) == 0
    assert len(seen) == 1
    window = seen[0]
    assert window.demo_scan_action.isVisible()                 # the simulated scanner
    assert window.info.runtime and window.info.station_id == "station-01"
    assert (tmp_path / "run" / "captures").is_dir()            # the window's station store


def test_demo_runs_headless_without_a_screen(tmp_path, emulator_frames, monkeypatch, capsys,
                                             caplog):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    config = write_station_config(tmp_path)
    with caplog.at_level(logging.INFO, logger="station_app.demo"):
        assert main(["demo", "--count", "1", "--no-report", "--config", str(config),
                     "--image-source", str(emulator_frames),
                     "--out", str(tmp_path / "run")]) == 0
    assert "trigger->verdict" in capsys.readouterr().out
    assert any("running headless (no screen" in r.getMessage() for r in caplog.records)


def test_run_operator_window_signs_in_and_closes_the_station(qapp, tmp_path, emulator_frames):
    config = load_config(write_station_config(tmp_path))
    opened: list = []
    signed_in: list = []

    def on_ready(window, station) -> None:
        opened.append(station)
        window.badge_entry.setText("badge-9")
        window.sign_in()

        _quit_when(lambda: window.state is State.SIGNED_IN,
                   lambda: signed_in.append(window.state))
    assert run_operator_window(config, emulator_frames, tmp_path / "run", on_ready=on_ready) == 0
    assert signed_in == [State.SIGNED_IN]
    station = opened[0]
    with pytest.raises(sqlite3.ProgrammingError):          # closed with the window
        station.store.list()


def test_a_station_that_cannot_open_is_shown_and_printed(qapp, tmp_path, capsys):
    config = load_config(write_station_config(tmp_path))
    shown: list[str] = []

    def dismiss() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            shown.append(box.text())
            box.done(0)
        else:
            QTimer.singleShot(50, dismiss)
    QTimer.singleShot(50, dismiss)
    assert run_operator_window(config, tmp_path / "no-such-frames", tmp_path / "run") == 1
    printed = capsys.readouterr().err
    assert "The station could not start:" in printed
    assert shown and shown[0] in printed


def _quit_when(condition, then, limit_s: float = 20.0) -> None:
    """Poll ``condition`` in the event loop; when true (or after ``limit_s``) run
    ``then`` and quit the loop."""
    import time
    deadline = time.monotonic() + limit_s

    def poll() -> None:
        if condition() or time.monotonic() > deadline:
            then()
            QApplication.instance().quit()
        else:
            QTimer.singleShot(20, poll)
    QTimer.singleShot(0, poll)


def test_the_ui_command_is_registered():
    parser = build_parser()
    args = parser.parse_args(["ui", "--socket", "/run/x.sock"])
    assert str(args.socket) == "/run/x.sock" and callable(args.handler)


def test_the_ui_without_a_screen_says_so_instead_of_aborting(tmp_path, monkeypatch, capsys):
    """Qt aborts the process (SIGABRT) when it finds no display: refuse before that."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    config = write_station_config(tmp_path)
    assert main(["ui", "--config", str(config), "--socket", str(tmp_path / "core.sock")]) == 1
    error = capsys.readouterr().err
    assert "station-app ui: no screen" in error
    assert "set DISPLAY" in error and "kiosk session" in error


def test_remote_window_runs_over_any_workflow_like_client(qapp, tmp_path):
    config = load_config(write_station_config(tmp_path))
    core = ScriptedCore()
    states: list = []

    def on_ready(window, client) -> None:
        assert client is core
        window.badge_entry.setText("badge-3")
        window.sign_in()
        _quit_when(lambda: window.state is State.SIGNED_IN,
                   lambda: states.append(window.state))
    assert run_remote_window(config, core, on_ready=on_ready) == 0
    assert states == [State.SIGNED_IN]
    assert [type(c).__name__ for c in core.commands] == ["SignIn"]   # no Ticks: the core ticks
    assert core.listeners == []                                      # unsubscribed on close
