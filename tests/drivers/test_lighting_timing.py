"""Strobe timing: the pulse covers the whole exposure plus the guard band on both sides."""

from __future__ import annotations

import pytest

from drivers.lighting.timing import PulseTiming, pulse_for_exposure


@pytest.mark.parametrize("exposure, trigger_delay, guard, expected", [
    (10_000, 0, 50, PulseTiming(width_us=10_050, delay_us=0)),
    (10_000, 200, 50, PulseTiming(width_us=10_100, delay_us=150)),
    (10_000, 20, 50, PulseTiming(width_us=10_070, delay_us=0)),
    (500.4, 100, 0, PulseTiming(width_us=501, delay_us=100)),
])
def test_pulse_for_exposure(exposure, trigger_delay, guard, expected):
    assert pulse_for_exposure(exposure, trigger_delay_us=trigger_delay, guard_us=guard) == expected


@pytest.mark.parametrize("exposure", [1, 37.5, 999, 12_345, 80_000])
@pytest.mark.parametrize("trigger_delay", [0, 10, 333])
def test_pulse_always_covers_exposure_with_guard(exposure, trigger_delay):
    timing = pulse_for_exposure(exposure, trigger_delay_us=trigger_delay, guard_us=40)
    start, end = timing.delay_us, timing.delay_us + timing.width_us
    assert start <= max(0, trigger_delay - 40)
    assert end >= trigger_delay + exposure + 40
    assert end - (trigger_delay + exposure + 40) < 1  # and no longer than needed


@pytest.mark.parametrize("exposure", [0, -5, float("nan")])
def test_impossible_exposure_is_refused(exposure):
    with pytest.raises(ValueError):
        pulse_for_exposure(exposure)
