"""What can be asked of the workflow. Frozen plain data, so any front end can send them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TriggerSource(enum.Enum):
    BUTTON = "button"
    PEDAL = "pedal"
    AUTO = "auto"


class Severity(enum.Enum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"


@dataclass(frozen=True)
class SignIn:
    badge: str


@dataclass(frozen=True)
class SignOut:
    pass


@dataclass(frozen=True)
class ItemScanned:
    """A code from the barcode scanner."""

    code: str


@dataclass(frozen=True)
class ItemTyped:
    """A code typed by the associate (unreadable barcode)."""

    code: str


@dataclass(frozen=True)
class Trigger:
    source: TriggerSource = TriggerSource.BUTTON


@dataclass(frozen=True)
class Confirm:
    """The associate's word on the verdict: agree, or override with severity and types."""

    agree: bool
    severity: Severity = Severity.NONE
    defect_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Back:
    """Leave the current state the safe way (cancel, go back a step)."""


@dataclass(frozen=True)
class Retry:
    """From a fault: attempt the step that failed again (nothing captured is redone)."""


@dataclass(frozen=True)
class Tick:
    """Time passes: check the state's timeout. ``now`` None means the workflow's clock."""

    now: float | None = None


Command = SignIn | SignOut | ItemScanned | ItemTyped | Trigger | Confirm | Back | Retry | Tick
PUBLIC_COMMANDS = (SignIn, SignOut, ItemScanned, ItemTyped, Trigger, Confirm, Back, Retry, Tick)
