#!/usr/bin/env bash
# Installs the station core as the systemd service "inspection-station": the system user
# "inspection" (no login shell), /var/lib/inspection-station, /etc/inspection-station/
# config.yaml (kept when it exists), the units, the udev rules and the sysusers entry;
# then daemon-reload and enable. Safe to run again: every step checks first.
#
#   sudo systemd/install.sh [--station-app PATH] [--ui-user NAME] [--start]
#                           [--lights-serial SERIAL] [--scanner-serial SERIAL]
#                           [--root DIR] [--dry-run]
#
# --root DIR writes into DIR as if it were / (an image being built, or a test); nothing
# outside DIR changes and no daemon is told. --dry-run prints what would be done.
# See systemd/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository="$(dirname "$here")"
prog="install.sh"

# The installed layout (SERVICE_USER, UNIT, STATE_DIR...) is in layout.sh.
# shellcheck source-path=SCRIPTDIR source=layout.sh
. "$here/layout.sh"

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

root=/
dry_run=0
start=0
station_app=""
ui_user=""
lights_serial=""
scanner_serial=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="${2:?$prog: --root needs a directory}"; shift 2 ;;
    --root=*) root="${1#*=}"; shift ;;
    --dry-run|-n) dry_run=1; shift ;;
    --start) start=1; shift ;;
    --station-app) station_app="${2:?$prog: --station-app needs a path}"; shift 2 ;;
    --station-app=*) station_app="${1#*=}"; shift ;;
    --ui-user) ui_user="${2:?$prog: --ui-user needs a user name}"; shift 2 ;;
    --ui-user=*) ui_user="${1#*=}"; shift ;;
    --lights-serial) lights_serial="${2:?$prog: --lights-serial needs a serial}"; shift 2 ;;
    --lights-serial=*) lights_serial="${1#*=}"; shift ;;
    --scanner-serial) scanner_serial="${2:?$prog: --scanner-serial needs a serial}"; shift 2 ;;
    --scanner-serial=*) scanner_serial="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$prog: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

for serial in "$lights_serial" "$scanner_serial"; do
  if [ -n "$serial" ] && ! [[ "$serial" =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "$prog: adapter serial '$serial': expected letters, digits, '.', '_' or '-' (udevadm info shows it as ID_SERIAL_SHORT)" >&2
    exit 2
  fi
done

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"
prepare_root "$prog"

# --- what the service runs ----------------------------------------------------------------
if [ -z "$station_app" ]; then
  if [ -x "$repository/.venv/bin/station-app" ]; then
    station_app="$repository/.venv/bin/station-app"
  else
    station_app="$(command -v station-app || true)"
  fi
fi
[ -n "$station_app" ] || die "no station-app found: run scripts/setup.sh first, or give --station-app PATH"
case "$station_app" in
  /*) ;;
  *) station_app="$(cd "$(dirname "$station_app")" && pwd)/$(basename "$station_app")" ;;
esac
case "$station_app" in
  /home/*|/root/*|/run/user/*)
    die "$station_app is under a home folder, which the service cannot see (ProtectHome=yes): install the station under /opt, e.g. python3 -m venv /opt/inspection-station/venv && /opt/inspection-station/venv/bin/pip install $repository, then --station-app /opt/inspection-station/venv/bin/station-app" ;;
esac
if [ "$root" = / ] && [ ! -x "$station_app" ]; then
  die "$station_app is not an executable station-app"
fi
say "station-app: $station_app"

# --- user and group -----------------------------------------------------------------------
if has_group "$SERVICE_USER"; then
  say "group $SERVICE_USER exists"
else
  run groupadd "${prefix_option[@]}" --system "$SERVICE_USER"
fi
if has_user "$SERVICE_USER"; then
  say "user $SERVICE_USER exists"
else
  run useradd "${prefix_option[@]}" --system --gid "$SERVICE_USER" --home-dir "$STATE_DIR" \
    --no-create-home --shell /usr/sbin/nologin --comment "Damage-inspection station core" \
    "$SERVICE_USER"
fi
if [ -n "$ui_user" ]; then
  if ! has_user "$ui_user"; then
    die "--ui-user $ui_user: no such user${root_note}"
  fi
  if group_has_member "$SERVICE_USER" "$ui_user"; then
    say "$ui_user is in group $SERVICE_USER"
  else
    run usermod "${prefix_option[@]}" --append --groups "$SERVICE_USER" "$ui_user"
  fi
fi

# --- folders and configuration ------------------------------------------------------------
uid="$(user_id "$SERVICE_USER")"
gid="$(group_id "$SERVICE_USER")"
run install -d -m 0750 -o "$uid" -g "$gid" "$R$STATE_DIR"
run install -d -m 0755 "$R$CONFIG_DIR"
if [ -e "$R$CONFIG_DIR/config.yaml" ]; then
  say "kept $CONFIG_DIR/config.yaml"
else
  run install -m 0640 -o 0 -g "$gid" "$here/station-config.yaml" "$R$CONFIG_DIR/config.yaml"
fi
run install -d -m 0755 "$R$APP_DIR/bin"
wrapper="$(printf '#!/bin/sh\n# Written by systemd/install.sh: the station-app the units run.\nexec %s "$@"\n' "$station_app")"
write_file 0755 "$R$APP_DIR/bin/station-app" "$wrapper"

# --- units, sysusers entry, udev rules ----------------------------------------------------
run install -d -m 0755 "$R/etc/systemd/system" "$R/etc/systemd/user" "$R/etc/sysusers.d" \
  "$R/etc/udev/rules.d"
run install -m 0644 "$here/$UNIT" "$R/etc/systemd/system/$UNIT"
run install -m 0644 "$here/$UI_UNIT" "$R/etc/systemd/user/$UI_UNIT"
run install -m 0644 "$here/sysusers.d/inspection-station.conf" \
  "$R/etc/sysusers.d/inspection-station.conf"

# The adapters' serials: from the options, else from the installed rules (a re-install
# keeps them), else the shipped placeholders.
installed_rules="$R/etc/udev/rules.d/$RULES"
installed_serial() {   # stable name
  [ -f "$installed_rules" ] || return 0
  grep -v '^[[:space:]]*#' "$installed_rules" \
    | sed -n "s/.*ATTRS{serial}==\"\([^\"]*\)\", SYMLINK+=\"$1\".*/\1/p" | head -n 1 \
    | grep -v '_ADAPTER_SERIAL$' || true
}
render_rules() {   # lights-serial scanner-serial
  local text
  text="$(cat "$here/udev/$RULES")"
  [ -z "$1" ] || text="${text//==\"LIGHTS_ADAPTER_SERIAL\"/==\"$1\"}"
  [ -z "$2" ] || text="${text//==\"SCANNER_ADAPTER_SERIAL\"/==\"$2\"}"
  printf '%s' "$text"
}
old_lights="$(installed_serial station-lights)"
old_scanner="$(installed_serial station-scanner)"
rules_text="$(render_rules "${lights_serial:-$old_lights}" "${scanner_serial:-$old_scanner}")"
if [ -f "$installed_rules" ] \
    && [ "$(cat "$installed_rules")" != "$(render_rules "$old_lights" "$old_scanner")" ] \
    && [ "$(cat "$installed_rules")" != "$rules_text" ]; then
  # Edited by hand beyond the serials (e.g. matched by USB port): never overwrite that.
  say "kept /etc/udev/rules.d/$RULES: it was edited by hand; the new rules are in $RULES.dist beside it, merge them by hand"
  write_file 0644 "$installed_rules.dist" "$rules_text"
  rules_text="$(cat "$installed_rules")"
else
  write_file 0644 "$installed_rules" "$rules_text"
fi
if grep -v '^[[:space:]]*#' <<<"$rules_text" | grep -q '_ADAPTER_SERIAL"'; then
  say "note: /dev/station-lights and /dev/station-scanner need the adapters' serial numbers: run again with --lights-serial/--scanner-serial, or edit /etc/udev/rules.d/$RULES (it says how)"
fi

# --- enable -------------------------------------------------------------------------------
if [ "$root" != / ]; then
  enable_offline "$UNIT" multi-user.target
elif systemd_running; then
  run systemctl daemon-reload
  if [ "$start" = 1 ]; then
    run systemctl enable --now "$UNIT"
  else
    run systemctl enable "$UNIT"
  fi
else
  say "systemd is not running here: the unit is enabled for the next boot, not started"
  run systemctl enable "$UNIT"
fi
if [ -n "$ui_user" ]; then
  enable_for_user "$ui_user" "$UI_UNIT" graphical-session.target
fi
if [ "$root" = / ] && command -v udevadm >/dev/null && [ -S /run/udev/control ]; then
  run udevadm control --reload
  run udevadm trigger --subsystem-match=usb --subsystem-match=tty
fi

say "installed. Next: check $CONFIG_DIR/config.yaml, then"
say "  station-app status --config $CONFIG_DIR/config.yaml"
[ "$start" = 1 ] || say "  systemctl start $UNIT"
say "  journalctl -u ${UNIT%.service} -f"
