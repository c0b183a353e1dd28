"""End-to-end latency in the operator window: trigger key to verdict painted on screen.

    .venv/bin/python scripts/ui_latency.py [--count 10] [--work DIR]

A benchmark that prints figures, not a test. Runs the demo station (emulated camera over
the synthetic station frames, simulated lights and scanner, bundled models) in the real
window, full screen (under ``xvfb-run`` at 1920×1080 when there is no screen; set
``QT_QPA_PLATFORM=offscreen`` to paint off screen instead), and for each inspection
presses Space and waits until the banner and the tray image have been painted with the
verdict. Per inspection it prints three times, all from the same key press:

- verdict event: the workflow's VerdictReady delivered in the UI thread,
- on screen: banner and tray painted (the window's own measure, also in its status bar),
- UI share: on screen minus verdict event (showing the images, heatmap and banner).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("PYLON_CAMEMU", "2")

from operator_driver import ensure_display, key, run_scripted_window, type_text  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--work", type=Path, help="frames and capture store (default: temp)")
    args = parser.parse_args()
    ensure_display(sys.argv)

    from PyQt6.QtGui import QGuiApplication

    from station_app.commands.emulator_frames import ensure_emulator_frames
    from station_app.config import load_config
    from station_app.workflow import State, VerdictReady

    work = args.work or Path(tempfile.mkdtemp(prefix="ui-latency-"))
    config_path = work / "station.yaml"
    work.mkdir(parents=True, exist_ok=True)
    config_path.write_text(f"data:\n  root: {work / 'data'}\n  min_free_gb: 0.1\n"
                           "ui:\n  fullscreen: true\n")
    config = load_config(config_path)
    frames = ensure_emulator_frames(config.data.root / "emulator-frames")
    rows: list[tuple[str, float, float]] = []

    def script(window, station):
        arrived: list[float] = []
        window.bridge.workflow_event.connect(
            lambda event: arrived.append(time.perf_counter())
            if isinstance(event, VerdictReady) else None)
        yield 500
        type_text(window.badge_entry, "bench")
        key(window.badge_entry, "Return")
        yield lambda: window.state is State.SIGNED_IN
        for number in range(1, args.count + 1):
            key(window, "N")                                  # simulated scanner
            yield lambda: window.state is State.WAITING_FOR_ITEM
            yield 100                                         # the associate places it
            pressed = time.perf_counter()
            key(window, "Space")
            yield lambda: len(window.latencies_ms) >= number
            on_screen = window.latencies_ms[-1]
            event = (arrived[-1] - pressed) * 1000.0
            rows.append((window.banner.verdict or "?", event, on_screen))
            print(f"[{number}/{args.count}] {rows[-1][0]:<7} verdict event {event:6.0f} ms  "
                  f"on screen {on_screen:6.0f} ms  UI share {on_screen - event:5.0f} ms",
                  flush=True)
            yield lambda: window.state is State.VERDICT_SHOWN
            if window.banner.verdict == "REVIEW":
                key(window, "1")
            key(window, "Return")
            yield lambda: window.state is State.SIGNED_IN

    def on_ready(window, station):
        size = window.size()
        print(f"platform {QGuiApplication.platformName()}, window {size.width()}x"
              f"{size.height()}, runtime {station.runtime}", flush=True)

    code = run_scripted_window(config, frames, work / "run", script, on_ready)
    if rows and code == 0:
        events = np.array([row[1] for row in rows])
        screen = np.array([row[2] for row in rows])
        print(f"trigger -> verdict on screen over {len(rows)} inspections: "
              f"p50 {np.percentile(screen, 50):.0f} ms, p95 {np.percentile(screen, 95):.0f} ms "
              f"(verdict event p50 {np.percentile(events, 50):.0f} ms, "
              f"p95 {np.percentile(events, 95):.0f} ms; UI share p50 "
              f"{np.percentile(screen - events, 50):.0f} ms)")
    return code


if __name__ == "__main__":
    sys.exit(main())
