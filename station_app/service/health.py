"""Health of the station's parts as a plain report: component -> OK / WARN / FAIL, with
what was found and how to fix it.

Two users: the core's main loop (:mod:`station_app.service.watchdog`) checks the parts
it holds open every tick and feeds systemd's watchdog only while they are healthy; and
``station-app status`` checks the parts from outside (configuration, model files, disk,
capture store, the systemd unit) and, when the core is not running, opens the camera and
the lights briefly itself. Both print the same report.

A check is a function returning one :class:`ComponentHealth`; :func:`run_checks` turns
a check that raises into a FAIL naming the exception, so one broken check never hides
the others.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

log = logging.getLogger("station_app.service.health")

GB = 1_000_000_000
UNIT_NAME = "inspection-station.service"


class Level(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True)
class ComponentHealth:
    """One part's state. ``restart_helps`` False marks a FAIL that restarting the core
    cannot cure (a full disk, a bad model file), so the watchdog does not restart for it."""

    component: str
    level: Level
    message: str
    fix: str = ""
    restart_helps: bool = True

    @classmethod
    def ok(cls, component: str, message: str) -> ComponentHealth:
        return cls(component, Level.OK, message)

    @classmethod
    def warn(cls, component: str, message: str, fix: str = "") -> ComponentHealth:
        return cls(component, Level.WARN, message, fix)

    @classmethod
    def fail(cls, component: str, message: str, fix: str = "", *,
             restart_helps: bool = True) -> ComponentHealth:
        return cls(component, Level.FAIL, message, fix, restart_helps)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "level": self.level.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComponentHealth:
        return cls(str(data["component"]), Level(data["level"]), str(data.get("message", "")),
                   str(data.get("fix", "")), bool(data.get("restart_helps", True)))


@dataclass(frozen=True)
class HealthReport:
    components: tuple[ComponentHealth, ...]
    checked_at: float = field(default_factory=time.time)

    @property
    def healthy(self) -> bool:
        """No part FAILs (warnings are healthy)."""
        return not self.failing

    @property
    def failing(self) -> tuple[ComponentHealth, ...]:
        return tuple(c for c in self.components if c.level is Level.FAIL)

    @property
    def exit_code(self) -> int:
        return 0 if self.healthy else 1

    def get(self, component: str) -> ComponentHealth | None:
        return next((c for c in self.components if c.component == component), None)

    def replace(self, *updates: ComponentHealth) -> HealthReport:
        """This report with ``updates`` put in place of the components of the same name
        (appended when new)."""
        by_name = {c.component: c for c in updates}
        kept = [by_name.pop(c.component, c) for c in self.components]
        return HealthReport(tuple(kept) + tuple(by_name.values()), self.checked_at)

    def summary(self) -> str:
        """One line: what is wrong, else that everything is healthy."""
        bad = [c for c in self.components if c.level is not Level.OK]
        if not bad:
            return "healthy: " + ", ".join(c.component for c in self.components)
        return "; ".join(f"{c.component} {c.level.label}: {c.message}" for c in bad)

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "checked_at": self.checked_at,
                "components": [c.to_dict() for c in self.components]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthReport:
        return cls(tuple(ComponentHealth.from_dict(c) for c in data.get("components", ())),
                   float(data.get("checked_at", time.time())))

    def table(self) -> str:
        """Aligned lines for a terminal: component, OK/WARN/FAIL, message; the fix below."""
        width = max([len(c.component) for c in self.components] + [9])
        lines = [f"{'COMPONENT':<{width}}  {'STATE':<5}  DETAIL"]
        for c in self.components:
            lines.append(f"{c.component:<{width}}  {c.level.label:<5}  {c.message}")
            if c.fix and c.level is not Level.OK:
                lines.append(f"{'':<{width}}  {'':<5}  fix: {c.fix}")
        verdict = "healthy" if self.healthy else \
            f"NOT healthy: {', '.join(c.component for c in self.failing)} failing"
        lines.append(verdict)
        return "\n".join(lines)


Check = Callable[[], ComponentHealth]


def run_checks(checks: Mapping[str, Check] | Iterable[tuple[str, Check]]) -> HealthReport:
    """Run every check; one that raises is reported as that component's FAIL."""
    items = checks.items() if isinstance(checks, Mapping) else checks
    results = []
    for name, check in items:
        try:
            results.append(check())
        except Exception as error:   # a broken check must not hide the other parts
            log.exception("health check %s failed", name)
            results.append(ComponentHealth.fail(name, f"check failed: {type(error).__name__}: "
                                                      f"{error}"))
    return HealthReport(tuple(results))


# --------------------------------------------------------------------------- the core's parts

CAMERA_FIX = ("check the camera's USB cable and power (and that `station-app devices` lists "
              "it); the core re-attaches a camera that comes back")
LIGHTS_FIX = ("check the lighting controller's power and serial cable ({port}); the udev "
              "name /dev/station-lights must point at its adapter")


def camera_health(camera: Any) -> ComponentHealth:
    """The open camera: still open and, for a Basler camera, still attached."""
    if camera is None or not camera.is_open:
        return ComponentHealth.fail("camera", "camera is not open", CAMERA_FIX)
    name = type(camera).__name__
    try:
        info = camera.info
        name = f"{info.model} {info.serial}".strip() or name
    except Exception as error:   # a camera that cannot tell who it is: removed, or dying
        return ComponentHealth.fail("camera", f"camera not answering: {error}", CAMERA_FIX)
    if getattr(camera, "removed", False):
        return ComponentHealth.fail("camera", f"camera {name} was removed (USB)", CAMERA_FIX)
    return ComponentHealth.ok("camera", f"{name} open")


class LightsCheck:
    """Asks the lighting controller for its version, except during a capture.

    A capture switches the lights on and off through the same serial line; the probe
    would only delay it, so while ``busy()`` the last answer is reported instead.
    """

    def __init__(self, controller: Any, busy: Callable[[], bool] = lambda: False,
                 port: str = "") -> None:
        self.controller = controller
        self.busy = busy
        self.port = port or str(getattr(controller, "port", "")) or "its serial port"
        self._last: ComponentHealth | None = None

    def __call__(self) -> ComponentHealth:
        if self._last is not None and self.busy():
            return self._last
        try:
            version = self.controller.firmware_version()
        except Exception as error:   # DeviceTimeout, ProtocolError, DeviceDisconnected, OSError
            result = ComponentHealth.fail("lights", f"lighting controller on {self.port} not "
                                          f"answering: {error}",
                                          LIGHTS_FIX.format(port=self.port))
        else:
            result = ComponentHealth.ok("lights", f"controller on {self.port} answers "
                                        f"({version.strip() or 'no version text'})")
        self._last = result
        return result


def models_health(model_versions: Mapping[str, str], runtime: str,
                  required: Iterable[str] = ("segmenter", "scorer")) -> ComponentHealth:
    """The models the running station loaded (the files are checked by ``model_files_health``)."""
    missing = [name for name in required if name not in model_versions]
    if missing:
        return ComponentHealth.fail("models", f"not loaded: {', '.join(missing)}",
                                    "check models.dir and the model manifests "
                                    "(`station-app status` verifies the files)")
    loaded = ", ".join(f"{name} {version or '?'}" for name, version in model_versions.items())
    return ComponentHealth.ok("models", f"{loaded} on {runtime or 'unknown runtime'}")



def workflow_health(workflow: Any, *, stuck_after_s: float | None = None,
                    ticking_since: float | None = None,
                    clock: Callable[[], float] = time.monotonic) -> ComponentHealth:
    """The workflow's dispatcher thread, which makes every state change, is alive and
    not stuck in one command.

    A live thread is not enough: a dispatcher blocked in a handler keeps the thread alive
    and the watchdog fed while nothing is handled. So when the owner submits a ``Tick``
    every few moments (``ticking_since``: ``time.monotonic()`` of its first), the
    workflow's ``last_handled_at`` must have advanced within ``stuck_after_s``."""
    state = getattr(getattr(workflow, "state", None), "value", "?")
    if not workflow.is_alive():
        return ComponentHealth.fail("workflow", "the workflow dispatcher has stopped; "
                                    "commands are no longer handled",
                                    "the core must restart (systemd does it via the watchdog)")
    last = workflow.last_handled_at
    if stuck_after_s is not None and ticking_since is not None:
        since = ticking_since if last is None else max(float(last), ticking_since)
        idle_s = clock() - since
        if idle_s > stuck_after_s:
            return ComponentHealth.fail("workflow", f"the workflow dispatcher has handled "
                                        f"nothing for {idle_s:.0f} s although ticks are "
                                        f"queued (state {state}): it is stuck in a command",
                                        "the core must restart (systemd does it via the "
                                        "watchdog); the log shows the command in progress")
    return ComponentHealth.ok("workflow", f"dispatcher running, state {state}")


def disk_health(path: Path, min_free_gb: float,
                usage: Callable[[Path], Any] | None = None) -> ComponentHealth:
    """Free space where captures go, against ``data.min_free_gb`` (WARN below twice it)."""
    usage = usage or shutil.disk_usage
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = usage(existing).free
    reserve = min_free_gb * GB
    text = f"{free / GB:.1f} GB free on {path} (keeps {min_free_gb:g} GB, data.min_free_gb)"
    fix = ("export and remove old confirmed captures (set data.retention_days), or free space "
           "on this disk")
    if free < reserve:
        return ComponentHealth.fail("disk", f"{text}: capturing is stopped", fix,
                                    restart_helps=False)
    if free < 2 * reserve:
        return ComponentHealth.warn("disk", f"{text}: getting full", fix)
    return ComponentHealth.ok("disk", text)


# --------------------------------------------------------------------------- from outside

def config_health(config: Any) -> ComponentHealth:
    return ComponentHealth.ok("config", f"valid: {config.source}")


def model_files_health(settings: Any) -> ComponentHealth:
    """Every configured model's ONNX file and manifest present, and the sha256 matching."""
    from engines.manifest import ModelError, load_manifest, manifest_path_for, sha256_file
    from station_app.models import model_path

    problems, found = [], []
    for name in (settings.segmenter, settings.scorer):
        onnx = model_path(settings, name)
        try:
            if not onnx.is_file():
                raise ModelError(onnx, "model file missing")
            manifest = load_manifest(manifest_path_for(onnx))
            actual = sha256_file(onnx)
            if actual != manifest.sha256:
                raise ModelError(onnx, f"sha256 mismatch: manifest says {manifest.sha256[:12]}…, "
                                       f"file has {actual[:12]}…")
            found.append(f"{name} {manifest.version}")
        except (ModelError, OSError) as error:
            problems.append(str(error))
    if problems:
        return ComponentHealth.fail("models", "; ".join(problems),
                                    "reinstall the models or fix models.dir; a model whose "
                                    "sha256 differs from its manifest is never run",
                                    restart_helps=False)
    return ComponentHealth.ok("models", f"{', '.join(found)}: files and sha256 match "
                                        f"the manifests")


def store_health(captures: Path) -> ComponentHealth:
    """The capture store's database integrity and every capture's files (read-only)."""
    from station_app.store.capture_store import DATABASE_NAME, CaptureStore

    if not (Path(captures) / DATABASE_NAME).exists():
        return ComponentHealth.warn("store", f"no capture store yet at {captures}",
                                    "it is created when the station first starts")
    try:
        with CaptureStore(captures, read_only=True) as store:
            health = store.verify()
            count = len(store.list())
    except PermissionError as error:
        return ComponentHealth.warn("store", f"cannot read {captures}: {error.strerror}",
                                    "run as root or as a member of group inspection")
    except Exception as error:   # sqlite3.DatabaseError and the store's own errors
        return ComponentHealth.fail("store", f"cannot open {captures}: {error}",
                                    "check the disk; keep a copy of the folder before repairs",
                                    restart_helps=False)
    if health.integrity:
        return ComponentHealth.fail("store", f"database integrity: {'; '.join(health.integrity)}",
                                    "stop the station and restore the database from a copy",
                                    restart_helps=False)
    if health.missing_files:
        return ComponentHealth.fail("store", f"{len(health.missing_files)} capture file(s) "
                                    f"missing, e.g. {health.missing_files[0]}",
                                    "check the disk; the records are kept", restart_helps=False)
    if health.orphans:
        return ComponentHealth.warn("store", f"{count} captures intact; {len(health.orphans)} "
                                    "orphan file(s) left by an interrupted write",
                                    "harmless; the store removes them at start-up")
    return ComponentHealth.ok("store", f"{count} captures, database and files intact")


def service_health(unit: str = UNIT_NAME, *, systemctl: str | None = None,
                   run: Callable[..., subprocess.CompletedProcess] = subprocess.run
                   ) -> ComponentHealth:
    """The systemd unit's state, via ``systemctl show`` (``is-active`` and more)."""
    systemctl = systemctl or shutil.which("systemctl")
    if systemctl is None:
        return ComponentHealth.warn("service", "systemctl not found; the service state is "
                                    "unknown", "")
    try:
        done = run([systemctl, "show", "--no-pager", unit, "--property",
                    "LoadState,ActiveState,SubState,UnitFileState,StatusText,Result"],
                   capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        return ComponentHealth.warn("service", f"systemctl failed: {error}")
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no reason given"])[0]
        return ComponentHealth.warn("service", f"systemd not reachable ({reason})",
                                    "the service state is only known on a system booted "
                                    "with systemd")
    props = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    load, active = props.get("LoadState", ""), props.get("ActiveState", "")
    status_text = props.get("StatusText", "")
    detail = f"{active} ({props.get('SubState', '')})" + (f": {status_text}" if status_text
                                                          else "")
    if load == "not-found":
        return ComponentHealth.warn("service", f"{unit} is not installed",
                                    "sudo systemd/install.sh installs and enables it")
    if active == "active":
        return ComponentHealth.ok("service", f"{unit} {detail}")
    if active in ("activating", "reloading", "deactivating"):
        return ComponentHealth.warn("service", f"{unit} {detail}")
    if active == "failed" or props.get("UnitFileState") == "enabled":
        return ComponentHealth.fail("service", f"{unit} {detail}, result "
                                    f"{props.get('Result', '?')}",
                                    f"journalctl -u {unit.removesuffix('.service')} -b says "
                                    f"why; then systemctl restart {unit}",
                                    restart_helps=False)
    return ComponentHealth.warn("service", f"{unit} {detail} and not enabled",
                                f"systemctl enable --now {unit}")


def camera_offline_health(config: Any) -> ComponentHealth:
    """With the core not running: find the configured camera and open it briefly."""
    from drivers.camera import CameraError, enable_emulation
    from station_app.errors import StationError
    from station_app.hardware import open_camera

    settings = config.camera
    if settings.driver == "replay":
        source = settings.image_source
        if source is None or not Path(source).exists():
            return ComponentHealth.fail("camera", f"replay source {source} not found",
                                        "set camera.image_source to a folder of frames",
                                        restart_helps=False)
        return ComponentHealth.ok("camera", f"replay camera over {source}")
    if settings.driver == "emulated":
        enable_emulation(1)
    from drivers.camera import list_cameras
    try:
        cameras = list_cameras()
    except CameraError as error:
        return ComponentHealth.fail("camera", f"pylon cannot enumerate cameras: {error}",
                                    CAMERA_FIX)
    wanted = [c for c in cameras
              if (settings.driver == "emulated") == (c.device_class == "BaslerCamEmu")
              and (not settings.serial or c.serial == settings.serial)]
    if not wanted:
        seen = ", ".join(f"{c.model} {c.serial}" for c in cameras) or "none"
        which = f"serial {settings.serial}" if settings.serial else "any"
        return ComponentHealth.fail("camera", f"no {settings.driver} camera ({which}) found; "
                                    f"cameras seen: {seen}", CAMERA_FIX)
    if settings.driver == "emulated" and settings.image_source is None:
        return ComponentHealth.ok("camera", f"emulated camera {wanted[0].serial} present (no "
                                  "image source configured; `serve` and `demo` write frames)")
    try:
        camera = open_camera(settings)
    except StationError as error:
        return ComponentHealth.fail("camera", f"found but cannot open: {error}",
                                    "another program may hold it (a running core?); for a "
                                    "permission error check the udev rule "
                                    "99-inspection-station.rules")
    try:
        info = camera.info
    finally:
        camera.close()
    return ComponentHealth.ok("camera", f"{info.model} {info.serial} found and opened")


def lights_offline_health(config: Any) -> ComponentHealth:
    """With the core not running: open the controller's port and ask for its version."""
    settings = config.lighting
    if settings.driver == "simulated":
        return ComponentHealth.ok("lights", "simulated controller (no hardware; started with "
                                            "the station)")
    from drivers.lighting.gardasoft import GardasoftController

    port = settings.port
    if not os.path.exists(port):
        return ComponentHealth.fail("lights", f"serial port {port} does not exist",
                                    LIGHTS_FIX.format(port=port))
    controller = GardasoftController(port, channel_count=max(settings.channels),
                                     timeout_s=settings.timeout_s, baudrate=settings.baudrate)
    try:
        controller.open()
        version = controller.firmware_version()
    except Exception as error:
        return ComponentHealth.fail("lights", f"controller on {port} not answering: {error}",
                                    LIGHTS_FIX.format(port=port))
    finally:
        controller.close()
    return ComponentHealth.ok("lights", f"controller on {port} answers ({version.strip()})")
