"""Feeding systemd's watchdog only while the station is healthy.

The core's main loop calls :meth:`HealthMonitor.step` once per tick. Each step checks
every part; while all of them are healthy it sends ``WATCHDOG=1``. A part that fails is
given a grace period (``service.health_grace_s``) to recover on its own (a USB-serial
adapter that comes back, a camera re-attached); once it has failed for longer, the
monitor stops feeding the watchdog and systemd restarts the core (``WatchdogSec=``,
``Restart=on-failure``). A failure a restart cannot cure (a full disk) is reported but
never starves the watchdog: restarting in a loop would only hide the message.

Because the pets come from the main loop itself, a hung main loop starves the watchdog
too, which is the other half of what it is for. ``STATUS=`` lines (``systemctl status``)
say what is wrong and how long until the restart.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from station_app.service.health import HealthReport, Level
from station_app.service.notify import SystemdNotifier

log = logging.getLogger("station_app.service.watchdog")


@dataclass(frozen=True)
class MonitorStep:
    """What one step found and did."""

    report: HealthReport
    petted: bool
    status: str
    failing_for_s: dict[str, float] = field(default_factory=dict)   # restartable failures


class HealthMonitor:
    """Runs ``check`` each step and pets ``notifier``'s watchdog while the station is healthy.

    ``clock`` is injectable so that tests step through the grace period without sleeping.
    """

    def __init__(self, check: Callable[[], HealthReport], notifier: SystemdNotifier | None,
                 grace_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if grace_s < 0:
            raise ValueError(f"grace_s must be 0 or more, got {grace_s}")
        self.check = check
        self.notifier = notifier or SystemdNotifier(None)
        self.grace_s = grace_s
        self.clock = clock
        self.last: MonitorStep | None = None
        self._failing_since: dict[str, float] = {}
        self._starving = False

    def step(self) -> MonitorStep:
        now = self.clock()
        report = self.check()
        restartable = {c.component: c for c in report.components
                       if c.level is Level.FAIL and c.restart_helps}
        for name in list(self._failing_since):
            if name not in restartable:
                del self._failing_since[name]
                log.warning("%s recovered: %s", name,
                            getattr(report.get(name), "message", "no longer checked"))
        for name, component in restartable.items():
            if name not in self._failing_since:
                self._failing_since[name] = now
                log.error("%s FAIL: %s (restart in %.0f s unless it recovers; fix: %s)", name,
                          component.message, self.grace_s, component.fix or "-")
        failing_for = {name: now - since for name, since in self._failing_since.items()}
        overdue = sorted(name for name, seconds in failing_for.items() if seconds >= self.grace_s)
        petted = not overdue
        if petted:
            self.notifier.watchdog()
            if self._starving:
                log.warning("watchdog fed again: the station is healthy")
        elif not self._starving:
            log.error("watchdog no longer fed (%s failing longer than %.0f s): systemd "
                      "restarts the core", ", ".join(overdue), self.grace_s)
        self._starving = not petted
        status = self._status_text(report, failing_for, overdue)
        if self.last is None or status != self.last.status:
            self.notifier.status(status)
        self.last = MonitorStep(report, petted, status, failing_for)
        return self.last

    def _status_text(self, report: HealthReport, failing_for: dict[str, float],
                     overdue: list[str]) -> str:
        parts = []
        for component in report.components:
            if component.level is Level.OK:
                continue
            text = f"{component.component} {component.level.label}"
            if component.component in failing_for:
                text += f" for {failing_for[component.component]:.0f} s"
            parts.append(f"{text}: {component.message}")
        if not parts:
            return "healthy: " + ", ".join(c.component for c in report.components)
        if overdue:
            tail = "watchdog no longer fed, systemd restarts the core"
        elif failing_for:
            left = min(self.grace_s - seconds for seconds in failing_for.values())
            tail = f"restart in {max(left, 0):.0f} s unless it recovers"
        elif report.failing:
            tail = "a restart would not help; the core keeps running"
        else:
            tail = "running with warnings"
        return "; ".join(parts) + f" ({tail})"
