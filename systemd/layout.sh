# shellcheck shell=bash disable=SC2034  # read by install.sh and uninstall.sh
# The installed layout, one place for install.sh and uninstall.sh (sourced, not run).
SERVICE_USER=inspection
UNIT=inspection-station.service
UI_UNIT=inspection-station-ui.service
STATE_DIR=/var/lib/inspection-station
CONFIG_DIR=/etc/inspection-station
APP_DIR=/opt/inspection-station
RULES=99-inspection-station.rules
