"""How long each state may last before the workflow steps back on its own.

Driven by ``Tick`` commands with the workflow's injectable clock, so the UI's timer
and the tests' fake clock both move time the same way. ``None`` means no limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from station_app.workflow.states import State


@dataclass(frozen=True)
class Timeouts:
    signed_in_idle_s: float | None = 600.0      # → signed out (badge left signed in)
    waiting_for_item_s: float | None = 180.0    # → signed in (scan the item again)
    capturing_s: float | None = 15.0            # → fault (lights or camera hung)
    processing_s: float | None = 60.0           # → fault (models hung)
    verdict_shown_s: float | None = 300.0       # → signed in (capture kept unconfirmed)
    confirming_s: float | None = 30.0           # → fault (store hung)
    fault_s: float | None = 1800.0              # → signed out (nobody came)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value is not None and not value > 0:
                raise ValueError(f"Timeouts.{name} must be positive seconds or None, "
                                 f"got {value!r}")

    def limit(self, state: State) -> float | None:
        return {State.SIGNED_IN: self.signed_in_idle_s,
                State.WAITING_FOR_ITEM: self.waiting_for_item_s,
                State.CAPTURING: self.capturing_s,
                State.PROCESSING: self.processing_s,
                State.VERDICT_SHOWN: self.verdict_shown_s,
                State.CONFIRMED: self.confirming_s,
                State.FAULT: self.fault_s}.get(state)
