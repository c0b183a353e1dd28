"""``station-app bench``: per-stage latency p50/p95 and peak memory of the pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from station_app.commands import add_common_options
from station_app.errors import StationError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="per-stage latency (p50/p95) and peak memory on this machine",
        description="Run the whole inspection pipeline (demosaic, tray check and warp, "
                    "segmentation, crop, supervised scoring, reference comparison, fusion and "
                    "verdict, the heatmap layer the operator window draws) on synthetic 12 MP "
                    "frames and print per-stage latency (p50/p95) and peak memory for the "
                    "configured runtime. A benchmark prints figures; it passes or fails "
                    "nothing.")
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
    """(frame, tray corners, [(reference tray image, reference mask)]) per synthetic item."""
    from training.synth import render_capture
    from training.synth.plan import plan_item

    frames = []
    for index in range(count):
        plan = plan_item(seed, index)
        capture = render_capture(plan.identity, plan.queries[0])
        references = []
        for spec in plan.references:
            reference = render_capture(plan.identity, spec)
            references.append((reference.tray, reference.item_mask))
        frames.append((capture.frame, capture.corners, references))
    return frames


def _reference_images(references):
    from engines.inspection import ReferenceImage
    from engines.reference import content_identity

    return [ReferenceImage(content_identity(tray, mask), lambda tray=tray, mask=mask: (tray, mask))
            for tray, mask in references]


# The inspector's stages, in pipeline order (item_scorer only with an item scorer).
INSPECTION_STAGES = ("supervised", "item_scorer", "reference", "fusion_verdict")


def run(args: argparse.Namespace) -> int:
    import tempfile

    from drivers.camera.convert import to_rgb
    from engines.heatmap import heatmap_layer
    from engines.inspection import CaptureInput
    from engines.item_extraction import ItemExtractor
    from engines.segmentation import ItemSegmenter
    from engines.tray_geometry import TrayGeometry
    from station_app.benchmark import StageTimer, format_table, peak_memory_mib
    from station_app.config import load_config
    from station_app.models import open_model
    from station_app.replay.setup import open_replay_models

    config = load_config(args.config)
    print("bench: rendering synthetic frames and references ...")
    items = synthetic_frames(args.seed)
    session = open_model(config.models, config.models.segmenter)
    segmenter = ItemSegmenter(session)
    with tempfile.TemporaryDirectory(prefix="bench-reference-banks-") as cache_dir:
        models = open_replay_models(config, cache_dir=Path(cache_dir))
        inspector = models.inspector
        prepared = [(frame, ItemExtractor(TrayGeometry.from_array(corners), segmenter),
                     bayer_mosaic(frame), _reference_images(references))
                    for frame, corners, references in items]
        timer = StageTimer()
        scorer_info = models.info["models"]["scorer"]
        fusion_info = models.info["models"]["fusion"]
        item_info = models.info["models"].get("item_scorer")
        item_text = f"v{item_info.get('version', '?')}" if item_info else "none"
        print(f"bench: {args.runs} runs after {args.warmup} warm-up (reference banks are built "
              f"in the warm-up, as the station caches them), runtime {session.name}, "
              f"segmenter v{session.manifest.version}, scorer {scorer_info.get('name', '?')} "
              f"v{scorer_info.get('version', '?')}, item scorer {item_text}, "
              f"fusion {fusion_info['name']}, frames "
              f"{items[0][0].shape[1]}x{items[0][0].shape[0]}")
        warmup = max(args.warmup, len(prepared))
        for iteration in range(warmup + args.runs):
            frame, extractor, raw, references = prepared[iteration % len(prepared)]
            stages = StageTimer()
            stages.measure("demosaic", lambda: to_rgb(raw, "BayerRG8"))
            extracted = extractor.from_frame(frame)
            if not extracted.accepted:
                raise StationError("bench: a synthetic frame was refused: "
                                   + "; ".join(issue.message for issue in extracted.issues))
            result = inspector.inspect(CaptureInput(extracted.tray_image, extracted.mask,
                                                    references))
            stages.measure("heatmap_render", lambda: heatmap_layer(result.verdict.heatmap))
            if iteration < warmup:
                continue
            demosaic_ms = stages.samples["demosaic"][0]
            render_ms = stages.samples["heatmap_render"][0]
            timer.add("demosaic", demosaic_ms)
            for stage, milliseconds in extracted.timings_ms.items():
                timer.add(stage, milliseconds)
            for stage in INSPECTION_STAGES:
                if stage in result.timings_ms or stage != "item_scorer":
                    timer.add(stage, result.timings_ms.get(stage, 0.0))
            timer.add("heatmap_render", render_ms)
            core = sum(extracted.timings_ms.get(stage, 0.0)
                       for stage in ("tray_warp", "exposure_check", "segmentation", "crop"))
            timer.add("warp+segmentation+crop", core)
            timer.add("frame to verdict", demosaic_ms + sum(extracted.timings_ms.values())
                      + sum(result.timings_ms.get(stage, 0.0) for stage in INSPECTION_STAGES)
                      + render_ms)
    summary = timer.summary()
    print(format_table(summary))
    peak = peak_memory_mib()
    print(f"peak memory (RSS): {peak:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"runtime": session.name, "stages": summary,
                                         "peak_memory_mib": peak}, indent=2))
        print(f"wrote {args.json}")
    return 0
