"""Reading systemd unit files for tests: every value of every key, per section."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
CORE_UNIT = SYSTEMD / "inspection-station.service"
UI_UNIT = SYSTEMD / "inspection-station-ui.service"


def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}}; keys may repeat (DeviceAllow=), and an empty
    assignment is kept as "" (it resets the list in systemd)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], defaultdict(list))
            continue
        assert current is not None, f"{path}: {raw!r} before any section"
        key, _, value = line.partition("=")
        current[key.strip()].append(value.strip())
    return sections
