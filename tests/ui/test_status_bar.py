"""Station health from events alone: faults turn a part red, proof of work turns it green."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from station_app.workflow import CaptureSaved, ConfirmationSaved, Fault, VerdictReady
from ui.status_bar import FAILED, OK, UNKNOWN, StationHealth, StatusBar


@dataclass(frozen=True)
class CoreConnection:
    """Shaped like the socket client's connection event (plain data)."""

    connected: bool
    message: str = ""


def _verdict() -> VerdictReady:
    return VerdictReady("c1", "OK", 0.1, (), "", np.zeros((4, 4), np.float32),
                        np.zeros((8, 8, 3), np.uint8))


def test_health_follows_faults_and_recoveries():
    health = StationHealth()
    assert {part.state for part in health.parts.values()} == {UNKNOWN}
    assert health.observe(Fault("lights", "Lights not answering: timeout.", "technician"))
    assert health.parts["lights"].state == FAILED
    assert health.parts["lights"].message.startswith("Lights not answering")
    assert health.parts["camera"].state == UNKNOWN
    assert health.observe(CaptureSaved("c1", "item"))
    assert health.parts["lights"].state == health.parts["camera"].state == OK
    health.observe(Fault("model", "Processing failed.", "technician", capture_id="c1"))
    assert health.parts["models"].state == FAILED
    health.observe(_verdict())
    assert health.parts["models"].state == OK
    health.observe(Fault("storage", "Disk full.", "technician"))
    health.observe(ConfirmationSaved("c1"))
    assert health.parts["storage"].state == OK
    assert not health.observe(Fault("timeout", "Took too long.", "technician"))
    assert not health.observe(object())                     # unknown events: ignored


def test_connection_events_show_the_core(qtbot):
    bar = StatusBar("station-07", "onnxruntime")
    qtbot.addWidget(bar)
    bar.show()
    assert not bar.indicators["core"].isVisible()
    bar.observe(CoreConnection(False, "connection refused"))
    assert bar.indicators["core"].isVisible()
    assert bar.part_text("core") == "Core: disconnected"
    assert bar.indicators["core"].toolTip() == "connection refused"
    bar.observe(CoreConnection(True))
    assert bar.part_text("core") == "Core: connected"
    assert bar.part_text("models") == "Models (onnxruntime): not checked yet"
    bar.set_latency(412.4)
    assert bar.latency.text() == "Last: 412 ms"
