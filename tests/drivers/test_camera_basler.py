"""The real Basler driver against pypylon's camera emulator (PYLON_CAMEMU=2, tests/conftest.py).

The emulator serves the synthetic frames from tests/drivers/conftest.py; every check
compares the frame that arrives with the file it came from.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.camera import (
    BaslerCamera,
    CameraError,
    CameraNotFound,
    CameraRemoved,
    CameraSettings,
    EmulatedBaslerCamera,
    GrabFailed,
    GrabTimeout,
    SettingRejected,
    list_cameras,
)
from drivers.camera.basler import PylonDevices
from drivers.errors import DeviceDisconnected, DeviceTimeout

# Bayer: mean absolute error (levels of 255) between the demosaiced frame and the file, on
# the smooth gradient away from patch edges. Measured 1.25 with OpenCV's bilinear
# demosaicing and the ±2 noise of the test frames; a red/blue swap gives about 60.
BAYER_SMOOTH_MAE_BOUND = 2.0
# Inside saturated patches every channel must be within this of the file's colour.
BAYER_PATCH_TOLERANCE = 3


def region(rgb: np.ndarray, settings: CameraSettings) -> np.ndarray:
    """What the emulator serves for a region: the file cropped at the offset."""
    return rgb[settings.offset_y:settings.offset_y + settings.height,
               settings.offset_x:settings.offset_x + settings.width]


# -- finding and opening ---------------------------------------------------------------

def test_list_cameras_shows_both_emulated_cameras():
    emulated = {c.serial: c for c in list_cameras() if c.device_class == "BaslerCamEmu"}
    assert set(emulated) == {"0815-0000", "0815-0001"}
    assert emulated["0815-0001"].model == "Emulation"


def test_opens_the_camera_with_the_requested_serial(camera_test_frames):
    with EmulatedBaslerCamera(camera_test_frames.one_frame_dir, "0815-0001") as camera:
        assert camera.serial == "0815-0001"
        assert camera.info.device_class == "BaslerCamEmu"


def test_without_a_serial_opens_the_first_camera_found():
    with BaslerCamera() as camera:
        opened = camera.serial
    # The first in pylon's enumeration order (list_cameras sorts; enumeration does not).
    assert opened == PylonDevices().enumerate()[0].GetSerialNumber()


def test_unknown_serial_names_the_cameras_that_are_present():
    with pytest.raises(CameraNotFound) as caught:
        BaslerCamera("1234-5678").open()
    message = str(caught.value)
    assert "1234-5678" in message
    assert "0815-0000" in message and "0815-0001" in message


def test_a_closed_camera_refuses_to_grab(camera_test_frames):
    camera = EmulatedBaslerCamera(camera_test_frames.one_frame_dir, "0815-0000")
    with pytest.raises(CameraError, match="not open"):
        camera.grab(100)


# -- settings --------------------------------------------------------------------------

def test_apply_sets_and_reads_back_every_setting(emulated_camera):
    wanted = CameraSettings(exposure_us=2500.0, gain_db=6.0, white_balance=(1.5, 1.0, 0.75),
                            pixel_format="BayerRG8", width=2048, height=1536,
                            offset_x=64, offset_y=32)
    applied = emulated_camera.apply(wanted)
    assert applied == emulated_camera.settings()
    assert applied.exposure_us == pytest.approx(2500.0)
    assert applied.gain_db == pytest.approx(6.0, abs=0.01)  # the camera steps gain in raw units
    assert applied.white_balance == (1.5, 1.0, 0.75)
    assert (applied.pixel_format, applied.width, applied.height) == ("BayerRG8", 2048, 1536)
    assert (applied.offset_x, applied.offset_y) == (64, 32)
    # The emulator has no balance ratios: the driver applies white balance in software.
    assert emulated_camera.white_balance_in_software


def test_out_of_range_and_unsupported_settings_are_rejected_with_the_range(emulated_camera):
    settings = emulated_camera.settings()
    with pytest.raises(SettingRejected, match=r"exposure.*out of range"):
        emulated_camera.apply(settings.replace(exposure_us=1e12))
    with pytest.raises(SettingRejected, match="Mono12"):
        emulated_camera.apply(settings.replace(pixel_format="Mono12"))
    with pytest.raises(SettingRejected, match=r"Width 5000 is not allowed \(range"):
        emulated_camera.apply(settings.replace(width=5000))


# -- frames ----------------------------------------------------------------------------

def test_rgb8packed_frame_equals_the_file_with_full_metadata(emulated_camera, camera_test_frames):
    emulated_camera.apply(emulated_camera.settings().replace(exposure_us=3000.0, gain_db=2.0))
    before = time.monotonic_ns()
    frame = emulated_camera.grab(timeout_ms=5000)
    assert frame.rgb.shape == (3000, 4096, 3) and frame.rgb.dtype == np.uint8
    assert np.array_equal(frame.rgb, camera_test_frames.first.rgb)
    assert frame.serial == "0815-0000"
    assert frame.frame_number == 1
    assert frame.camera_frame_id is not None and frame.camera_frame_id >= 1
    assert before <= frame.host_timestamp_ns <= time.monotonic_ns()
    assert frame.exposure_us == pytest.approx(3000.0)
    assert frame.gain_db == pytest.approx(2.0, abs=0.01)
    assert frame.pixel_format == "RGB8Packed"
    assert frame.metadata()["width"] == 4096


def test_region_is_the_file_cropped_at_the_offset(emulated_camera, camera_test_frames):
    settings = emulated_camera.apply(CameraSettings(pixel_format="RGB8Packed", width=1000,
                                                    height=800, offset_x=200, offset_y=100))
    frame = emulated_camera.grab(2000)
    assert np.array_equal(frame.rgb, region(camera_test_frames.first.rgb, settings))


@pytest.mark.parametrize("pixel_format", ["BayerRG8", "BayerGR8", "BayerGB8", "BayerBG8"])
def test_bayer_frames_come_back_in_the_right_colours(emulated_camera, camera_test_frames,
                                                      pixel_format):
    """The emulator mosaics the file; the driver demosaics. Colours, not just shapes."""
    emulated_camera.apply(emulated_camera.settings().replace(pixel_format=pixel_format))
    frame = emulated_camera.grab(5000)
    truth = camera_test_frames.first
    assert frame.rgb.shape == truth.rgb.shape
    error = np.abs(frame.rgb.astype(np.int16) - truth.rgb)
    smooth_mae = float(error[truth.smooth_mask()].mean())
    assert smooth_mae < BAYER_SMOOTH_MAE_BOUND, f"{pixel_format}: MAE {smooth_mae:.2f}"
    for patch in truth.patches:
        inside = frame.rgb[patch.centre()].reshape(-1, 3).astype(np.int16)
        worst = np.abs(inside - patch.colour).max(axis=0)
        assert (worst <= BAYER_PATCH_TOLERANCE).all(), f"{patch.name} patch came back {worst}"


def test_mono8_frame_is_grey_replicated_to_three_channels(emulated_camera, camera_test_frames):
    settings = emulated_camera.apply(CameraSettings(pixel_format="Mono8", width=1024,
                                                    height=768, offset_x=300, offset_y=200))
    frame = emulated_camera.grab(2000)
    rgb = frame.rgb.astype(np.int32)
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    # The emulator's own grey: (2 R + 5 G + B) / 8, measured on pypylon 26.9.
    source = region(camera_test_frames.first.rgb, settings).astype(np.int32)
    expected = (2 * source[..., 0] + 5 * source[..., 1] + source[..., 2]) // 8
    assert np.array_equal(rgb[..., 0], expected)


def test_software_white_balance_scales_the_channels(emulated_camera, camera_test_frames):
    settings = emulated_camera.apply(CameraSettings(
        pixel_format="RGB8Packed", white_balance=(2.0, 1.0, 0.5),
        width=512, height=512, offset_x=0, offset_y=0))
    frame = emulated_camera.grab(2000)
    source = region(camera_test_frames.first.rgb, settings).astype(np.float32)
    expected = np.clip(np.rint(source * np.array([2.0, 1.0, 0.5], np.float32)), 0, 255)
    assert np.array_equal(frame.rgb, expected.astype(np.uint8))


def test_software_trigger_serves_files_in_order_with_increasing_numbers(camera_test_frames):
    settings = CameraSettings(pixel_format="RGB8Packed", width=1024, height=1024)
    expected = [camera_test_frames.first, camera_test_frames.second, camera_test_frames.first]
    with EmulatedBaslerCamera(camera_test_frames.two_frames_dir, "0815-0001") as camera:
        camera.apply(settings)
        frames = [camera.grab(2000) for _ in expected]
    for frame, source in zip(frames, expected):
        assert np.array_equal(frame.rgb, region(source.rgb, settings))
    assert [f.frame_number for f in frames] == [1, 2, 3]
    assert [f.camera_frame_id for f in frames] == sorted({f.camera_frame_id for f in frames})
    assert frames[0].host_timestamp_ns < frames[1].host_timestamp_ns < frames[2].host_timestamp_ns


# -- faults ----------------------------------------------------------------------------

def test_grab_times_out_and_the_late_frame_is_not_served_later(emulated_camera,
                                                               camera_test_frames):
    # A 12 MP RGB frame takes ~0.1 s to make: a 1 ms timeout cannot be met.
    started = time.monotonic()
    with pytest.raises(GrabTimeout, match="within 1 ms") as caught:
        emulated_camera.grab(timeout_ms=1)
    assert time.monotonic() - started < 1.0
    assert isinstance(caught.value, DeviceTimeout)
    frame = emulated_camera.grab(5000)
    assert np.array_equal(frame.rgb, camera_test_frames.first.rgb)
    assert frame.frame_number == 1  # the timed-out grab delivered nothing


def test_failed_buffer_raises_with_the_description_and_the_next_grab_works(emulated_camera):
    emulated_camera.apply(emulated_camera.settings().replace(width=256, height=256))
    emulated_camera.inject_failed_buffers(1)
    with pytest.raises(GrabFailed, match="incompletely grabbed") as caught:
        emulated_camera.grab(2000)
    assert caught.value.serial == "0815-0000"
    assert emulated_camera.grab(2000).rgb.shape == (256, 256, 3)


def test_hardware_trigger_waits_for_the_line_edge(emulated_camera, tmp_path):
    """The emulator has no I/O lines; `simulate_line_edge` stands in for the edge on Line1.

    What is checked for real: the trigger configuration the camera holds (through its own
    feature file), that an armed camera delivers nothing until triggered, and that `grab`
    goes back to software triggering.
    """
    emulated_camera.apply(emulated_camera.settings().replace(width=512, height=512))
    emulated_camera.arm_hardware_trigger("Line1", "RisingEdge")
    features = emulated_camera.save_settings(tmp_path / "armed.pfs").read_text()
    assert "TriggerMode\t{TriggerSelector=FrameStart}\tOn" in features
    assert "TriggerSource\t{TriggerSelector=FrameStart}\tLine1" in features
    assert "TriggerActivation\t{TriggerSelector=FrameStart}\tRisingEdge" in features

    with pytest.raises(GrabTimeout):
        emulated_camera.wait_hardware_frame(timeout_ms=150)
    emulated_camera.simulate_line_edge()
    frame = emulated_camera.wait_hardware_frame(timeout_ms=2000)
    assert frame.rgb.shape == (512, 512, 3)
    assert emulated_camera.hardware_trigger_armed

    assert emulated_camera.grab(2000).frame_number == frame.frame_number + 1
    assert not emulated_camera.hardware_trigger_armed
    with pytest.raises(CameraError, match="not armed"):
        emulated_camera.wait_hardware_frame(100)


def test_unknown_trigger_line_is_rejected(emulated_camera):
    with pytest.raises(SettingRejected, match="Line9"):
        emulated_camera.arm_hardware_trigger("Line9")


# -- feature files ---------------------------------------------------------------------

def test_pfs_round_trip_restores_the_saved_settings(emulated_camera, tmp_path):
    saved = emulated_camera.apply(CameraSettings(exposure_us=2500.0, gain_db=6.0,
                                                 pixel_format="BayerRG8", width=2048,
                                                 height=1536, offset_x=64, offset_y=32))
    path = emulated_camera.save_settings(tmp_path / "station.pfs")
    text = path.read_text()
    assert "PixelFormat\tBayerRG8" in text and "Width\t2048" in text
    emulated_camera.apply(CameraSettings(exposure_us=100.0, gain_db=0.0,
                                         pixel_format="Mono8", width=640, height=480))
    restored = emulated_camera.load_settings(path)
    assert restored == saved
    frame = emulated_camera.grab(2000)
    assert (frame.pixel_format, frame.rgb.shape) == ("BayerRG8", (1536, 2048, 3))
    assert frame.exposure_us == pytest.approx(2500.0)


def test_a_broken_pfs_file_is_rejected(emulated_camera, tmp_path):
    broken = tmp_path / "broken.pfs"
    broken.write_text(emulated_camera.save_settings(tmp_path / "good.pfs").read_text()
                      .replace("PixelFormat\tRGB8Packed", "PixelFormat\tNoSuchFormat"))
    with pytest.raises(SettingRejected, match="broken.pfs"):
        emulated_camera.load_settings(broken)
    with pytest.raises(CameraError, match="not a file"):
        emulated_camera.load_settings(tmp_path / "missing.pfs")


# -- removal ---------------------------------------------------------------------------

def test_removed_camera_raises_and_is_reattached_with_its_settings(camera_test_frames):
    """Simulated removal and return, honestly described.

    The emulator cannot be unplugged. `simulate_removal` does what a removal does to the
    driver's view: the serial number vanishes from enumeration and the pylon device object
    under the driver is destroyed. The driver must notice on its own, raise
    `CameraRemoved`, keep failing while the serial is absent, and when it enumerates
    again attach a *new* pylon device, which the emulator creates with factory defaults
    (1024×1040 Mono8, test image on): only the driver's restore of its saved feature
    state brings back the region, format, exposure and our image file.
    Not covered here: pylon's removal callback and `IsCameraDeviceRemoved`, which only
    real cameras raise.
    """
    settings = CameraSettings(exposure_us=4321.0, gain_db=1.0, pixel_format="RGB8Packed",
                              width=1200, height=900, offset_x=100, offset_y=50)
    expected = region(camera_test_frames.first.rgb, settings)
    with EmulatedBaslerCamera(camera_test_frames.one_frame_dir, "0815-0001") as camera:
        camera.apply(settings)
        assert np.array_equal(camera.grab(2000).rgb, expected)

        camera.simulate_removal()
        with pytest.raises(CameraRemoved) as caught:
            camera.grab(2000)
        assert isinstance(caught.value, DeviceDisconnected)
        assert camera.removed
        assert camera.reattach(timeout_s=0) is False
        with pytest.raises(CameraRemoved):
            camera.settings()

        camera.simulate_return()
        frame = camera.grab(2000)  # re-attaches by itself
        assert not camera.removed
        assert np.array_equal(frame.rgb, expected)
        assert frame.frame_number == 2 and frame.serial == "0815-0001"
        assert frame.exposure_us == pytest.approx(4321.0)
        assert camera.settings() == camera.apply(settings)


def test_reattach_waits_for_the_camera_to_come_back(camera_test_frames):
    with EmulatedBaslerCamera(camera_test_frames.one_frame_dir, "0815-0001") as camera:
        camera.apply(CameraSettings(pixel_format="RGB8Packed", width=256, height=256))
        camera.simulate_removal()
        comes_back = threading.Timer(0.3, camera.simulate_return)
        comes_back.start()
        try:
            assert camera.reattach(timeout_s=10.0) is True
        finally:
            comes_back.cancel()
        assert camera.grab(2000).rgb.shape == (256, 256, 3)


# -- process hygiene -------------------------------------------------------------------

SIGALRM_SCRIPT = """
import signal, sys
from drivers.camera import CameraSettings, EmulatedBaslerCamera, GrabTimeout
with EmulatedBaslerCamera(sys.argv[1]) as camera:
    camera.apply(CameraSettings(pixel_format="RGB8Packed", width=64, height=64))
    camera.grab(2000)                                  # pylon installs its SIGALRM handler
    signal.signal(signal.SIGALRM, signal.SIG_DFL)      # what pytest-timeout does after a test
    camera.arm_hardware_trigger()
    try:
        camera.wait_hardware_frame(100)                # times out: pylon's timer fires
    except GrabTimeout:
        print("timed out cleanly")
"""


def test_a_timeout_survives_someone_resetting_sigalrm(camera_test_frames):
    """pylon times waits with SIGALRM; without the driver's guard this run is killed."""
    env = {**os.environ, "PYLON_CAMEMU": "1"}
    result = subprocess.run([sys.executable, "-c", SIGALRM_SCRIPT,
                             str(camera_test_frames.one_frame_dir)],
                            cwd=Path(__file__).resolve().parents[2], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "timed out cleanly" in result.stdout
