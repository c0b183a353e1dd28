"""Screenshots of the operator window for the README: an OK and a DAMAGED verdict.

    .venv/bin/python scripts/screenshots.py [--out docs] [--work DIR]

Runs the real window, full screen at 1920×1080 under Xvfb (started through ``xvfb-run``
when there is no screen), over the demo station: emulated camera, simulated lights and
scanner, bundled models. The frames are chosen first: one synthetic item with a good
reference capture, a good capture and a damaged one, which the bundled models score OK
and DAMAGED with a margin. The window is then driven by keys: sign in, scan, capture,
confirm the reference capture (it joins the item's reference gallery), capture the good
one (screenshot), confirm, capture the damaged one (screenshot). Images are downscaled
and reduced to 256 colours so each stays well under 300 KB.

Needs apt packages xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 imagemagick.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PYLON_CAMEMU", "2")

from operator_driver import ensure_display, key, run_scripted_window, type_text  # noqa: E402

ITEM_CODE = "4006381333931"
OK_BELOW_MARGIN = 0.2          # chosen frames score well clear of the thresholds
DAMAGED_ABOVE_MARGIN = 0.85
WIDTH = 1440                   # README width: 1920×1080 downscaled


def choose_frames(folder: Path, seed: int = 2024, max_items: int = 60) -> dict[str, float]:
    """Write frame-00..03 (reference, reference, good, damaged) of one item into
    ``folder``; frame-00 is the one the station grabs to find the tray."""
    import cv2

    from engines.inspection import CaptureInput, ReferenceImage
    from engines.item_extraction import ItemExtractor
    from engines.segmentation import ItemSegmenter
    from engines.tray_geometry import TrayGeometry
    from station_app.commands.emulator_frames import STATION_TRAY_CORNERS
    from station_app.config import load_config
    from station_app.models import open_model
    from station_app.replay.setup import open_replay_models
    from training.synth import render_capture
    from training.synth.plan import plan_item

    config = load_config(None)
    extractor = ItemExtractor(TrayGeometry.from_array(STATION_TRAY_CORNERS),
                              ItemSegmenter(open_model(config.models, config.models.segmenter)))
    inspector = open_replay_models(config, cache_dir=folder.parent / "choose-cache").inspector
    for index in range(max_items):
        plan = plan_item(seed, index)
        references = [spec for spec in plan.references if not spec.defects]
        good = [spec for spec in plan.queries if not spec.defects]
        damaged = [spec for spec in plan.queries if spec.defects]
        if not (references and good and damaged):
            continue
        renders = [render_capture(plan.identity, spec, STATION_TRAY_CORNERS)
                   for spec in (references[0], good[0], damaged[0])]
        extracted = [extractor.from_frame(render.frame) for render in renders]
        if not all(item.accepted for item in extracted):
            continue
        reference = extracted[0]
        gallery = [ReferenceImage(f"choose-{index}",
                                  lambda r=reference: (r.tray_image, r.mask))]
        scores = [inspector.inspect(CaptureInput(item.tray_image, item.mask, gallery))
                  for item in extracted[1:]]
        verdicts = [getattr(score, "verdict", None) for score in scores]
        if None in verdicts:
            continue
        ok, bad = verdicts
        print(f"item {index}: good {ok.label} {ok.fused_score:.3f}, damaged {bad.label} "
              f"{bad.fused_score:.3f} {bad.likely_types}")
        if ok.label == "OK" and ok.fused_score < OK_BELOW_MARGIN and bad.label == "DAMAGED" \
                and bad.fused_score > DAMAGED_ABOVE_MARGIN and bad.likely_types:
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob("*.bmp"):
                stale.unlink()
            for number, render in enumerate([renders[0], *renders]):
                cv2.imwrite(str(folder / f"frame-{number:02d}.bmp"),
                            cv2.cvtColor(render.frame, cv2.COLOR_RGB2BGR))
            return {"ok": ok.fused_score, "damaged": bad.fused_score}
    raise SystemExit(f"no item among the first {max_items} gives a clear OK and DAMAGED")


def save_small(window, path: Path) -> None:
    """Grab the window, downscale to WIDTH and keep 256 colours (imagemagick)."""
    from PyQt6.QtCore import Qt
    raw = path.with_suffix(".raw.png")
    image = window.grab().toImage().scaledToWidth(WIDTH, Qt.TransformationMode.SmoothTransformation)
    if not image.save(str(raw)):
        raise OSError(f"could not write {raw}")
    subprocess.run(["convert", str(raw), "-strip", "+dither", "-colors", "256",
                    f"PNG8:{path}"], check=True)
    raw.unlink()
    print(f"{path}: {image.width()}x{image.height()}, {path.stat().st_size // 1024} KB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--work", type=Path, help="frames and capture store (default: temp)")
    args = parser.parse_args()
    ensure_display(sys.argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="operator-screenshots-"))
    frames = work / "frames"
    print("choosing frames ...")
    choose_frames(frames)

    from station_app.config import load_config
    from station_app.workflow import State

    config_path = work / "station.yaml"
    config_path.write_text(f"data:\n  root: {work / 'data'}\n  min_free_gb: 0.1\n"
                           "ui:\n  fullscreen: true\n")
    config = load_config(config_path)
    args.out.mkdir(parents=True, exist_ok=True)

    def script(window, station):
        def verdict_on_screen(count: int):
            return lambda: len(window.latencies_ms) >= count

        def ready():
            return window.state is State.SIGNED_IN

        yield 500                                       # the window on screen, settled
        type_text(window.badge_entry, "A. Associate")
        key(window.badge_entry, "Return")
        yield ready
        for number, (expected, name) in enumerate(
                [(None, None), ("OK", "operator-ok.png"),
                 ("DAMAGED", "operator-damaged.png")], start=1):
            station.scanner_simulator.scan(ITEM_CODE)
            yield lambda: window.state is State.WAITING_FOR_ITEM
            key(window, "Space")
            yield verdict_on_screen(number)
            yield lambda: window.state is State.VERDICT_SHOWN
            if expected is not None:
                if window.banner.verdict != expected:
                    raise RuntimeError(f"expected {expected}, the window shows "
                                       f"{window.banner.verdict}")
                yield 400
                save_small(window, args.out / name)
            if expected != "DAMAGED":
                key(window, "1")                # severity none: joins the gallery
                key(window, "Return")
                yield ready

    return run_scripted_window(config, frames, work / "run", script)


if __name__ == "__main__":
    sys.exit(main())
