"""``station-app capture`` and ``devices`` against the emulated camera and a simulated
lighting controller on a real pseudo-terminal."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.lighting.simulator import GardasoftSimulator
from drivers.lighting.state import ChannelMode
from station_app.cli import main
from training.synth import render_capture
from training.synth.plan import plan_item


@pytest.fixture(scope="module")
def frame_folder(tmp_path_factory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("frames")
    plan = plan_item(seed=3, index=0)
    frame = render_capture(plan.identity, plan.queries[0]).frame
    cv2.imwrite(str(folder / "frame.bmp"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder, frame


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_capture_saves_the_frame_and_restores_the_lights(tmp_path, frame_folder, capsys):
    folder, expected = frame_folder
    with GardasoftSimulator(channel_count=4) as simulator:
        config = write_config(tmp_path / "station.yaml", f"""
data:
  root: {tmp_path / 'data'}
camera:
  driver: emulated
  image_source: {folder}
lighting:
  driver: serial
  port: {simulator.port}
  channels: [1, 2]
  brightness_percent: 65
""")
        assert main(["capture", "--out", str(tmp_path / "out"), "--config", str(config)]) == 0
        after = [simulator.channel(channel) for channel in (1, 2)]
    assert all(state.mode == ChannelMode.OFF for state in after)

    pngs = list((tmp_path / "out").glob("*.png"))
    assert len(pngs) == 1
    saved = cv2.cvtColor(cv2.imread(str(pngs[0])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(saved, expected)  # RGB8Packed through the emulator is exact
    metadata = json.loads(pngs[0].with_suffix(".json").read_text())
    assert metadata["camera"]["width"] == 4096 and metadata["camera"]["height"] == 3000
    assert metadata["camera"]["pixel_format"] == "RGB8Packed"
    during = metadata["lighting"]["channels_during_exposure"]
    assert {k: v["mode"] for k, v in during.items()} == {"1": "CONTINUOUS", "2": "CONTINUOUS"}
    assert during["1"]["percent"] == 65
    assert "wrote" in capsys.readouterr().out


def test_capture_reports_a_silent_lighting_controller(tmp_path, frame_folder, capsys):
    folder, _ = frame_folder
    with GardasoftSimulator(channel_count=4) as simulator:
        simulator.pty.go_silent()
        config = write_config(tmp_path / "station.yaml", f"""
camera:
  driver: emulated
  image_source: {folder}
lighting:
  driver: serial
  port: {simulator.port}
  timeout_s: 0.2
""")
        code = main(["capture", "--out", str(tmp_path / "out"), "--config", str(config)])
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("station-app capture: lighting controller on")
    assert len(error.strip().splitlines()) == 1
    assert list((tmp_path / "out").glob("*.png")) == []


def test_devices_lists_the_emulated_camera_and_simulated_lighting(tmp_path, capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "0815-0000" in out and "emulated" in out
    assert "lighting on /dev/pts/" in out and "firmware" in out
