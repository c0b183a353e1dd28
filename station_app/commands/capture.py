"""``station-app capture``: lights on, one frame, lights back; frame and metadata saved."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import cv2

from engines.files import write_atomic
from station_app.commands import add_common_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "capture", help="lights on, one frame, lights back; save frame and metadata",
        description="Switch the lights on, grab one frame with the configured camera settings, "
                    "restore the lights, and save the frame (lossless PNG) with its metadata "
                    "(JSON). Works against the emulated camera and simulated lighting when the "
                    "configuration says so.")
    parser.add_argument("--out", type=Path, required=True, help="folder for frame and metadata")
    parser.add_argument("--image-source", type=Path,
                        help="frames for an emulated or replay camera (overrides the config)")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def _channel_record(state) -> dict:
    return {"mode": state.mode.name, "percent": state.percent, "width_us": state.width_us,
            "delay_us": state.delay_us}


def run(args: argparse.Namespace) -> int:
    from drivers.errors import DriverError
    from station_app.config import load_config
    from station_app.errors import StationError
    from station_app.hardware import open_camera, open_lighting

    config = load_config(args.config)
    source = args.image_source or config.camera.image_source
    if source is None and config.camera.driver == "emulated":
        from station_app.commands.emulator_frames import ensure_emulator_frames
        source = ensure_emulator_frames(config.data.root / "emulator-frames")
    args.out.mkdir(parents=True, exist_ok=True)
    lighting = open_lighting(config.lighting)
    try:
        camera = open_camera(config.camera, source)
        try:
            lights_were_on = lighting.controller.lights_on
            lighting.controller.on()
            try:
                started = time.perf_counter()
                frame = camera.grab(config.camera.grab_timeout_ms)
                grab_ms = (time.perf_counter() - started) * 1000.0
                channels = {str(channel): _channel_record(lighting.controller.status(channel))
                            for channel in config.lighting.channels}
            finally:
                if not lights_were_on:
                    lighting.controller.off()
        finally:
            camera.close()
    except DriverError as error:
        raise StationError(f"capture failed: {error}") from error
    finally:
        lighting.close()

    stamp = dt.datetime.now(dt.timezone.utc)
    name = f"{config.station.id}-{stamp.strftime('%Y%m%dT%H%M%S%fZ')}"
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise StationError("could not encode the frame as PNG")
    frame_path = args.out / f"{name}.png"
    write_atomic(frame_path, encoded.tobytes())
    metadata = {
        "station": config.station.id, "captured_utc": stamp.isoformat(),
        "camera_driver": config.camera.driver, "camera": frame.metadata(),
        "grab_ms": round(grab_ms, 1),
        "lighting": {"driver": config.lighting.driver, "mode": config.lighting.mode,
                     "channels_during_exposure": channels},
        "config": f"{config.source.path} ({config.source.origin})",
        "frame_file": frame_path.name,
    }
    meta_path = args.out / f"{name}.json"
    write_atomic(meta_path, json.dumps(metadata, indent=2, default=str))
    print(f"captured {frame.width}x{frame.height} {frame.pixel_format} frame "
          f"#{frame.frame_number} from {frame.serial} in {grab_ms:.0f} ms")
    print(f"wrote {frame_path} and {meta_path}")
    return 0
