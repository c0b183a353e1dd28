"""The replay camera: folders, single files and Kaputt data sets through the camera interface."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drivers.camera import (
    CameraError,
    CameraSettings,
    GrabTimeout,
    ReplayCamera,
    SettingRejected,
)


def write_image(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def flat(colour, height=48, width=64):
    return np.full((height, width, 3), colour, np.uint8)


@pytest.fixture
def colour_folder(tmp_path):
    """Three PNGs named out of creation order, so sorting is what is tested."""
    folder = tmp_path / "frames"
    for name, colour in (("b.png", (0, 200, 0)), ("c.png", (0, 0, 200)), ("a.png", (200, 0, 0))):
        write_image(folder / name, flat(colour))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_serves_a_folder_in_sorted_order_and_cycles(colour_folder):
    with ReplayCamera(colour_folder) as camera:
        frames = [camera.grab() for _ in range(4)]
    colours = [tuple(int(v) for v in f.rgb[0, 0]) for f in frames]
    assert colours == [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 0, 0)]
    assert [f.frame_number for f in frames] == [1, 2, 3, 4]
    assert frames[0].extra["source_path"].endswith("a.png")
    assert frames[0].serial == "replay-0" and frames[0].pixel_format == "RGB8Packed"


def test_without_cycling_the_end_is_a_timeout(colour_folder):
    with ReplayCamera(colour_folder, cycle=False) as camera:
        for _ in range(3):
            camera.grab()
        with pytest.raises(GrabTimeout, match="all 3 images"):
            camera.grab()


def test_settings_shape_the_frames_like_a_camera(colour_folder):
    with ReplayCamera(colour_folder) as camera:
        applied = camera.apply(CameraSettings(exposure_us=1234.0, gain_db=3.0,
                                              white_balance=(0.5, 1.0, 1.0),
                                              pixel_format="RGB8Packed",
                                              width=20, height=10, offset_x=5, offset_y=4))
        frame = camera.grab()
        assert applied == camera.settings()
        assert frame.rgb.shape == (10, 20, 3)
        assert tuple(frame.rgb[0, 0]) == (100, 0, 0)  # red 200 × 0.5
        assert (frame.exposure_us, frame.gain_db) == (1234.0, 3.0)
        camera.apply(applied.replace(pixel_format="Mono8", white_balance=(1.0, 1.0, 1.0)))
        grey = camera.grab().rgb
        assert grey[..., 0].tolist() == grey[..., 2].tolist() and grey[0, 0, 0] > 0
        with pytest.raises(SettingRejected, match="BayerRG8"):
            camera.apply(applied.replace(pixel_format="BayerRG8"))


def test_settings_file_round_trip(colour_folder, tmp_path):
    saved = CameraSettings(exposure_us=2222.0, gain_db=1.5, white_balance=(1.25, 1.0, 0.8),
                           pixel_format="Mono8", width=32, height=16, offset_x=2, offset_y=6)
    with ReplayCamera(colour_folder) as camera:
        camera.apply(saved)
        path = camera.save_settings(tmp_path / "replay.pfs")
        camera.apply(CameraSettings(pixel_format="RGB8Packed"))
        assert camera.load_settings(path) == saved
        path.write_text("ExposureTime\tlots\n")
        with pytest.raises(SettingRejected, match="replay.pfs"):
            camera.load_settings(path)


def test_hardware_trigger_waits_for_a_simulated_edge(colour_folder):
    with ReplayCamera(colour_folder) as camera:
        camera.arm_hardware_trigger("Line1")
        with pytest.raises(GrabTimeout):
            camera.wait_hardware_frame(timeout_ms=50)
        pedal = threading.Timer(0.05, camera.simulate_line_edge)
        pedal.start()
        frame = camera.wait_hardware_frame(timeout_ms=5000)
        pedal.join()
        assert tuple(frame.rgb[0, 0]) == (200, 0, 0)


def test_a_missing_or_empty_source_is_a_clear_error(tmp_path):
    with pytest.raises(CameraError, match="neither a folder nor an image"):
        ReplayCamera(tmp_path / "nowhere").open()
    with pytest.raises(CameraError, match="no images"):
        ReplayCamera(tmp_path).open()


def make_data_set(root, with_frame_column):
    """A two-split mini data set in the Kaputt layout; `frame` holds full-frame paths."""
    for split, colours in (("train", [(10, 20, 30)]), ("test", [(200, 0, 0), (0, 0, 200)])):
        rows = {"capture_id": [], "query_image": [], "frame": []}
        for index, colour in enumerate(colours):
            capture = f"{split}-{index}"
            write_image(root / "query" / f"{capture}.jpg", flat((90, 90, 90)))
            write_image(root / "frames" / f"{capture}.png", flat(colour, 30, 40))
            rows["capture_id"].append(capture)
            rows["query_image"].append(f"query/{capture}.jpg")
            rows["frame"].append(f"frames/{capture}.png")
        if not with_frame_column:
            del rows["frame"]
        pq.write_table(pa.table(rows), root / f"query-{split}.parquet")


def test_data_set_replay_serves_the_frame_column_of_a_split(tmp_path):
    make_data_set(tmp_path, with_frame_column=True)
    with ReplayCamera(tmp_path, split="test", cycle=False) as camera:
        frames = [camera.grab(), camera.grab()]
        with pytest.raises(GrabTimeout):
            camera.grab()
    assert [tuple(int(v) for v in f.rgb[0, 0]) for f in frames] == [(200, 0, 0), (0, 0, 200)]
    assert frames[0].rgb.shape == (30, 40, 3)


def test_data_set_replay_falls_back_to_query_images_over_all_splits(tmp_path):
    make_data_set(tmp_path, with_frame_column=False)
    with ReplayCamera(tmp_path) as camera:
        names = [p.name for p in camera.images]
        frame = camera.grab()
    assert names == ["train-0.jpg", "test-0.jpg", "test-1.jpg"]  # train before test
    assert frame.rgb.shape == (48, 64, 3)
    with pytest.raises(CameraError, match="query-validation.parquet"):
        ReplayCamera(tmp_path, split="validation").open()
