"""Errors the lighting controller reports as ``Err 1`` … ``Err 5``, one named exception each."""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivers.errors import DriverError

if TYPE_CHECKING:
    from drivers.lighting.state import ChannelState


class LightingError(DriverError):
    """The controller refused or altered a command; ``code`` is its ``Err n`` number."""

    code = 0
    description = "controller error"

    def __init__(self, message: str, *, command: str = "") -> None:
        super().__init__(message)
        self.command = command


class InvalidParameter(LightingError):
    """``Err 1``: a parameter is out of range (e.g. a channel the controller lacks)."""

    code = 1
    description = "invalid parameter"


class UnknownCommand(LightingError):
    """``Err 2``: the controller does not know the command."""

    code = 2
    description = "unknown command"


class BadNumber(LightingError):
    """``Err 3``: a parameter is not a number the controller can read."""

    code = 3
    description = "bad number"


class WrongParameterCount(LightingError):
    """``Err 4``: too many or too few parameters for the command."""

    code = 4
    description = "wrong parameter count"


class ValueClamped(LightingError):
    """``Err 5``: a value was above the channel's limit; the controller applied its limit.

    The command *did* take effect, at the clamped value. ``requested`` is what was asked
    for and ``applied`` what the controller reports afterwards (None when the protocol
    layer raised it and nobody has read the channel back yet).
    """

    code = 5
    description = "value clamped to the channel's limit"

    def __init__(self, message: str, *, command: str = "",
                 requested: ChannelState | None = None,
                 applied: ChannelState | None = None) -> None:
        super().__init__(message, command=command)
        self.requested = requested
        self.applied = applied


ERRORS_BY_CODE: dict[int, type[LightingError]] = {
    error.code: error
    for error in (InvalidParameter, UnknownCommand, BadNumber, WrongParameterCount, ValueClamped)
}
