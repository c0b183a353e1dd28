"""Exceptions every driver raises, so callers handle hardware faults without knowing the device.

Device families add their own subclasses (e.g. ``drivers.lighting.errors``); callers that
only care whether the hardware answered catch these base classes.
"""


class DriverError(Exception):
    """A hardware driver could not do what was asked; the message names the device and why."""


class DeviceTimeout(DriverError):
    """The device did not answer within the allowed time (silent, busy or miswired)."""


class DeviceDisconnected(DriverError):
    """The device's port vanished or could not be opened (cable or USB adapter unplugged)."""


class ProtocolError(DriverError):
    """The device answered, but with bytes that do not fit its protocol (noise, wrong device)."""
