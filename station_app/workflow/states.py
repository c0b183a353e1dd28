"""The states of one inspection, in the order an associate passes through them."""

from __future__ import annotations

import enum


class State(enum.Enum):
    SIGNED_OUT = "signed_out"
    SIGNED_IN = "signed_in"                  # also "ready for the next item"
    ITEM_IDENTIFIED = "item_identified"      # passed through on the way to WAITING_FOR_ITEM
    WAITING_FOR_ITEM = "waiting_for_item"    # item known; place it and trigger
    CAPTURING = "capturing"                  # lights on, one frame, lights off, frame saved
    PROCESSING = "processing"                # tray crop, segmentation, gates, scoring
    VERDICT_SHOWN = "verdict_shown"          # waiting for the associate's confirmation
    CONFIRMED = "confirmed"                  # confirmation being stored
    FAULT = "fault"                          # a step failed; Retry or Back

    @property
    def busy(self) -> bool:
        """States whose work runs on the worker; triggers and sign-out wait for them."""
        return self in (State.CAPTURING, State.PROCESSING, State.CONFIRMED)
