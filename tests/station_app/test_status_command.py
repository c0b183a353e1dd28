"""``station-app status``: offline (devices opened directly) and with a running core
(asked over its socket), on the emulated camera and the lighting simulator."""

from __future__ import annotations

import json
import re

import pytest

from drivers.lighting.simulator import GardasoftSimulator
from station_app.cli import main
from tests.station_app.service.notify_socket import NotifyListener
from tests.station_app.service.running_core import (RunningCore, emulator_frames,
                                                    write_config)


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return emulator_frames(tmp_path_factory.mktemp("emulator") / "frames")


def rows(output: str) -> dict[str, str]:
    """COMPONENT -> STATE from the table."""
    found = (re.match(r"(\S.*?)\s{2,}(OK|WARN|FAIL)\s{2,}", line)
             for line in output.splitlines())
    return {match[1]: match[2] for match in found if match}


def test_offline_status_opens_the_devices_itself(tmp_path, frames, capsys):
    simulator = GardasoftSimulator().start()
    try:
        config = write_config(tmp_path, frames, "scanner:\n  driver: keyboard\n")
        config.write_text(config.read_text().replace(
            "lighting:\n", f"lighting:\n  driver: serial\n  port: {simulator.port}\n"))
        assert main(["status", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        table = rows(out)
        assert table["config"] == "OK" and table["core"] == "WARN"
        assert table["camera"] == "OK" and table["lights"] == "OK"
        assert table["model files"] == "OK" and table["disk"] == "OK"
        assert table["store"] == "WARN"              # never started: no store yet
        assert "not running (nothing listens on" in out and out.rstrip().endswith("healthy")

        simulator.pty.go_silent()
        assert main(["status", "--config", str(config), "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["healthy"] is False and report["core"] is None
        lights = next(c for c in report["components"] if c["component"] == "lights")
        assert lights["level"] == "fail" and "not answering" in lights["message"]
    finally:
        simulator.stop()


def test_status_asks_the_running_core(tmp_path, frames, capsys):
    config = write_config(tmp_path, frames)
    listener = NotifyListener(tmp_path / "notify.sock")
    try:
        with RunningCore(config, listener) as running:
            listener.wait_for(lambda m: "READY" in m, timeout_s=60)
            assert main(["status", "--config", str(config)]) == 0
            out = capsys.readouterr().out
            table = rows(out)
            assert table["core"] == "OK" and "ready: pid" in out
            assert {"camera", "lights", "models", "workflow", "disk", "model files",
                    "store"} <= set(table)
            assert "Emulation" in out                   # the core's own camera line

            running.core.station.lighting_simulator.pty.go_silent()
            listener.wait_for(lambda m: "no longer fed" in m.get("STATUS", ""), timeout_s=10)
            assert main(["status", "--config", str(config), "--json"]) == 1
            report = json.loads(capsys.readouterr().out)
            levels = {c["component"]: c["level"] for c in report["components"]}
            assert levels["lights"] == "fail" and levels["core"] == "fail"
            assert report["core"]["watchdog"]["fed"] is False
    finally:
        listener.close()


def test_a_bad_configuration_is_one_fail_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("camera:\n  exposure_us: fast\n")
    assert main(["status", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert rows(out) == {"config": "FAIL"}
    assert "camera.exposure_us" in out
