"""``station-app bench``: per-stage latency p50/p95 and peak memory of the pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from station_app.commands import add_common_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="per-stage latency (p50/p95) and peak memory on this machine",
        description="Run the inspection pipeline on synthetic 12 MP frames and print per-stage "
                    "latency (p50/p95) and peak memory for the configured runtime. A "
                    "benchmark prints figures; it passes or fails nothing.")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per stage")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write figures as JSON")
    parser.add_argument("--seed", type=int, default=7, help="synthetic scene seed")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def bayer_mosaic(rgb: np.ndarray) -> np.ndarray:
    """The BayerRG8 raw image a sensor would deliver for an RGB scene (R at (0, 0))."""
    raw = np.empty(rgb.shape[:2], np.uint8)
    raw[0::2, 0::2] = rgb[0::2, 0::2, 0]
    raw[0::2, 1::2] = rgb[0::2, 1::2, 1]
    raw[1::2, 0::2] = rgb[1::2, 0::2, 1]
    raw[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return raw


def synthetic_frames(seed: int, count: int = 3):
    from training.synth import render_capture
    from training.synth.plan import plan_item

    frames = []
    for index in range(count):
        plan = plan_item(seed, index)
        capture = render_capture(plan.identity, plan.queries[0])
        frames.append((capture.frame, capture.corners))
    return frames


def run(args: argparse.Namespace) -> int:
    from drivers.camera.convert import to_rgb
    from engines.item_extraction import ItemExtractor
    from engines.segmentation import ItemSegmenter
    from engines.tray_geometry import TrayGeometry
    from station_app.benchmark import StageTimer, format_table, peak_memory_mib
    from station_app.config import load_config
    from station_app.models import open_model

    config = load_config(args.config)
    frames = synthetic_frames(args.seed)
    session = open_model(config.models, config.models.segmenter)
    segmenter = ItemSegmenter(session)
    extractors = [(frame, ItemExtractor(TrayGeometry.from_array(corners), segmenter))
                  for frame, corners in frames]
    raws = [bayer_mosaic(frame) for frame, _ in frames]
    timer = StageTimer()
    print(f"bench: {args.runs} runs after {args.warmup} warm-up, runtime {session.name}, "
          f"segmenter {session.manifest.name} v{session.manifest.version}, "
          f"frames {frames[0][0].shape[1]}x{frames[0][0].shape[0]}")
    for iteration in range(args.warmup + args.runs):
        frame_index = iteration % len(frames)
        raw = raws[frame_index]
        frame, extractor = extractors[frame_index]
        timed = iteration >= args.warmup
        demosaic = StageTimer()
        demosaic.measure("demosaic", lambda: to_rgb(raw, "BayerRG8"))
        result = extractor.from_frame(frame)
        if not timed:
            continue
        timer.add("demosaic", demosaic.samples["demosaic"][0])
        for stage, milliseconds in result.timings_ms.items():
            timer.add(stage, milliseconds)
        core = sum(result.timings_ms.get(stage, 0.0)
                   for stage in ("tray_warp", "exposure_check", "segmentation", "crop"))
        timer.add("warp+segmentation+crop", core)
        timer.add("frame to item crop", sum(result.timings_ms.values()) +
                  demosaic.samples["demosaic"][0])
    summary = timer.summary()
    print(format_table(summary))
    peak = peak_memory_mib()
    print(f"peak memory (RSS): {peak:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"runtime": session.name, "stages": summary,
                                         "peak_memory_mib": peak}, indent=2))
        print(f"wrote {args.json}")
    return 0
