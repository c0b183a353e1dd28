"""The Gardasoft RT-series style controller on a serial port, with reconnect.

Decisions a caller should know:

* **Clamped values** (``Err 5``): the controller has applied its limit. The driver reads
  the channel back, remembers what is really in effect, and raises
  :class:`ValueClamped` carrying both ``requested`` and ``applied``: silently running
  at a different brightness than calibrated would skew every capture after it.
* **Disconnect** (the port vanished, e.g. the USB-serial adapter was pulled): the driver
  retries opening the same path for ``reconnect_timeout_s`` (give it a stable name such
  as ``/dev/serial/by-id/...``), re-applies the remembered settings, then repeats the
  command once. If the port does not come back, :class:`DeviceDisconnected` is raised.
* **Timeouts, noise, missing prompt** are raised as they are (:class:`DeviceTimeout`,
  :class:`ProtocolError`); the next command starts on a clean line.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, TypeVar

from drivers.errors import DeviceDisconnected, DriverError
from drivers.lighting.controller import LightingController
from drivers.lighting.errors import ValueClamped
from drivers.lighting.protocol import GardasoftProtocol
from drivers.lighting.state import ChannelMode, ChannelState
from drivers.serial_link import SerialLink

log = logging.getLogger(__name__)

T = TypeVar("T")


class GardasoftController(LightingController):
    """Lighting controller at ``port``; use as a context manager or call :meth:`open`."""

    def __init__(self, port: str, *, channel_count: int = 4, timeout_s: float = 0.5,
                 reconnect_timeout_s: float = 5.0, baudrate: int = 115200) -> None:
        super().__init__(channel_count)
        self.link = SerialLink(port, baudrate=baudrate)
        self.protocol = GardasoftProtocol(self.link, timeout_s=timeout_s)
        self.reconnect_timeout_s = reconnect_timeout_s
        self.reconnects = 0
        self._reconnecting = False
        self._closed = True
        # One caller at a time through command + reconnect + re-apply (re-entrant for re-apply).
        self._lock = threading.RLock()

    @property
    def port(self) -> str:
        return self.link.port

    def open(self) -> GardasoftController:
        """Open the port and check that a controller answers (reads its version)."""
        self.link.open()
        self._closed = False
        version = self.protocol.version()
        log.info("lighting controller on %s: %s", self.port, version)
        return self

    def close(self) -> None:
        self._closed = True
        self.link.close()

    def __enter__(self) -> GardasoftController:
        return self.open()

    # -- hooks -----------------------------------------------------------------------

    def _do_apply(self, state: ChannelState) -> None:
        def apply() -> None:
            if state.mode is ChannelMode.PULSE:
                self.protocol.set_pulse(state.channel, state.width_us, state.delay_us,
                                        state.percent)
            else:
                self.protocol.set_continuous(state.channel, state.percent)
        try:
            self._with_reconnect(apply)
        except ValueClamped as clamped:
            applied = self._with_reconnect(lambda: self.protocol.status(state.channel))
            raise ValueClamped(
                f"channel {state.channel}: asked for {_describe(state)}, the controller "
                f"clamped it to {_describe(applied)}",
                command=clamped.command, requested=state, applied=applied) from clamped

    def _do_status(self, channel: int) -> ChannelState:
        return self._with_reconnect(lambda: self.protocol.status(channel))

    def _do_firmware_version(self) -> str:
        return self._with_reconnect(self.protocol.version)

    def _do_last_error(self) -> int:
        return self._with_reconnect(self.protocol.last_error)

    def _do_save(self) -> None:
        self._with_reconnect(self.protocol.save)

    # -- reconnect -------------------------------------------------------------------

    def _with_reconnect(self, operation: Callable[[], T]) -> T:
        """Run ``operation``; if the port vanished, reconnect, re-apply, and run it once more."""
        with self._lock:
            if self._closed:
                raise DriverError(f"lighting controller on {self.port} is closed")
            try:
                return operation()
            except DeviceDisconnected as error:
                if self._reconnecting:
                    raise
                log.warning("lighting controller on %s lost (%s); reconnecting", self.port, error)
                self._reconnect()
                return operation()

    def _reconnect(self) -> None:
        self._reconnecting = True
        try:
            self.link.reopen(timeout_s=self.reconnect_timeout_s)
            try:
                self.reapply()
            except ValueClamped as clamped:  # remembered values are the applied ones
                log.warning("re-applying settings on %s: %s", self.port, clamped)
            self.reconnects += 1
            log.info("lighting controller on %s back; settings re-applied", self.port)
        finally:
            self._reconnecting = False


def _describe(state: ChannelState) -> str:
    if state.mode is ChannelMode.PULSE:
        return (f"pulse {state.percent:g} % for {state.width_us} us "
                f"after {state.delay_us} us")
    return f"{state.percent:g} %"
