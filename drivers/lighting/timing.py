"""Strobe timing: a light pulse that covers the camera's whole exposure, with a guard band.

Camera and controller are fired by the same trigger. The camera starts exposing
``trigger_delay_us`` after it; the pulse must start a little before and end a little after,
so trigger jitter never leaves the start or end of the exposure dark (a dark band shows
up as a brightness gradient the scorer can mistake for damage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PulseTiming:
    width_us: int
    delay_us: int


def pulse_for_exposure(exposure_us: float, *, trigger_delay_us: float = 0.0,
                       guard_us: float = 50.0) -> PulseTiming:
    """Return the pulse width/delay lighting ``[trigger_delay, trigger_delay + exposure]``.

    The pulse starts ``guard_us`` before the exposure (or at the trigger, if the exposure
    starts sooner than that) and ends ``guard_us`` after it.
    """
    if not math.isfinite(exposure_us) or exposure_us <= 0:
        raise ValueError(f"exposure must be > 0 us, got {exposure_us!r}")
    if trigger_delay_us < 0 or guard_us < 0:
        raise ValueError("trigger delay and guard must be >= 0 us")
    delay_us = max(0, math.floor(trigger_delay_us - guard_us))
    end_us = math.ceil(trigger_delay_us + exposure_us + guard_us)
    return PulseTiming(width_us=end_us - delay_us, delay_us=delay_us)
