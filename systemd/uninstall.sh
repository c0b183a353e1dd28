#!/usr/bin/env bash
# Removes what install.sh installed: stops and disables the service, removes the units,
# the udev rules, the sysusers entry, /opt/inspection-station and the user "inspection".
# KEEPS the captures (/var/lib/inspection-station) and the configuration
# (/etc/inspection-station) unless --purge is given. Safe to run again.
#
#   sudo systemd/uninstall.sh [--purge] [--root DIR] [--dry-run]
#
# --root DIR works inside DIR as if it were / (nothing outside it changes); --dry-run
# prints what would be done. See systemd/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prog="uninstall.sh"

# The installed layout (SERVICE_USER, UNIT, STATE_DIR...) is in layout.sh.
# shellcheck source-path=SCRIPTDIR source=layout.sh
. "$here/layout.sh"

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

root=/
dry_run=0
purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="${2:?$prog: --root needs a directory}"; shift 2 ;;
    --root=*) root="${1#*=}"; shift ;;
    --dry-run|-n) dry_run=1; shift ;;
    --purge) purge=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$prog: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"
prepare_root "$prog"

# --- stop and disable ---------------------------------------------------------------------
if [ "$root" = / ] && systemd_running; then
  if systemctl cat "$UNIT" >/dev/null 2>&1; then
    run systemctl disable --now "$UNIT"
  else
    say "$UNIT is not installed"
  fi
else
  remove_path "$R/etc/systemd/system/multi-user.target.wants/$UNIT"
fi
# The UI unit was enabled per kiosk user; those users are the group's members.
if has_group "$SERVICE_USER"; then
  for member in $(group_members "$SERVICE_USER"); do
    disable_for_user "$member" "$UI_UNIT" graphical-session.target
  done
fi

# --- files ----------------------------------------------------------------------------------
remove_path "$R/etc/systemd/system/$UNIT" "$R/etc/systemd/user/$UI_UNIT" \
  "$R/etc/udev/rules.d/$RULES" "$R/etc/sysusers.d/inspection-station.conf" "$R$APP_DIR/bin"
if [ -e "$R/etc/udev/rules.d/$RULES.dist" ]; then
  remove_path "$R/etc/udev/rules.d/$RULES.dist"
fi
if [ "$dry_run" = 1 ]; then
  say "would remove $APP_DIR if nothing else is in it"
elif [ -d "$R$APP_DIR" ] && [ -z "$(ls -A "$R$APP_DIR")" ]; then
  run rmdir "$R$APP_DIR"
elif [ -d "$R$APP_DIR" ]; then
  say "kept $APP_DIR: it holds more than install.sh put there ($(find "$R$APP_DIR" -mindepth 1 -maxdepth 1 -printf '%f '))"
fi
if [ "$root" = / ]; then
  if systemd_running; then
    run systemctl daemon-reload
    run systemctl reset-failed "$UNIT" || true
  fi
  if command -v udevadm >/dev/null && [ -S /run/udev/control ]; then
    run udevadm control --reload
  fi
fi

# --- user and group -------------------------------------------------------------------------
if has_user "$SERVICE_USER"; then
  run userdel "${prefix_option[@]}" "$SERVICE_USER"
else
  say "user $SERVICE_USER already absent"
fi
# userdel keeps a primary group that still has members (the kiosk users).
if [ "$dry_run" = 0 ] && has_group "$SERVICE_USER"; then
  run groupdel "${prefix_option[@]}" "$SERVICE_USER"
elif [ "$dry_run" = 1 ]; then
  say "would remove group $SERVICE_USER if userdel leaves it"
fi

# --- data -----------------------------------------------------------------------------------
if [ "$purge" = 1 ]; then
  remove_path "$R$STATE_DIR" "$R$CONFIG_DIR"
else
  for kept in "$STATE_DIR" "$CONFIG_DIR"; do
    if [ -e "$R$kept" ]; then
      say "kept $kept (remove it with --purge)"
    fi
  done
  say "a later install.sh gives the data back to the new user: systemd re-owns $STATE_DIR at start"
fi
say "uninstalled."
