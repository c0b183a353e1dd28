"""What every lighting controller offers the station, whatever cable or protocol is behind it.

Public methods validate, keep the remembered settings and call small ``_do_*`` hooks that
a concrete controller implements (the python-microscope pattern). Remembering matters:
a controller that was power-cycled, or whose USB adapter came back, is set up again from
:meth:`LightingController.reapply` without the caller repeating itself.

On/off model: each channel has a configured state. :meth:`on` lights every configured
channel, :meth:`off` darkens every channel but keeps the configuration. While the
lights are off, :meth:`set_brightness` and :meth:`set_pulse` only update the
configuration; it takes effect at the next :meth:`on`.
"""

from __future__ import annotations

import abc
import logging
from types import TracebackType

from drivers.lighting.errors import ValueClamped
from drivers.lighting.state import ChannelState
from drivers.lighting.timing import pulse_for_exposure

log = logging.getLogger(__name__)


class LightingController(abc.ABC):
    """A multi-channel LED controller with channels numbered from 1."""

    def __init__(self, channel_count: int) -> None:
        if channel_count < 1:
            raise ValueError(f"channel_count must be >= 1, got {channel_count}")
        self.channel_count = channel_count
        self._configured: dict[int, ChannelState] = {}
        self._lights_on = True

    # -- public API ------------------------------------------------------------------

    @property
    def settings(self) -> dict[int, ChannelState]:
        """The configured state of each channel set so far (a copy)."""
        return dict(self._configured)

    @property
    def lights_on(self) -> bool:
        return self._lights_on

    def set_brightness(self, channel: int, percent: float) -> None:
        """Continuous light at ``percent`` (0 switches the channel off).

        Raises :class:`ValueClamped` when the controller lowered the value; the lowered
        value is in effect and remembered.
        """
        self._configure(ChannelState.continuous(channel, percent))

    def set_pulse(self, channel: int, width_us: int, delay_us: int, percent: float) -> None:
        """Strobe: a ``width_us`` pulse, ``delay_us`` after each trigger, at ``percent``."""
        self._configure(ChannelState.pulse(channel, width_us, delay_us, percent))

    def set_pulse_for_exposure(self, channel: int, exposure_us: float, percent: float, *,
                               trigger_delay_us: float = 0.0, guard_us: float = 50.0) -> None:
        """Strobe timed to cover a camera exposure (see :func:`pulse_for_exposure`)."""
        timing = pulse_for_exposure(exposure_us, trigger_delay_us=trigger_delay_us,
                                    guard_us=guard_us)
        self.set_pulse(channel, timing.width_us, timing.delay_us, percent)

    def on(self) -> None:
        """Light every configured channel as configured."""
        for state in self._configured.values():
            self._do_apply(state)
        self._lights_on = True

    def off(self) -> None:
        """Darken every channel; the configuration stays for the next :meth:`on`."""
        for channel in range(1, self.channel_count + 1):
            self._do_apply(ChannelState.dark(channel))
        self._lights_on = False

    def reapply(self) -> None:
        """Put the remembered settings back (after a reconnect or a controller power cycle)."""
        if self._lights_on:
            self.on()
        else:
            self.off()

    def status(self, channel: int) -> ChannelState:
        """What the controller reports for ``channel`` now."""
        return self._do_status(channel)

    def firmware_version(self) -> str:
        return self._do_firmware_version()

    def last_error(self) -> int:
        """The controller's last error code since the previous call (0 if none)."""
        return self._do_last_error()

    def save(self) -> None:
        """Store the current settings in the controller so they survive its power cycle."""
        self._do_save()

    def close(self) -> None:
        """Release the connection; the lights keep their state."""

    def __enter__(self) -> LightingController:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- hooks -----------------------------------------------------------------------

    @abc.abstractmethod
    def _do_apply(self, state: ChannelState) -> None:
        """Put one channel into ``state``.

        On a clamped value raise :class:`ValueClamped` with ``applied`` set to the state
        the controller really took.
        """

    @abc.abstractmethod
    def _do_status(self, channel: int) -> ChannelState: ...

    @abc.abstractmethod
    def _do_firmware_version(self) -> str: ...

    @abc.abstractmethod
    def _do_last_error(self) -> int: ...

    @abc.abstractmethod
    def _do_save(self) -> None: ...

    # -- internals -------------------------------------------------------------------

    def _configure(self, state: ChannelState) -> None:
        if self._lights_on:
            try:
                self._do_apply(state)
            except ValueClamped as clamped:
                self._configured[state.channel] = clamped.applied or state
                raise
        self._configured[state.channel] = state
