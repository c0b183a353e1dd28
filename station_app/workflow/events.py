"""What the workflow tells its listeners. Frozen plain data (numbers, text, tuples, arrays)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from station_app.workflow.states import State

Audience = Literal["associate", "technician"]


@dataclass(frozen=True)
class StateChanged:
    old: State
    new: State
    message: str                       # what the screen should tell the associate now
    item_identifier: str | None = None
    # Who is signed in and how many inspections they confirmed since: kept by the workflow,
    # so a front end that restarts mid-shift shows them again.
    operator: str = ""
    confirmed_count: int = 0


@dataclass(frozen=True)
class CommandIgnored:
    """A command that does not apply now (e.g. a second trigger while processing).

    Ignored, never queued: the associate presses again when the station is ready."""

    command: str
    state: State
    reason: str


@dataclass(frozen=True)
class CaptureSaved:
    capture_id: str
    item_identifier: str


@dataclass(frozen=True)
class VerdictReady:
    capture_id: str
    label: str                         # OK, REVIEW or DAMAGED
    fused_score: float
    likely_types: tuple[str, ...]
    reason: str
    heatmap: np.ndarray = field(repr=False)      # [0, 1] on the scorer's grid
    tray_image: np.ndarray = field(repr=False)   # the 2048² tray image the heatmap lies on
    timings_ms: dict[str, float] = field(default_factory=dict)
    # What the screen shows side by side: the item crop and the item's first reference's
    # crop (None: the item has no reference yet).
    item_crop: np.ndarray | None = field(default=None, repr=False)
    reference_crop: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ItemRejected:
    """A quality gate refused the frame; ``message`` tells the associate what to do."""

    capture_id: str
    issues: tuple[tuple[str, str], ...]   # (code, instruction)
    message: str


@dataclass(frozen=True)
class Fault:
    kind: str                          # lights, camera, model, storage, timeout
    message: str
    for_whom: Audience
    recoverable: bool = True
    capture_id: str | None = None      # the capture saved before the fault, if any


@dataclass(frozen=True)
class ConfirmationSaved:
    capture_id: str


Event = (StateChanged | CommandIgnored | CaptureSaved | VerdictReady | ItemRejected | Fault
         | ConfirmationSaved)
