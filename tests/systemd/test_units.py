"""The units pass `systemd-analyze verify` with no output at all, and carry the hardening
and the notify/watchdog settings the station relies on.

`systemd-analyze verify` prints unknown keys and other mistakes as warnings and still
exits 0, so any line it prints about our units fails the test. The core unit is verified
inside a temporary root laid out as install.sh installs it (the ExecStart wrapper at
/opt/inspection-station/bin/station-app, the unit under /etc/systemd/system, this
machine's own systemd units for the targets); systemd-analyze checks ExecStart's binary
under that root. `--user` mode cannot take a root, so the user unit is verified as a copy
whose ExecStart points into the temporary root (the only line that differs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from station_app.config import load_config
from tests.systemd.units import CORE_UNIT, SYSTEMD, UI_UNIT, read_unit

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian/Ubuntu apt package "
                            "'systemd'); the units are not verified here")
WRAPPER = "/opt/inspection-station/bin/station-app"
HOST_UNITS = (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
HOST_USER_UNITS = (Path("/usr/lib/systemd/user"), Path("/lib/systemd/user"))


def unit_root(tmp_path: Path, unit: Path = CORE_UNIT) -> Path:
    """A root with ``unit`` installed as install.sh installs it, and the host's units."""
    root = tmp_path / "root"
    for host in HOST_UNITS:
        if host.is_dir() and not (root / "usr/lib/systemd/system").exists():
            shutil.copytree(host, root / "usr/lib/systemd/system", symlinks=True)
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    shutil.copy(unit, system / unit.name)
    wrapper = root / WRAPPER.lstrip("/")
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text("#!/bin/sh\nexec true\n")
    wrapper.chmod(0o755)
    return root


def verify(*arguments: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    done = subprocess.run([ANALYZE, *arguments], capture_output=True, text=True, timeout=60,
                          env=env)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return done.returncode, lines


def problems(lines: list[str], root: Path | None = None) -> list[str]:
    """Every line except those about the host's own units (which are not ours to fix)."""
    host = f"{root}/usr/lib/systemd/" if root is not None else "/usr/lib/systemd/"
    return [line for line in lines if not line.startswith(host) or "inspection" in line]


@needs_analyze
def test_core_unit_verifies_without_a_single_warning(tmp_path):
    root = unit_root(tmp_path)
    code, lines = verify("verify", f"--root={root}", "--man=no",
                         str(root / "etc/systemd/system" / CORE_UNIT.name))
    assert problems(lines, root) == [] and code == 0, lines


@needs_analyze
def test_the_check_catches_a_warning(tmp_path):
    """The checker can fail: an unknown key (a warning, exit code 0) and a missing binary."""
    broken = tmp_path / "inspection-station.service"
    broken.write_text(CORE_UNIT.read_text().replace("[Service]\n", "[Service]\nWatchdogSecs=5\n"))
    root = unit_root(tmp_path, broken)
    code, lines = verify("verify", f"--root={root}", "--man=no",
                         str(root / "etc/systemd/system" / broken.name))
    assert code == 0
    assert any("Unknown key 'WatchdogSecs'" in line for line in problems(lines, root)), lines
    (root / WRAPPER.lstrip("/")).unlink()
    code, lines = verify("verify", f"--root={root}", "--man=no",
                         str(root / "etc/systemd/system" / broken.name))
    assert code != 0 and any("is not executable" in line for line in lines), lines


@needs_analyze
def test_ui_user_unit_verifies_without_a_single_warning(tmp_path):
    if not any((folder / "graphical-session.target").exists() for folder in HOST_USER_UNITS):
        pytest.skip("this machine has no graphical-session.target user unit to verify against")
    root = unit_root(tmp_path)
    copy = tmp_path / "units" / UI_UNIT.name
    copy.parent.mkdir()
    text = UI_UNIT.read_text()
    assert text.count(WRAPPER) == 1
    copy.write_text(text.replace(WRAPPER, str(root / WRAPPER.lstrip("/"))))
    runtime = tmp_path / "xdg-runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path / "home")}
    code, lines = verify("--user", "verify", "--man=no", str(copy), env=env)
    assert problems(lines) == [] and code == 0, lines


def test_core_unit_notify_watchdog_and_restart():
    service = read_unit(CORE_UNIT)["Service"]
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert service["Restart"] == ["on-failure"]
    watchdog_s = int(service["WatchdogSec"][0].removesuffix("s"))
    config = load_config(SYSTEMD / "station-config.yaml")
    # The main loop pets every tick: at least twice per watchdog period.
    assert config.service.tick_s <= watchdog_s / 2
    assert service["ExecStart"] == [f"{WRAPPER} serve --config "
                                    "/etc/inspection-station/config.yaml"]
    stop_s = int(service["TimeoutStopSec"][0].removesuffix("s"))
    from station_app.service.core import STOP_WAIT_S
    assert stop_s > STOP_WAIT_S + 5          # room to close after the step in progress


def test_core_unit_hardening():
    service = read_unit(CORE_UNIT)["Service"]
    expected = {
        "User": ["inspection"], "Group": ["inspection"], "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"], "ProtectHome": ["yes"], "PrivateTmp": ["yes"],
        "DevicePolicy": ["closed"], "StateDirectory": ["inspection-station"],
        "RuntimeDirectory": ["inspection-station"], "IPAddressDeny": ["any"],
        "CapabilityBoundingSet": [""], "AmbientCapabilities": [""],
        "RestrictSUIDSGID": ["yes"], "SystemCallFilter": ["@system-service"],
        "ProtectKernelModules": ["yes"], "ProtectKernelTunables": ["yes"],
        "ProtectControlGroups": ["yes"], "RestrictNamespaces": ["yes"],
    }
    for key, values in expected.items():
        assert service.get(key) == values, key
    assert "/var/lib/inspection-station" in service["ReadWritePaths"]
    assert set(service["DeviceAllow"]) == {"char-usb_device rw", "char-ttyUSB rw",
                                           "char-ttyACM rw"}
    families = service["RestrictAddressFamilies"][0].split()
    assert "AF_INET" not in families and "AF_INET6" not in families    # no network listener
    assert "PrivateDevices" not in service    # it would hide the camera and the adapters


def test_installed_configuration_matches_the_units():
    """data.root is the StateDirectory; the socket is in the RuntimeDirectory, where the UI
    unit connects; the serial ports are the udev rules' stable names."""
    service = read_unit(CORE_UNIT)["Service"]
    config = load_config(SYSTEMD / "station-config.yaml")
    assert config.data.root == Path("/var/lib") / service["StateDirectory"][0]
    assert config.data.captures.is_relative_to(Path(service["ReadWritePaths"][0]))
    socket_path = config.service.socket_path
    assert socket_path.parent == Path("/run") / service["RuntimeDirectory"][0]
    ui_command = read_unit(UI_UNIT)["Service"]["ExecStart"][0].split()
    assert ui_command[1] == "ui"
    assert ui_command[ui_command.index("--socket") + 1] == str(socket_path)
    assert ui_command[ui_command.index("--config") + 1] == "/etc/inspection-station/config.yaml"
    rules = (SYSTEMD / "udev/99-inspection-station.rules").read_text()
    for port in (config.lighting.port, config.scanner.port):
        assert f'SYMLINK+="{port.removeprefix("/dev/")}"' in rules
    assert config.camera.driver == "basler"


def test_ui_unit_is_a_session_unit_the_core_does_not_depend_on():
    ui = read_unit(UI_UNIT)
    assert ui["Install"]["WantedBy"] == ["graphical-session.target"]
    assert ui["Service"]["Restart"] == ["always"]
    assert "User" not in ui["Service"]                     # runs as the kiosk user
    core_text = CORE_UNIT.read_text()
    assert "inspection-station-ui" not in core_text        # a UI restart cannot touch the core
    assert read_unit(CORE_UNIT)["Install"]["WantedBy"] == ["multi-user.target"]
