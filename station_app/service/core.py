"""The station core: the station opened once, served on a local socket, watched over.

``station-app serve`` runs it, normally as the systemd service ``inspection-station``:

1. open the station (camera, lights, scanner, models, capture store, workflow) with
   ``STATUS=`` lines saying which part it is on;
2. check that camera, lights and models are up, start serving the workflow on
   ``service.socket_path`` for the operator UI and automation, and only then tell
   systemd ``READY=1`` (a ``Type=notify`` unit is "active" from that moment);
3. every ``service.tick_s``: a ``Tick`` for the workflow's timeouts, then the health
   checks, which feed the watchdog only while the station is healthy
   (:class:`~station_app.service.watchdog.HealthMonitor`);
4. on SIGTERM (``systemctl stop``): ``STOPPING=1``, let the step in progress finish
   (so the frame in flight is stored), stop serving, close the station.

Front ends come and go on the socket; none of them owns the workflow, so a UI that
restarts never disturbs an inspection here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from station_app.config import StationConfig
from station_app.errors import StationError
from station_app.service.health import (HealthReport, LightsCheck, Level, camera_health,
                                        disk_health, models_health, run_checks, workflow_health)
from station_app.service.journal_logging import set_active_capture
from station_app.service.notify import SystemdNotifier
from station_app.service.watchdog import HealthMonitor

log = logging.getLogger("station_app.service.core")

# Parts that must be up before the core reports READY=1.
REQUIRED_FOR_READY = ("camera", "lights", "models")
STOP_WAIT_S = 15.0   # for the step in progress at SIGTERM; below the unit's TimeoutStopSec
STUCK_TICKS = 5      # ticks unhandled before the workflow counts as stuck ...
STUCK_MIN_S = 2.0    # ... and never less than this (a slow serial command is not stuck)

ServerFactory = Callable[[Any, Path, Callable[[], dict]], Any]


def workflow_server(workflow: Any, socket_path: Path, info: Callable[[], dict]) -> Any:
    """The local-socket server front ends connect to (imported when first used)."""
    from station_app.service.server import WorkflowServer

    return WorkflowServer(workflow, socket_path, info=info)


class StationCore:
    """One station, served until :meth:`request_stop`. Call :meth:`run` on the main thread.

    ``open_station`` and ``server_factory`` are the real ones unless a test passes others;
    ``server_factory`` None serves no socket (the workflow is still driven and watched).
    """

    def __init__(self, config: StationConfig, *, notifier: SystemdNotifier | None = None,
                 frames: Path | None = None, store_root: Path | None = None,
                 open_station: Callable[..., Any] | None = None,
                 server_factory: ServerFactory | None = workflow_server,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if open_station is None:
            from station_app.station import open_station
        self.config = config
        self.notifier = notifier or SystemdNotifier(None)
        self.frames = frames
        self.store_root = store_root
        self.socket_path = Path(config.service.socket_path)
        self._open_station = open_station
        self._server_factory = server_factory
        self._clock = clock
        self._stop = threading.Event()
        self._stop_reason = ""
        self.station: Any = None
        self.server: Any = None
        self.monitor: HealthMonitor | None = None
        self.opened_at: float | None = None     # time.monotonic() when the station was open
        self.ready_at: float | None = None
        self._started = time.monotonic()
        self._unsubscribe: Callable[[], None] | None = None
        self._lights_check: LightsCheck | None = None
        self._ticking_since: float | None = None   # time.monotonic() of the first Tick

    # -- control -------------------------------------------------------------------------

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask :meth:`run` to stop after the current tick. Safe from any thread."""
        self._stop_reason = self._stop_reason or reason
        self._stop.set()

    def request_stop_from_signal(self, reason: str) -> None:
        """For a signal handler: the Event is set from a helper thread, because the handler
        may interrupt the main thread while it holds the Event's own lock."""
        self._stop_reason = self._stop_reason or reason
        threading.Thread(target=self._stop.set, name="stop-request", daemon=True).start()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Open, serve and watch the station until stopped; raises StationError when the
        station cannot start (systemd then restarts the unit)."""
        try:
            self._start()
            self._loop()
        finally:
            self._shutdown()

    # -- start ---------------------------------------------------------------------------

    def _start(self) -> None:
        config = self.config
        self.notifier.status("starting: opening camera, lights, scanner and models")
        log.info("station %s (%s) starting; configuration %s", config.station.id,
                 config.station.name, config.source)
        try:
            self.station = self._open_station(config, self.frames, self.store_root)
        except StationError as error:
            self._start_failed(f"cannot open the station: {error}", error)
            raise
        self.opened_at = time.monotonic()
        self._track_captures()
        workflow = self.station.workflow
        lighting = self.station.devices.lighting
        self._lights_check = LightsCheck(lighting.controller, lambda: workflow.state.busy,
                                         port=str(getattr(lighting.controller, "port", "")))
        self.monitor = HealthMonitor(self.check_health, self.notifier,
                                     config.service.health_grace_s, clock=self._clock)
        report = self.check_health()
        down = [c for c in report.components
                if c.component in REQUIRED_FOR_READY and c.level is Level.FAIL]
        if down:
            message = "; ".join(f"{c.component}: {c.message}" for c in down)
            error = StationError(f"not ready: {message}")
            self._start_failed(str(error), error)
            raise error
        if self._server_factory is not None:
            self.notifier.status(f"starting: serving on {self.socket_path}")
            server = self._server_factory(workflow, self.socket_path, self.status_info)
            try:
                server.start()
            except StationError as error:
                self._start_failed(f"cannot serve the workflow: {error}", error)
                raise
            self.server = server
        self._warn_if_watchdog_too_short()
        self.ready_at = time.monotonic()
        self.notifier.ready(f"ready: {report.summary()}")
        log.info("ready in %.1f s: %s; %s", self.ready_at - self._started, report.summary(),
                 f"serving on {self.socket_path}" if self.server is not None else "no socket")

    def _start_failed(self, message: str, error: BaseException) -> None:
        code = getattr(error.__cause__, "errno", None) or getattr(error, "errno", None)
        if isinstance(code, int):
            self.notifier.errno(code, message)
        else:
            self.notifier.status(message)
        log.error("%s", message)

    def _warn_if_watchdog_too_short(self) -> None:
        interval = self.notifier.watchdog_interval_s
        tick = self.config.service.tick_s
        if interval is not None and tick > interval / 2:
            log.warning("service.tick_s (%.1f s) is more than half of systemd's WatchdogSec "
                        "(%.1f s): the watchdog may fire on a healthy station", tick, interval)

    def _track_captures(self) -> None:
        """The capture in progress goes on every log line (see journal_logging)."""
        from station_app.workflow import CaptureSaved, Fault, ItemRejected, State, StateChanged
        from station_app.workflow import VerdictReady

        between = (State.SIGNED_OUT, State.SIGNED_IN, State.ITEM_IDENTIFIED,
                   State.WAITING_FOR_ITEM, State.CAPTURING)

        def on_event(event: Any) -> None:
            if isinstance(event, CaptureSaved):
                set_active_capture(event.capture_id)
                log.info("capture saved (item %s)", event.item_identifier)
            elif isinstance(event, VerdictReady):
                log.info("verdict %s, fused score %.3f%s", event.label, event.fused_score,
                         f", likely {', '.join(event.likely_types)}" if event.likely_types
                         else "")
            elif isinstance(event, ItemRejected):
                log.info("item rejected: %s", event.message)
            elif isinstance(event, Fault):
                log.warning("%s fault: %s", event.kind, event.message)
            elif isinstance(event, StateChanged) and event.new in between:
                set_active_capture(None)
        self._unsubscribe = self.station.workflow.subscribe(on_event)

    # -- loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        from station_app.workflow import Tick

        assert self.monitor is not None
        tick_s = self.config.service.tick_s
        while not self._stop.is_set():
            if self._ticking_since is None:
                self._ticking_since = time.monotonic()
            self.station.workflow.submit(Tick())
            self.monitor.step()
            self._stop.wait(tick_s)

    def check_health(self) -> HealthReport:
        """The parts the core holds open: camera, lights, models, workflow, disk."""
        station, config, lights = self.station, self.config, self._lights_check
        assert station is not None and lights is not None, "check_health before the start"
        checks = {
            "camera": lambda: camera_health(station.devices.camera),
            "lights": lights,
            "models": lambda: models_health(station.model_versions, station.runtime),
            "workflow": lambda: workflow_health(
                station.workflow, ticking_since=self._ticking_since,
                stuck_after_s=max(STUCK_TICKS * config.service.tick_s, STUCK_MIN_S)),
            "disk": lambda: disk_health(station.store.root, config.data.min_free_gb),
        }
        return run_checks(checks)

    def status_info(self) -> dict[str, Any]:
        """What a ``status`` request over the socket returns (plain JSON values)."""
        station, monitor = self.station, self.monitor
        last = monitor.last if monitor is not None else None
        report = last.report if last is not None else self.check_health()
        return {
            "station": self.config.station.id,
            "name": self.config.station.name,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self._started, 1),
            "ready": self.ready_at is not None,
            "stopping": self.stopping,
            "health": report.to_dict(),
            "watchdog": {"fed": last.petted if last is not None else None,
                         "status": last.status if last is not None else "",
                         "interval_s": self.notifier.watchdog_interval_s,
                         "grace_s": self.config.service.health_grace_s},
            "model_versions": dict(station.model_versions) if station is not None else {},
            "runtime": station.runtime if station is not None else "",
            "profile_version": station.profile_version if station is not None else "",
            "socket": str(self.socket_path),
            "config": str(self.config.source),
        }

    # -- stop ----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        reason = self._stop_reason or "start-up failed"
        if self.station is not None:
            self.notifier.stopping(f"stopping: {reason}")
            log.info("stopping (%s)", reason)
            # No new work (a Trigger now would start a capture the close cuts off); front
            # ends still get the events of the step in progress.
            if self.server is not None:
                self.server.drain(f"the station core is stopping ({reason}); try again when "
                                  "it is back")
            if not self.station.workflow.wait_until_idle(STOP_WAIT_S):
                log.warning("the step in progress did not finish within %.0f s; closing anyway",
                            STOP_WAIT_S)
        if self.server is not None:
            try:
                self.server.close()
            except Exception:
                log.exception("closing the socket server failed")
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.station is not None:
            self.station.close()
            log.info("station closed")
        set_active_capture(None)
