"""install.sh / uninstall.sh into a temporary root (--root), with real file operations:
the shadow tools (groupadd, useradd, usermod, userdel --prefix) edit the temporary root's
/etc/passwd and /etc/group, nothing outside it changes. Those tools need root, so the
real runs are skipped for other users; --dry-run and the refusal run for everyone."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from station_app.config import load_config
from tests.systemd.units import SYSTEMD

INSTALL = SYSTEMD / "install.sh"
UNINSTALL = SYSTEMD / "uninstall.sh"
# The entry point installed beside the interpreter running the tests.
STATION_APP = Path(sys.executable).parent / "station-app"
is_root = os.geteuid() == 0
needs_root = pytest.mark.skipif(not is_root, reason="useradd/groupadd --prefix need root")
needs_shadow_tools = pytest.mark.skipif(
    shutil.which("useradd") is None, reason="useradd is not installed (apt package 'passwd')")


def script(path: Path, *arguments: str, user: int | None = None) -> subprocess.CompletedProcess:
    command = ["bash", str(path), *arguments]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def entries(root: Path, database: str) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in
            (root / "etc" / database).read_text().splitlines() if line}


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its type, mode, owner and content (or link target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            detail = os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            detail = path.read_bytes()
        else:
            detail = None
        found[str(path.relative_to(root))] = (stat.filemode(info.st_mode), info.st_uid,
                                              info.st_gid, detail)
    return found


def test_dry_run_changes_nothing_and_says_what_it_would_do(tmp_path):
    result = script(INSTALL, "--root", str(tmp_path), "--dry-run", "--station-app",
                    "/opt/inspection-station/venv/bin/station-app")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "would run: groupadd --prefix" in out and "--system inspection" in out
    assert "--shell /usr/sbin/nologin" in out and "--home-dir /var/lib/inspection-station" in out
    assert f"would write: {tmp_path}/opt/inspection-station/bin/station-app" in out
    assert "etc/systemd/system/inspection-station.service" in out
    assert "etc/udev/rules.d/99-inspection-station.rules" in out
    assert "multi-user.target.wants/inspection-station.service" in out
    assert list(tmp_path.iterdir()) == []
    result = script(UNINSTALL, "--root", str(tmp_path), "--dry-run", "--purge")
    assert result.returncode == 0 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", [INSTALL, UNINSTALL])
def test_refuses_without_root_with_a_clear_message(tmp_path, path):
    if is_root and shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv (util-linux) is missing to drop privileges")
    result = script(path, "--root", str(tmp_path), user=65534 if is_root else None)
    assert result.returncode == 1
    assert f"{path.name}: must run as root (sudo systemd/{path.name}" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_options_are_refused(tmp_path):
    result = script(INSTALL, "--root", str(tmp_path), "--bogus")
    assert result.returncode == 2 and "unknown option '--bogus'" in result.stderr
    result = script(INSTALL, "--dry-run", "--root", str(tmp_path), "--lights-serial", "a b")
    assert result.returncode == 2 and "adapter serial 'a b'" in result.stderr
    result = script(INSTALL, "--dry-run", "--root", str(tmp_path), "--station-app",
                    "/home/kiosk/station/.venv/bin/station-app")
    assert result.returncode == 1 and "ProtectHome=yes" in result.stderr


@needs_root
@needs_shadow_tools
def test_install_is_complete_and_idempotent_and_uninstall_keeps_the_data(tmp_path):
    root = tmp_path / "root"
    (root / "home/kiosk").mkdir(parents=True)
    (root / "etc").mkdir()
    for name in ("passwd", "group", "shadow", "gshadow"):
        (root / "etc" / name).touch()
    subprocess.run(["useradd", "--prefix", str(root), "--home-dir", "/home/kiosk",
                    "--no-create-home", "--shell", "/bin/bash", "kiosk"], check=True)
    kiosk = entries(root, "passwd")["kiosk"]

    first = script(INSTALL, "--root", str(root), "--station-app", str(STATION_APP),
                   "--ui-user", "kiosk", "--lights-serial", "FT4XK2QP")
    assert first.returncode == 0, first.stdout + first.stderr

    user = entries(root, "passwd")["inspection"]
    uid, gid = int(user[2]), int(user[3])
    assert user[5:] == ["/var/lib/inspection-station", "/usr/sbin/nologin"]
    assert uid < 1000                                            # a system account
    assert entries(root, "group")["inspection"][3] == "kiosk"   # may open the core socket

    state = root / "var/lib/inspection-station"
    assert stat.S_IMODE(state.stat().st_mode) == 0o750
    assert (state.stat().st_uid, state.stat().st_gid) == (uid, gid)
    config_file = root / "etc/inspection-station/config.yaml"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o640
    assert (config_file.stat().st_uid, config_file.stat().st_gid) == (0, gid)
    assert load_config(config_file).service.socket_path == Path(
        "/run/inspection-station/core.sock")

    wrapper = root / "opt/inspection-station/bin/station-app"
    assert os.access(wrapper, os.X_OK)
    assert wrapper.read_text().splitlines()[-1] == f'exec {STATION_APP} "$@"'
    version = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("station-app ")

    for installed, shipped in (
            ("etc/systemd/system/inspection-station.service", "inspection-station.service"),
            ("etc/systemd/user/inspection-station-ui.service", "inspection-station-ui.service"),
            ("etc/sysusers.d/inspection-station.conf", "sysusers.d/inspection-station.conf")):
        assert (root / installed).read_bytes() == (SYSTEMD / shipped).read_bytes(), installed
    rules = (root / "etc/udev/rules.d/99-inspection-station.rules").read_text()
    assert 'ATTRS{serial}=="FT4XK2QP", SYMLINK+="station-lights"' in rules
    assert 'ATTRS{serial}=="SCANNER_ADAPTER_SERIAL", SYMLINK+="station-scanner"' in rules
    assert "need the adapters' serial numbers" in first.stdout      # the scanner's is missing
    enabled = root / "etc/systemd/system/multi-user.target.wants/inspection-station.service"
    assert os.readlink(enabled) == "/etc/systemd/system/inspection-station.service"
    ui_link = root / "home/kiosk/.config/systemd/user/graphical-session.target.wants" \
        / "inspection-station-ui.service"
    assert os.readlink(ui_link) == "/etc/systemd/user/inspection-station-ui.service"
    assert ui_link.lstat().st_uid == int(kiosk[2])

    # Again: nothing changes, and the technician's edits survive.
    config_file.write_text(config_file.read_text().replace("station-01", "dock-7"))
    before = snapshot(root)
    second = script(INSTALL, "--root", str(root), "--station-app", str(STATION_APP),
                    "--ui-user", "kiosk")
    assert second.returncode == 0, second.stdout + second.stderr
    for said in ("group inspection exists", "user inspection exists",
                 "kiosk is in group inspection", "kept /etc/inspection-station/config.yaml",
                 "unchanged /opt/inspection-station/bin/station-app"):
        assert said in second.stdout, second.stdout
    after = snapshot(root)
    changed = {path for path in before.keys() | after.keys()
               if before.get(path) != after.get(path)}
    assert changed <= {"etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-"}, changed
    assert [line for line in (root / "etc/passwd").read_text().splitlines()
            if line.startswith("inspection:")] == [":".join(user)]

    # Rules edited by hand (an adapter matched by its USB port) are never overwritten.
    rules_file = root / "etc/udev/rules.d/99-inspection-station.rules"
    edited = rules.replace("# SUBSYSTEM==\"tty\", ATTRS{idVendor}==\"1a86\", KERNELS",
                           "SUBSYSTEM==\"tty\", ATTRS{idVendor}==\"1a86\", KERNELS")
    assert edited != rules
    rules_file.write_text(edited)
    third = script(INSTALL, "--root", str(root), "--station-app", str(STATION_APP),
                   "--scanner-serial", "B0042")
    assert third.returncode == 0 and "it was edited by hand" in third.stdout
    assert rules_file.read_text() == edited
    proposed = (rules_file.parent / "99-inspection-station.rules.dist").read_text()
    assert 'ATTRS{serial}=="FT4XK2QP"' in proposed and 'ATTRS{serial}=="B0042"' in proposed
    assert "need the adapters' serial numbers" in third.stdout   # the kept file lacks one

    # Uninstall keeps the captures and the configuration.
    (state / "captures").mkdir()
    (state / "captures/captures.sqlite3").write_bytes(b"precious")
    removed = script(UNINSTALL, "--root", str(root))
    assert removed.returncode == 0, removed.stdout + removed.stderr
    for gone in ("etc/systemd/system/inspection-station.service", str(enabled.relative_to(root)),
                 "etc/systemd/user/inspection-station-ui.service",
                 "etc/udev/rules.d/99-inspection-station.rules",
                 "etc/udev/rules.d/99-inspection-station.rules.dist",
                 "etc/sysusers.d/inspection-station.conf", "opt/inspection-station",
                 str(ui_link.relative_to(root))):
        assert not (root / gone).exists() and not (root / gone).is_symlink(), gone
    assert "inspection" not in entries(root, "passwd")
    assert "inspection" not in entries(root, "group")
    assert "kiosk" in entries(root, "passwd")
    assert (state / "captures/captures.sqlite3").read_bytes() == b"precious"
    assert "dock-7" in config_file.read_text()
    assert "kept /var/lib/inspection-station (remove it with --purge)" in removed.stdout

    again = script(UNINSTALL, "--root", str(root))
    assert again.returncode == 0 and "user inspection already absent" in again.stdout

    # A new install keeps the old configuration; --purge removes the data.
    reinstall = script(INSTALL, "--root", str(root), "--station-app", str(STATION_APP))
    assert reinstall.returncode == 0 and "dock-7" in config_file.read_text()
    purged = script(UNINSTALL, "--root", str(root), "--purge")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert not state.exists() and not config_file.parent.exists()


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck is not installed (apt package 'shellcheck')")
def test_scripts_pass_shellcheck():
    done = subprocess.run(["shellcheck", "-x", str(INSTALL), str(UNINSTALL),
                           str(SYSTEMD / "common.sh"),
                           str(SYSTEMD / "layout.sh")], capture_output=True, text=True,
                          timeout=60, cwd=SYSTEMD)
    assert done.returncode == 0, done.stdout
