"""The real station core with a real notify socket: the emulated camera, the lighting and
scanner simulators on pseudo-terminals, the bundled models and a capture store in a
temporary folder. Nothing is mocked; the lights fault is the simulator going silent."""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from station_app.errors import StationError
from station_app.service.journal_logging import setup_logging
from tests.station_app.service.notify_socket import NotifyListener
from tests.station_app.service.running_core import (RunningCore, emulator_frames,
                                                    write_config)

REPOSITORY = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return emulator_frames(tmp_path_factory.mktemp("emulator") / "frames")


@pytest.fixture
def listener(tmp_path):
    listening = NotifyListener(tmp_path / "notify.sock")
    yield listening
    listening.close()


@pytest.fixture
def journal():
    """The core's log lines as `serve` formats them (restoring the root logger after)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    setup_logging("line-3", stream=stream, environ={})
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def count_pets(listener: NotifyListener, after: float = 0.0) -> int:
    return sum(1 for at, m in listener.snapshot() if m.get("WATCHDOG") == "1" and at > after)


def test_ready_only_once_the_station_is_up_then_the_watchdog_is_fed(tmp_path, frames, listener):
    from station_app.service.client import query_status

    with RunningCore(write_config(tmp_path, frames), listener) as running:
        ready_index, ready_at, ready = listener.wait_for(lambda m: "READY" in m, timeout_s=60)
        core = running.core
        assert ready["READY"] == "1"
        assert ready["STATUS"] == "ready: healthy: camera, lights, models, workflow, disk"
        # READY came after the station was open, and nothing before it said ready.
        assert core.opened_at is not None and core.opened_at <= ready_at
        earlier = [m for _, m in listener.snapshot()[:ready_index]]
        assert earlier and all(set(m) == {"STATUS"} for m in earlier)
        assert earlier[0]["STATUS"].startswith("starting: opening camera, lights")
        assert core.station.devices.camera.is_open

        listener.wait_for(lambda m: m.get("WATCHDOG") == "1", since=ready_index + 1)
        time.sleep(0.5)
        assert count_pets(listener, after=ready_at) >= 3       # tick 0.1 s, all healthy

        status = query_status(core.socket_path)                # what `station-app status` asks
        assert status["ready"] is True and status["station"] == "line-3"
        assert status["health"]["healthy"] is True
        assert {c["component"] for c in status["health"]["components"]} == {
            "camera", "lights", "models", "workflow", "disk"}
        assert status["watchdog"]["fed"] is True
    assert running.error is None


def test_silent_lights_fail_health_and_starve_the_watchdog_until_they_answer(
        tmp_path, frames, listener):
    from station_app.service.client import query_status

    with RunningCore(write_config(tmp_path, frames), listener) as running:
        listener.wait_for(lambda m: "READY" in m, timeout_s=60)
        core = running.core
        core.station.lighting_simulator.pty.go_silent()      # the controller hangs
        _, failed_at, failing = listener.wait_for(
            lambda m: "lights FAIL" in m.get("STATUS", ""), timeout_s=10)
        assert "not answering" in failing["STATUS"]
        _, starved_at, starved = listener.wait_for(
            lambda m: "watchdog no longer fed" in m.get("STATUS", ""), timeout_s=10)
        assert starved_at - failed_at >= 0.9                  # the 1 s grace was given
        pets_before = count_pets(listener)
        time.sleep(1.0)                                       # ~10 ticks
        assert count_pets(listener) == pets_before            # no pet while lights fail

        status = query_status(core.socket_path)
        lights = next(c for c in status["health"]["components"] if c["component"] == "lights")
        assert lights["level"] == "fail" and "not answering" in lights["message"]
        assert status["watchdog"]["fed"] is False and status["health"]["healthy"] is False

        core.station.lighting_simulator.pty.resume()          # it answers again
        listener.wait_for(lambda m: m.get("STATUS", "").startswith("healthy"), timeout_s=10)
        time.sleep(0.5)
        assert count_pets(listener) > pets_before
    assert running.error is None


def test_an_inspection_logs_its_capture_id_on_every_line(tmp_path, frames, listener, journal):
    from station_app.workflow import (CaptureSaved, Confirm, ConfirmationSaved, ItemTyped,
                                      SignIn, Trigger, VerdictReady)

    with RunningCore(write_config(tmp_path, frames), listener) as running:
        listener.wait_for(lambda m: "READY" in m, timeout_s=60)
        workflow = running.core.station.workflow
        events: list = []
        done = threading.Event()

        def on_event(event):
            events.append(event)
            if isinstance(event, ConfirmationSaved):
                done.set()
        workflow.subscribe(on_event)
        workflow.submit(SignIn("associate-1"))
        workflow.submit(ItemTyped("4006381333931"))
        workflow.submit(Trigger())
        deadline = time.monotonic() + 60
        while not any(isinstance(e, VerdictReady) for e in events):
            assert time.monotonic() < deadline, events
            time.sleep(0.05)
        workflow.submit(Confirm(agree=True))
        assert done.wait(30), events
    capture_id = next(e.capture_id for e in events if isinstance(e, CaptureSaved))
    lines = journal.getvalue().splitlines()
    assert lines and all(" station=line-3 capture=" in line for line in lines)
    about = [line for line in lines if f"capture={capture_id} " in line]
    assert any("capture saved (item 4006381333931)" in line for line in about), lines
    assert any(re.search(r"verdict (OK|REVIEW|DAMAGED), fused score", line) for line in about)
    assert "capture=- station_app.service.core: ready in" in journal.getvalue()


def test_a_ui_that_dies_mid_inspection_does_not_disturb_it(tmp_path, frames, listener):
    """The operator UI is a client of the core: killed while the capture runs, the
    inspection completes in the core, and the restarted UI is shown its verdict."""
    from station_app.service.client import WorkflowClient
    from station_app.workflow import (ItemTyped, SignIn, State, StateChanged, Trigger,
                                      VerdictReady)

    with RunningCore(write_config(tmp_path, frames), listener) as running:
        listener.wait_for(lambda m: "READY" in m, timeout_s=60)
        workflow = running.core.station.workflow
        in_core: list = []
        workflow.subscribe(in_core.append)
        first_ui = WorkflowClient(running.core.socket_path, name="operator UI")
        assert first_ui.wait_connected(10)
        first_ui.submit(SignIn("associate-2"))
        first_ui.submit(ItemTyped("4006381333931"))
        first_ui.submit(Trigger())
        deadline = time.monotonic() + 30
        while not any(isinstance(e, StateChanged) and e.new is State.CAPTURING for e in in_core):
            assert time.monotonic() < deadline, in_core
            time.sleep(0.01)
        first_ui.close()                                       # the UI goes away mid-capture
        while not any(isinstance(e, VerdictReady) for e in in_core):
            assert time.monotonic() < deadline, in_core
            time.sleep(0.05)
        verdict = next(e for e in in_core if isinstance(e, VerdictReady))

        seen: list = []
        second_ui = WorkflowClient(running.core.socket_path, name="operator UI")
        second_ui.subscribe(seen.append)
        try:
            assert second_ui.wait_connected(10)
            # The catch-up: the verdict on screen, then the last state change.
            while not (any(isinstance(e, VerdictReady) for e in seen)
                       and second_ui.state is State.VERDICT_SHOWN):
                assert time.monotonic() < deadline, (seen, second_ui.state)
                time.sleep(0.05)
            shown = next(e for e in seen if isinstance(e, VerdictReady))
            assert shown.capture_id == verdict.capture_id and shown.label == verdict.label
        finally:
            second_ui.close()
        assert not any(type(e).__name__ == "Fault" for e in in_core)
    assert running.error is None


def test_stop_says_stopping_and_closes_everything(tmp_path, frames, listener):
    with RunningCore(write_config(tmp_path, frames), listener) as running:
        listener.wait_for(lambda m: "READY" in m, timeout_s=60)
        socket_path = running.core.socket_path
        assert socket_path.exists()
        running.core.request_stop("maintenance")
        running.thread.join(timeout=30)
        assert not running.thread.is_alive() and running.error is None
        _, _, stopping = listener.wait_for(lambda m: "STOPPING" in m)
        assert stopping == {"STOPPING": "1", "STATUS": "stopping: maintenance"}
        assert not socket_path.exists()                        # the server removed it
        assert not running.core.station.devices.camera.is_open
        assert not running.core.station.lighting_simulator.pty.is_plugged


def _block_the_dispatcher(workflow, gate: threading.Event) -> threading.Event:
    """The next event the workflow emits blocks its dispatcher (a listener runs on it)
    until ``gate`` is set; returns an Event set once it is blocked."""
    blocked = threading.Event()

    def listener(event) -> None:
        if not blocked.is_set():
            blocked.set()
            gate.wait(30)
    workflow.subscribe(listener)
    return blocked


def test_a_stuck_dispatcher_fails_health_and_starves_the_watchdog(tmp_path, frames, listener):
    """The dispatcher thread stays alive but handles nothing: that is a failure too."""
    from station_app.workflow import SignIn

    gate = threading.Event()
    with RunningCore(write_config(tmp_path, frames), listener) as running:
        listener.wait_for(lambda m: "READY" in m, timeout_s=60)
        workflow = running.core.station.workflow
        blocked = _block_the_dispatcher(workflow, gate)
        try:
            workflow.submit(SignIn("associate-9"))
            assert blocked.wait(10)
            _, failed_at, failing = listener.wait_for(
                lambda m: "workflow FAIL" in m.get("STATUS", ""), timeout_s=10)
            assert "stuck in a command" in failing["STATUS"]
            _, starved_at, _ = listener.wait_for(
                lambda m: "watchdog no longer fed" in m.get("STATUS", ""), timeout_s=10)
            assert starved_at - failed_at >= 0.9                  # the 1 s grace was given
            pets_before = count_pets(listener)
            time.sleep(0.5)
            assert count_pets(listener) == pets_before
        finally:
            gate.set()
        listener.wait_for(lambda m: m.get("STATUS", "").startswith("healthy"), timeout_s=10)
    assert running.error is None


def test_commands_during_the_stop_are_refused_and_never_reach_the_workflow(
        tmp_path, frames, listener):
    """systemctl stop while a step runs: the core waits for it, but a Trigger sent in that
    wait must not start a capture that closing the station would cut off."""
    from station_app.service.client import WorkflowClient
    from station_app.workflow import CommandIgnored, ItemTyped, SignIn, State, Trigger

    gate = threading.Event()
    with RunningCore(write_config(tmp_path, frames), listener) as running:
        listener.wait_for(lambda m: "READY" in m, timeout_s=60)
        core = running.core
        workflow = core.station.workflow
        in_core: list = []
        workflow.subscribe(in_core.append)
        ui = WorkflowClient(core.socket_path, name="operator UI")
        seen: list = []
        ui.subscribe(seen.append)
        try:
            assert ui.wait_connected(10)
            ui.submit(SignIn("associate-3"))
            # Block only once the sign-in is handled, so that the step caught in progress
            # is the item's (else the sign-in's event blocks and ItemTyped waits unhandled).
            deadline = time.monotonic() + 10
            while not any(getattr(e, "new", None) is State.SIGNED_IN for e in in_core):
                assert time.monotonic() < deadline, in_core
                time.sleep(0.01)
            blocked = _block_the_dispatcher(workflow, gate)   # a step still in progress
            ui.submit(ItemTyped("4006381333931"))
            assert blocked.wait(10)
            core.request_stop("maintenance")
            deadline = time.monotonic() + 10
            while not core.server.draining:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            ui.submit(Trigger())
            while not any(isinstance(e, CommandIgnored) for e in seen):
                assert time.monotonic() < deadline, seen
                time.sleep(0.01)
            ignored = next(e for e in seen if isinstance(e, CommandIgnored))
            assert ignored.command == "Trigger" and "stopping (maintenance)" in ignored.reason
        finally:
            gate.set()
            running.thread.join(timeout=30)
            ui.close()
    assert running.error is None
    assert workflow.state is State.WAITING_FOR_ITEM           # ItemTyped finished ...
    assert not any(getattr(e, "new", None) is State.CAPTURING for e in in_core)  # ... no capture


def test_a_station_that_cannot_open_never_says_ready(tmp_path, frames, listener):
    config = write_config(tmp_path, frames, "scanner:\n  driver: keyboard\n")
    text = config.read_text().replace("lighting:\n", "lighting:\n  driver: serial\n"
                                      f"  port: {tmp_path / 'no-such-adapter'}\n")
    config.write_text(text)
    with RunningCore(config, listener) as running:
        running.thread.join(timeout=60)
        assert isinstance(running.error, StationError)
        assert "lighting controller" in str(running.error)
        _, _, failed = listener.wait_for(lambda m: "cannot open the station" in m.get("STATUS", ""))
        assert "no-such-adapter" in failed["STATUS"]
    assert not any("READY" in m for _, m in listener.snapshot())


def test_serve_process_sigterm_stops_cleanly_with_journal_lines(tmp_path, frames, listener):
    config = write_config(tmp_path, frames)
    stderr_path = tmp_path / "stderr"
    with open(stderr_path, "wb") as stderr:
        info = os.fstat(stderr.fileno())
        env = {**os.environ, **listener.environment(WATCHDOG_USEC="10000000"),
               "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}", "PYLON_CAMEMU": "1"}
        process = subprocess.Popen([sys.executable, "-m", "station_app.cli", "serve",
                                    "--config", str(config)], cwd=REPOSITORY, env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            listener.wait_for(lambda m: "READY" in m, timeout_s=120)
            listener.wait_for(lambda m: m.get("WATCHDOG") == "1")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    _, _, stopping = listener.wait_for(lambda m: "STOPPING" in m)
    assert stopping["STATUS"] == "stopping: SIGTERM"
    lines = stderr_path.read_text().splitlines()
    assert lines and all(re.match(r"<[2-7]>station=line-3 capture=\S+ ", line)
                         for line in lines), lines
    assert any(line.startswith("<6>") and "station core stopped cleanly" in line
               for line in lines)
    assert not (tmp_path / "core.sock").exists()
