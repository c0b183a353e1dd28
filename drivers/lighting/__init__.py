"""LED lighting controller: the device interface, the Gardasoft-style serial driver, a simulator."""

from drivers.lighting.controller import LightingController
from drivers.lighting.errors import (BadNumber, InvalidParameter, LightingError, UnknownCommand,
                                     ValueClamped, WrongParameterCount)
from drivers.lighting.gardasoft import GardasoftController
from drivers.lighting.protocol import GardasoftProtocol
from drivers.lighting.state import ChannelMode, ChannelState
from drivers.lighting.timing import PulseTiming, pulse_for_exposure

__all__ = [
    "BadNumber", "ChannelMode", "ChannelState", "GardasoftController", "GardasoftProtocol",
    "InvalidParameter", "LightingController", "LightingError", "PulseTiming", "UnknownCommand",
    "ValueClamped", "WrongParameterCount", "pulse_for_exposure",
]
