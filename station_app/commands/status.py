"""``station-app status``: what is healthy at this station and what is not, with the fix."""

from __future__ import annotations

import argparse
import json
import os
import socket
from pathlib import Path
from typing import Any

from station_app.commands import add_common_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status", help="health of camera, lights, models, disk, capture store and service",
        description="Check the station: configuration, the systemd service, the running core "
                    "(asked over its socket: camera, lights, models, workflow and disk as the "
                    "core sees them), model files against their manifests' sha256, free disk "
                    "space against data.min_free_gb, and the capture store's integrity. When "
                    "the core is not running, the camera and the lighting controller are "
                    "opened briefly here instead. One line per part: OK, WARN or FAIL and the "
                    "fix. Exit code 0 when nothing FAILs, 1 otherwise.")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--unit", default="inspection-station.service",
                        help="systemd unit of the core (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S",
                        help="seconds to wait for the running core's answer (default 5)")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def core_listening(socket_path: Path, timeout_s: float = 1.0) -> bool:
    """True when a process accepts connections on the core's socket."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout_s)
    try:
        probe.connect(os.fspath(socket_path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def collect(config_path: str | None, unit: str, timeout_s: float) -> tuple[Any, dict | None]:
    """The health report and, when the core answered, its status dictionary."""
    from station_app.config import ConfigError, load_config
    from station_app.service.health import (ComponentHealth, HealthReport, Level,
                                            camera_offline_health, config_health, disk_health,
                                            lights_offline_health, model_files_health,
                                            run_checks, service_health, store_health)

    try:
        config = load_config(config_path)
    except ConfigError as error:
        lines = str(error).splitlines()
        where = config_path or os.environ.get("STATION_CONFIG") or "the packaged default"
        return HealthReport((ComponentHealth.fail(
            "config", " | ".join(lines[:4]) + (" ..." if len(lines) > 4 else ""),
            f"fix {where} as the lines say; nothing else was checked",
            restart_helps=False),)), None

    rows: list[Any] = [config_health(config), service_health(unit)]
    service = rows[1]
    socket_path = Path(config.service.socket_path)
    core_status = None
    if core_listening(socket_path):
        from station_app.errors import StationError
        from station_app.service.client import query_status
        try:
            core_status = query_status(socket_path, timeout_s=timeout_s)
        except StationError as error:
            rows.append(ComponentHealth.fail("core", f"listening on {socket_path} but not "
                                             f"answering: {error}",
                                             f"systemctl restart {unit}"))
    if core_status is not None:
        rows.append(_core_row(core_status, socket_path))
        health = HealthReport.from_dict(core_status.get("health", {}))
        rows.extend(c for c in health.components if c.component != "models")
        models = health.get("models")
        if models is not None:
            rows.append(models)
        checks: dict[str, Any] = {}
    else:
        if not any(r.component == "core" for r in rows):
            if service.level is Level.OK:
                rows.append(ComponentHealth.fail("core", f"service active but nothing listens "
                                                 f"on {socket_path}",
                                                 "check service.socket_path in the station "
                                                 "configuration, then systemctl restart "
                                                 f"{unit}"))
            else:
                rows.append(ComponentHealth.warn("core", f"not running (nothing listens on "
                                                 f"{socket_path}); devices checked directly",
                                                 f"systemctl start {unit}, or station-app "
                                                 f"serve"))
        checks = {"camera": lambda: camera_offline_health(config),
                  "lights": lambda: lights_offline_health(config),
                  "disk": lambda: disk_health(config.data.captures, config.data.min_free_gb)}
    checks["model files"] = lambda: _renamed(model_files_health(config.models), "model files")
    checks["store"] = lambda: store_health(config.data.captures)
    rows.extend(run_checks(checks).components)
    return HealthReport(tuple(rows)), core_status


def _renamed(component: Any, name: str) -> Any:
    from dataclasses import replace
    return replace(component, component=name)


def _core_row(status: dict, socket_path: Path) -> Any:
    from station_app.service.health import ComponentHealth

    watchdog = status.get("watchdog") or {}
    detail = (f"pid {status.get('pid', '?')}, up {status.get('uptime_s', '?')} s, "
              f"{status.get('clients', 0)} client(s), state {status.get('workflow_state', '?')}"
              f", on {socket_path}")
    if not status.get("ready"):
        return ComponentHealth.warn("core", f"starting, not ready yet ({detail})")
    if watchdog.get("fed") is False:
        return ComponentHealth.fail("core", f"watchdog no longer fed: {watchdog.get('status')} "
                                    f"({detail})", "systemd restarts the core; see the parts "
                                    "below")
    return ComponentHealth.ok("core", f"ready: {detail}")


def run(args: argparse.Namespace) -> int:
    report, core_status = collect(args.config, args.unit, args.timeout)
    if args.json:
        print(json.dumps({**report.to_dict(), "core": core_status}, indent=2, default=str))
    else:
        print(report.table())
    return report.exit_code
