"""One inspection at the station as a state machine: commands in, events out, plain data.

The UI (or a socket server, or a robot cell) drives it only through
:meth:`InspectionWorkflow.submit` and listens through :meth:`InspectionWorkflow.subscribe`;
slow work (lights, camera, models, storage) runs on a worker thread, so nothing that
submits a command ever waits for hardware.
"""

from station_app.workflow.auto_trigger import AutoTriggerSettings, StillnessDetector
from station_app.workflow.commands import (Back, Command, Confirm, ItemScanned, ItemTyped, Retry,
                                           SignIn, SignOut, Tick, Trigger, TriggerSource)
from station_app.workflow.events import (CaptureSaved, CommandIgnored, ConfirmationSaved, Event,
                                         Fault, ItemRejected, StateChanged, VerdictReady)
from station_app.workflow.machine import InspectionWorkflow
from station_app.workflow.sink import (CaptureOutcome, CaptureRecord, CaptureSink, Confirmation,
                                       MemoryCaptureSink)
from station_app.workflow.states import State
from station_app.workflow.timeouts import Timeouts

__all__ = [
    "AutoTriggerSettings", "Back", "CaptureOutcome", "CaptureRecord", "CaptureSaved", "CaptureSink", "Command",
    "CommandIgnored", "Confirm", "Confirmation", "ConfirmationSaved", "Event", "Fault",
    "InspectionWorkflow", "ItemRejected", "ItemScanned", "ItemTyped", "MemoryCaptureSink",
    "Retry", "SignIn", "SignOut", "State", "StateChanged", "StillnessDetector", "Tick",
    "Timeouts", "Trigger", "TriggerSource", "VerdictReady",
]
