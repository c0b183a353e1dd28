"""Health checks on real parts: the emulated camera, the lighting simulator on a pty, the
bundled model files, a real capture store. Only ``systemctl`` is replaced (this test
machine and CI boot no systemd) and the disk's free space (a full disk cannot be made)."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from drivers.lighting.gardasoft import GardasoftController
from drivers.lighting.simulator import GardasoftSimulator
from station_app.config import load_config
from station_app.models import BUNDLED_MODELS
from station_app.service.health import (ComponentHealth, HealthReport, Level, LightsCheck,
                                        camera_health, camera_offline_health, disk_health,
                                        lights_offline_health, model_files_health,
                                        models_health, run_checks, service_health, store_health,
                                        workflow_health)
from station_app.store import CaptureStore
from station_app.store.disk import Usage
from tests.station_app.store_writer import make_images, make_record


def config_with(tmp_path: Path, text: str):
    path = tmp_path / "station.yaml"
    path.write_text(f"data:\n  root: {tmp_path / 'data'}\n  min_free_gb: 0.1\n{text}")
    return load_config(path)


# --------------------------------------------------------------------------- report

def test_report_table_json_round_trip_and_exit_code():
    report = HealthReport((ComponentHealth.ok("camera", "open"),
                           ComponentHealth.warn("disk", "getting full", "free space"),
                           ComponentHealth.fail("lights", "not answering", "check the cable")))
    assert not report.healthy and report.exit_code == 1
    assert [c.component for c in report.failing] == ["lights"]
    table = report.table().splitlines()
    assert table[0].split() == ["COMPONENT", "STATE", "DETAIL"]
    assert table[1].split() == ["camera", "OK", "open"]
    assert table[2].split()[:2] == ["disk", "WARN"] and table[3].strip() == "fix: free space"
    assert table[4].split()[:2] == ["lights", "FAIL"] and table[5].strip() == "fix: check the cable"
    assert table[-1] == "NOT healthy: lights failing"
    assert HealthReport.from_dict(report.to_dict()).components == report.components
    assert report.summary() == "disk WARN: getting full; lights FAIL: not answering"
    healthy = report.replace(ComponentHealth.ok("lights", "answers"))
    assert healthy.healthy and healthy.exit_code == 0 and healthy.get("lights").message == "answers"


def test_a_check_that_raises_is_that_component_failing():
    def broken():
        raise RuntimeError("pylon exploded")
    report = run_checks({"camera": broken, "disk": lambda: ComponentHealth.ok("disk", "fine")})
    camera = report.get("camera")
    assert camera.level is Level.FAIL and "RuntimeError: pylon exploded" in camera.message
    assert report.get("disk").level is Level.OK


# --------------------------------------------------------------------------- core parts

def test_camera_open_closed_and_removed(tmp_path):
    from drivers.camera import EmulatedBaslerCamera, enable_emulation
    enable_emulation(1)
    camera = EmulatedBaslerCamera(tmp_path)
    camera.open()
    try:
        result = camera_health(camera)
        assert result.level is Level.OK and "0815-" in result.message
        camera.simulate_removal()
        result = camera_health(camera)
        assert result.level is Level.FAIL and "removed" in result.message
        assert "USB cable" in result.fix
        camera.simulate_return()
    finally:
        camera.close()
    assert camera_health(camera).level is Level.FAIL


@pytest.fixture
def lights():
    simulator = GardasoftSimulator().start()
    controller = GardasoftController(simulator.port, timeout_s=0.2).open()
    yield simulator, controller
    controller.close()
    simulator.stop()


def test_lights_answer_then_go_silent(lights):
    simulator, controller = lights
    check = LightsCheck(controller)
    result = check()
    assert result.level is Level.OK and simulator.port in result.message
    simulator.pty.go_silent()
    result = check()
    assert result.level is Level.FAIL and "not answering" in result.message
    assert "serial cable" in result.fix
    simulator.pty.resume()
    assert check().level is Level.OK


def test_lights_are_not_probed_during_a_capture(lights):
    simulator, controller = lights
    busy = threading.Event()
    check = LightsCheck(controller, busy.is_set)
    assert check().level is Level.OK
    sent = len(simulator.commands_received)
    busy.set()
    simulator.pty.go_silent()
    assert check().level is Level.OK           # the last answer, nothing sent
    assert len(simulator.commands_received) == sent
    busy.clear()
    assert check().level is Level.FAIL


def test_models_workflow_and_disk():
    assert models_health({"segmenter": "1", "scorer": "2"}, "onnxruntime").level is Level.OK
    missing = models_health({"segmenter": "1"}, "onnxruntime")
    assert missing.level is Level.FAIL and "scorer" in missing.message

    class Workflow:
        state = None
        last_handled_at = None

        def __init__(self, thread):
            self._thread = thread

        def is_alive(self):
            return self._thread.is_alive()
    finished = threading.Thread(target=lambda: None)
    finished.start()
    finished.join()
    assert workflow_health(Workflow(finished)).level is Level.FAIL
    alive = threading.Event()
    running = threading.Thread(target=alive.wait)
    running.start()
    try:
        assert workflow_health(Workflow(running)).level is Level.OK
        # Alive but stuck: ticks are queued, nothing handled for longer than allowed.
        stuck = Workflow(running)
        stuck.last_handled_at = 100.0
        for now, level in ((102.0, Level.OK), (103.5, Level.FAIL)):
            health = workflow_health(stuck, stuck_after_s=3.0, ticking_since=90.0,
                                     clock=lambda: now)
            assert health.level is level, health
        assert "handled nothing for 4 s" in health.message and health.restart_helps
        # Ticking began after the last command: counted from the first tick.
        assert workflow_health(stuck, stuck_after_s=3.0, ticking_since=102.0,
                               clock=lambda: 104.0).level is Level.OK
        # Not ticked yet (the start-up check): no verdict on staleness.
        assert workflow_health(stuck, stuck_after_s=3.0, clock=lambda: 500.0).level is Level.OK
    finally:
        alive.set()
        running.join()


@pytest.mark.parametrize("free_gb, level", [(50, Level.OK), (7, Level.WARN), (4, Level.FAIL)])
def test_disk_against_the_reserve(tmp_path, free_gb, level):
    def usage(path):
        assert Path(path) == tmp_path            # the nearest existing folder is measured
        return Usage(100 * 10**9, 0, free_gb * 10**9)
    result = disk_health(tmp_path / "captures" / "not-yet", 5.0, usage)
    assert result.level is level
    assert f"{free_gb:.1f} GB free" in result.message
    assert result.restart_helps is (level is not Level.FAIL)   # a restart frees no space


# --------------------------------------------------------------------------- from outside

def test_model_files_match_then_a_flipped_byte_is_caught(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(BUNDLED_MODELS, models)
    config = config_with(tmp_path, f"models:\n  dir: {models}\n")
    result = model_files_health(config.models)
    assert result.level is Level.OK and "sha256 match" in result.message
    data = bytearray((models / "scorer.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (models / "scorer.onnx").write_bytes(bytes(data))
    (models / "segmenter.yaml").unlink()
    result = model_files_health(config.models)
    assert result.level is Level.FAIL and not result.restart_helps
    assert "sha256 mismatch" in result.message and "manifest file missing" in result.message


def test_store_missing_intact_and_with_a_lost_file(tmp_path):
    root = tmp_path / "captures"
    assert store_health(root).level is Level.WARN
    assert not root.exists()                        # status creates nothing
    with CaptureStore(root, min_free_gb=0.01) as store:
        for capture_id in ("c-1", "c-2"):
            store.add_capture(make_record(capture_id), make_images(capture_id))
        lost = store.path(store.get("c-2"), "tray")
    result = store_health(root)
    assert result.level is Level.OK and result.message.startswith("2 captures")
    lost.unlink()
    result = store_health(root)
    assert result.level is Level.FAIL and "1 capture file(s) missing" in result.message


def test_a_corrupt_database_fails(tmp_path):
    root = tmp_path / "captures"
    root.mkdir()
    (root / "captures.sqlite3").write_bytes(b"this is not a database" * 100)
    result = store_health(root)
    assert result.level is Level.FAIL


def show(stdout: str, returncode: int = 0, stderr: str = ""):
    """Stands in for `systemctl show` (no systemd runs on test machines)."""
    def run(arguments, **options):
        assert arguments[:3] == ["systemctl", "show", "--no-pager"]
        return subprocess.CompletedProcess(arguments, returncode, stdout, stderr)
    return run


@pytest.mark.parametrize("output, level, words", [
    ("LoadState=loaded\nActiveState=active\nSubState=running\nStatusText=healthy: camera\n",
     Level.OK, "active (running): healthy: camera"),
    ("LoadState=not-found\nActiveState=inactive\nSubState=dead\n", Level.WARN, "not installed"),
    ("LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=watchdog\n", Level.FAIL,
     "result watchdog"),
    ("LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=enabled\n",
     Level.FAIL, "inactive (dead)"),
    ("LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=disabled\n",
     Level.WARN, "not enabled"),
    ("LoadState=loaded\nActiveState=activating\nSubState=start\n", Level.WARN, "activating"),
])
def test_service_states(output, level, words):
    result = service_health(systemctl="systemctl", run=show(output))
    assert result.level is level and words in result.message


def test_service_without_systemd_running():
    result = service_health(systemctl="systemctl", run=show(
        "", 1, "System has not been booted with systemd as init system (PID 1). Can't operate.\n"))
    assert result.level is Level.WARN
    assert "systemd not reachable (System has not been booted with systemd" in result.message


def test_lights_offline_real_controller_missing_port_and_silence(tmp_path):
    simulator = GardasoftSimulator().start()
    try:
        config = config_with(tmp_path, f"lighting:\n  driver: serial\n  port: {simulator.port}\n"
                                       f"  timeout_s: 0.2\n")
        result = lights_offline_health(config)
        assert result.level is Level.OK and "answers" in result.message
        simulator.pty.go_silent()
        result = lights_offline_health(config)
        assert result.level is Level.FAIL and "not answering" in result.message
    finally:
        simulator.stop()
    config = config_with(tmp_path, f"lighting:\n  driver: serial\n  port: {tmp_path / 'tty'}\n")
    result = lights_offline_health(config)
    assert result.level is Level.FAIL and "does not exist" in result.message


def test_camera_offline_emulated_opens_and_a_missing_basler_is_named(tmp_path):
    import cv2
    import numpy as np
    cv2.imwrite(str(tmp_path / "frame.bmp"), np.full((3000, 4096, 3), 90, np.uint8))
    config = config_with(tmp_path, f"camera:\n  image_source: {tmp_path / 'frame.bmp'}\n")
    result = camera_offline_health(config)
    assert result.level is Level.OK and "found and opened" in result.message
    config = config_with(tmp_path, "camera:\n  driver: basler\n  serial: '40012345'\n")
    result = camera_offline_health(config)
    assert result.level is Level.FAIL
    assert "no basler camera (serial 40012345) found" in result.message
    assert "Emulation" in result.message            # what pylon did see is listed
