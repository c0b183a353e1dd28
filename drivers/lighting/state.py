"""What one controller channel is set to: the value the driver remembers and reads back."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class ChannelMode(enum.Enum):
    OFF = "OFF"
    CONTINUOUS = "CONT"
    PULSE = "PULSE"


@dataclass(frozen=True)
class ChannelState:
    """One channel's mode, brightness in percent, and strobe timing in microseconds.

    Brightness above 100 % is allowed only in pulse mode (LED overdrive during a short
    strobe); the controller decides the exact limits and clamps (``Err 5``).
    """

    channel: int
    mode: ChannelMode
    percent: float = 0.0
    width_us: int = 0
    delay_us: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.channel, bool) or not isinstance(self.channel, int) or self.channel < 1:
            raise ValueError(f"channel must be an integer >= 1, got {self.channel!r}")
        if not math.isfinite(self.percent) or self.percent < 0:
            raise ValueError(f"brightness must be a finite percentage >= 0, got {self.percent!r}")
        if self.width_us < 0 or self.delay_us < 0:
            raise ValueError("pulse width and delay must be >= 0 microseconds")

    @classmethod
    def continuous(cls, channel: int, percent: float) -> ChannelState:
        """Continuous light; 0 % is OFF, the way the controller reports it."""
        mode = ChannelMode.CONTINUOUS if percent > 0 else ChannelMode.OFF
        return cls(channel, mode, float(percent))

    @classmethod
    def dark(cls, channel: int) -> ChannelState:
        return cls(channel, ChannelMode.OFF, 0.0)

    @classmethod
    def pulse(cls, channel: int, width_us: int, delay_us: int, percent: float) -> ChannelState:
        if width_us < 1:
            raise ValueError(f"pulse width must be >= 1 us, got {width_us!r}")
        return cls(channel, ChannelMode.PULSE, float(percent), int(width_us), int(delay_us))
