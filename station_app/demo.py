"""The whole station with no hardware, driven headless: ``station-app demo --headless``.

Emulated pypylon camera over synthetic frames, lighting and scanner simulators on
pseudo-terminals, the bundled models, the capture store and the inspection workflow,
wired as at a real station. A scripted associate signs in, scans an item code through
the scanner simulator, triggers, waits for the verdict and agrees with it, N times.

No Qt here and no torch: the operator window (ui) drives the same station.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from station_app.config import StationConfig
from station_app.errors import StationError

log = logging.getLogger("station_app.demo")

OPERATOR = "demo-associate"
WAIT_S = 180.0          # per step; the workflow's own timeouts need Ticks, the demo sends none
STAGES = ("lights_on", "grab", "lights_off", "store_frame", "tray_check", "tray_warp",
          "exposure_check", "segmentation", "crop", "supervised", "item_scorer", "reference",
          "fusion_verdict", "processing_total", "store_result")


def ean13(prefix12: str) -> str:
    """An EAN-13 code: 12 digits and their check digit."""
    if len(prefix12) != 12 or not prefix12.isdigit():
        raise ValueError(f"an EAN-13 needs 12 digits before the check digit, got {prefix12!r}")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(prefix12))
    return prefix12 + str((10 - total % 10) % 10)


def demo_item_codes(count: int) -> list[str]:
    """Valid EAN-13 codes, one per inspection (in-store numbers, prefix 20)."""
    return [ean13(f"20{index + 1:010d}") for index in range(count)]


@dataclass
class InspectionLine:
    index: int
    item: str
    capture_id: str
    label: str                      # OK / REVIEW / DAMAGED, or REJECTED
    fused: float
    likely_types: tuple[str, ...]
    timings_ms: dict[str, float]
    latency_ms: float
    message: str = ""

    def text(self, count: int) -> str:
        if self.label == "REJECTED":
            return (f"[{self.index}/{count}] item {self.item}: REJECTED ({self.message}) "
                    f"trigger->result {self.latency_ms:.0f} ms")
        names = [name for name in STAGES if name in self.timings_ms]
        names += [name for name in self.timings_ms if name not in STAGES]
        stages = " ".join(f"{name}={self.timings_ms[name]:.0f}" for name in names)
        types = ",".join(self.likely_types) or "-"
        return (f"[{self.index}/{count}] item {self.item} capture {self.capture_id}: "
                f"{self.label} fused={self.fused:.3f} types={types} | ms: {stages} | "
                f"trigger->verdict {self.latency_ms:.0f} ms")


@dataclass
class DemoResult:
    lines: list[InspectionLine] = field(default_factory=list)
    store_root: Path | None = None
    report: Path | None = None

    @property
    def latencies_ms(self) -> list[float]:
        return [line.latency_ms for line in self.lines if line.label != "REJECTED"]


class _Events:
    """Every workflow event with the perf_counter time it arrived."""

    def __init__(self) -> None:
        self.items: list[tuple[float, object]] = []
        self._changed = threading.Condition()

    def __call__(self, event: object) -> None:
        with self._changed:
            self.items.append((time.perf_counter(), event))
            self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self.items)

    def wait(self, since: int, predicate: Callable[[object], bool], what: str,
             timeout_s: float = WAIT_S) -> tuple[float, object]:
        from station_app.workflow import Fault
        with self._changed:
            def found():
                for at, event in self.items[since:]:
                    if isinstance(event, Fault) or predicate(event):
                        return at, event
                return None
            if not self._changed.wait_for(lambda: found() is not None, timeout_s):
                raise StationError(f"demo: no {what} within {timeout_s:.0f} s")
            at, event = found()
        if isinstance(event, Fault):
            raise StationError(f"demo: {event.kind} fault while waiting for {what}: "
                               f"{event.message}")
        return at, event



def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def run_demo(config: StationConfig, count: int, frames: Path | None, out: Path | None,
             report: bool = True, echo: Callable[[str], None] = print) -> DemoResult:
    """Run ``count`` inspections; ``frames`` feed the emulated/replay camera (None: the
    configured image source). ``out``: the capture store goes to ``out/captures`` and the
    report to ``out/report.html``; None: the configured store and ``<data.root>/demo``."""
    from station_app.station import open_station
    from station_app.workflow import (Back, Confirm, ConfirmationSaved, ItemRejected, ItemTyped,
                                      SignIn, State, StateChanged, Trigger, VerdictReady)
    from station_app.workflow.commands import Severity

    if count < 1:
        raise StationError(f"--count must be at least 1, got {count}")
    result = DemoResult()
    store_root = out / "captures" if out is not None else config.data.captures
    report_dir = out if out is not None else config.data.root / "demo"

    station = open_station(config, frames, store_root)
    try:
        store = station.store
        workflow = station.workflow
        model_versions = station.model_versions
        result.store_root = store.root
        events = _Events()
        workflow.subscribe(events)

        scanner = station.scanner_simulator
        if scanner is None:
            log.warning("scanner is not simulated (driver %s): the demo types item codes",
                        config.scanner.driver)

        mark = events.mark()
        workflow.submit(SignIn(OPERATOR))
        events.wait(mark, lambda e: isinstance(e, StateChanged) and e.new is State.SIGNED_IN,
                    "sign-in")
        echo(f"demo: {count} inspection(s) on station {config.station.id}; captures in "
             f"{store.root}")

        for index, code in enumerate(demo_item_codes(count), start=1):
            mark = events.mark()
            if scanner is not None:
                scanner.scan(code)
            else:
                workflow.submit(ItemTyped(code))
            events.wait(mark, lambda e: isinstance(e, StateChanged)
                        and e.new is State.WAITING_FOR_ITEM, f"item {code} to be identified")
            mark = events.mark()
            triggered = time.perf_counter()
            workflow.submit(Trigger())
            at, event = events.wait(mark, lambda e: isinstance(e, (VerdictReady, ItemRejected)),
                                    f"a verdict for item {code}")
            latency = (at - triggered) * 1000.0
            if isinstance(event, ItemRejected):
                line = InspectionLine(index, code, event.capture_id, "REJECTED", math.nan, (),
                                      {}, latency, event.message)
                result.lines.append(line)
                echo(line.text(count))
                # Back to a fresh item: cancel this one.
                mark = events.mark()
                workflow.submit(Back())
                events.wait(mark, lambda e: isinstance(e, StateChanged)
                            and e.new is State.SIGNED_IN, "the item to be cancelled")
                continue
            assert isinstance(event, VerdictReady)
            line = InspectionLine(index, code, event.capture_id, event.label, event.fused_score,
                                  tuple(event.likely_types), dict(event.timings_ms), latency)
            result.lines.append(line)
            echo(line.text(count))
            # The associate agrees; severity follows the verdict (DAMAGED: minor, with the
            # likely types), since a store confirmation always carries a severity.
            damaged = event.label == "DAMAGED"
            mark = events.mark()
            workflow.submit(Confirm(agree=True,
                                    severity=Severity.MINOR if damaged else Severity.NONE,
                                    defect_types=tuple(event.likely_types) if damaged else ()))
            events.wait(mark, lambda e: isinstance(e, ConfirmationSaved),
                        f"the confirmation of {event.capture_id}")
            events.wait(mark, lambda e: isinstance(e, StateChanged) and e.new is State.SIGNED_IN,
                        "the station to be ready")

        latencies = result.latencies_ms
        if not latencies:
            raise StationError(f"demo: none of the {count} capture(s) got a verdict "
                               "(every frame was rejected; see the lines above)")
        echo(f"trigger->verdict latency over {len(latencies)} verdict(s): "
             f"p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms")
        if report:
            ids = [line.capture_id for line in result.lines if line.label != "REJECTED"]
            result.report = write_demo_report(store, ids, report_dir / "report.html", config,
                                              model_versions, station.thresholds)
            echo(f"report: {result.report}")
        return result
    finally:
        station.close()

def write_demo_report(store, capture_ids: list[str], path: Path, config: StationConfig,
                      model_versions: dict[str, str],
                      thresholds: tuple[float, float] | None = None) -> Path:
    """A replay-style report over the demo's captures: the associate's confirmations are
    the ground truth, the fused score the scorer."""
    from station_app.report import render_report
    from station_app.report.data import CaptureImages, CaptureRow, ReportData
    from station_app.store.records import utc_now

    rows = []
    for capture_id in capture_ids:
        record = store.get(capture_id)
        if record is None or record.confirmation is None:
            continue
        files = record.files
        rows.append(CaptureRow(
            capture_id=record.capture_id, item_identifier=record.item_identifier,
            material=record.item_material, defect=record.confirmation.defective,
            major=record.confirmation.severity == "major",
            scores={"fused": record.outputs.fused, "p_any": record.outputs.p_any},
            defect_types=record.confirmation.defect_types, verdict=record.outputs.verdict,
            images=CaptureImages(
                tray=store.path(record, "tray") if "tray" in files else None,
                heatmap=store.path(record, "heatmap") if "heatmap" in files else None,
                crop=store.path(record, "item_crop") if "item_crop" in files else None,
                heatmap_on="tray")))
    data = ReportData(title=f"Demo on {config.station.id}: {len(rows)} capture(s)",
                      captures=rows, scorers=("fused", "p_any"), primary_scorer="fused",
                      data_set=f"capture store {store.root} (demo captures)", created=utc_now(),
                      model_versions=model_versions,
                      thresholds=thresholds or (config.thresholds.ok_below,
                                                config.thresholds.damaged_above),
                      bootstrap_resamples=200)
    path.parent.mkdir(parents=True, exist_ok=True)
    return render_report(data, path)
