# shellcheck shell=bash disable=SC2154,SC2034  # variables shared with the sourcing script
# Helpers shared by install.sh and uninstall.sh (sourced, not run).
# They expect: prog, root, dry_run. They set: R ("" for the live system, else the root
# folder prefixed to every path), prefix_option (--prefix ROOT for the shadow tools),
# root_note (for messages).

die() {
  echo "$prog: $*" >&2
  exit 1
}

say() {
  echo "$prog: $*"
}

# Run a command, or only print it with --dry-run.
run() {
  if [ "$dry_run" = 1 ]; then
    printf 'would run:'
  else
    printf '+'
  fi
  printf ' %q' "$@"
  printf '\n'
  if [ "$dry_run" = 0 ]; then
    "$@"
  fi
}

prepare_root() {
  local script="$1"
  if [ "$dry_run" = 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "must run as root (sudo systemd/$script ...): it manages the system user '$SERVICE_USER' and writes under /etc, /opt and /var/lib; --dry-run shows what it would do without root"
  fi
  case "$root" in
    /*) ;;
    *) root="$(pwd)/$root" ;;
  esac
  while [ "$root" != / ] && [ "${root%/}" != "$root" ]; do root="${root%/}"; done
  if [ "$root" = / ]; then
    R=""
    prefix_option=()
    root_note=""
    return
  fi
  [ -d "$root" ] || die "--root $root: no such folder"
  R="$root"
  prefix_option=(--prefix "$root")
  root_note=" (in $root/etc/passwd)"
  if [ "$dry_run" = 0 ]; then
    mkdir -p "$R/etc"
    local file
    for file in passwd group shadow gshadow; do
      [ -e "$R/etc/$file" ] || : >"$R/etc/$file"
    done
    chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
  fi
}

# Account look-ups: NSS on the live system, the files under --root otherwise.
_entry() {   # database name
  if [ -z "$R" ]; then
    getent "$1" "$2" || true
  elif [ -e "$R/etc/$1" ]; then
    awk -F: -v name="$2" '$1 == name' "$R/etc/$1"
  fi
}
has_user() { [ -n "$(_entry passwd "$1")" ]; }
has_group() { [ -n "$(_entry group "$1")" ]; }
user_home() { _entry passwd "$1" | cut -d: -f6; }
group_has_member() { _entry group "$1" | cut -d: -f4 | tr ',' '\n' | grep -qx "$2"; }
group_members() { _entry group "$1" | cut -d: -f4 | tr ',' ' '; }
_id_of() {   # database name field
  local value
  value="$(_entry "$1" "$2" | cut -d: -f"$3")"
  if [ -n "$value" ]; then
    echo "$value"
  elif [ "$dry_run" = 1 ]; then
    echo "$2"   # not created yet: the dry run prints the name
  else
    die "$2 not found in the $1 database${root_note}"
  fi
}
user_id() { _id_of passwd "$1" 3; }
group_id() { _id_of group "$1" 3; }

systemd_running() { [ -d /run/systemd/system ]; }

# Write CONTENT (plus a final newline) to PATH atomically, unless it is already there.
write_file() {   # mode path content
  local mode="$1" path="$2" content="$3" temporary
  if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ] \
      && [ "$(stat -c %a "$path")" = "${mode#0}" ]; then
    say "unchanged ${path#"$R"}"
    return
  fi
  if [ "$dry_run" = 1 ]; then
    echo "would write: $path (mode $mode)"
    return
  fi
  echo "+ write $path (mode $mode)"
  temporary="$(mktemp "$path.XXXXXX")"
  printf '%s\n' "$content" >"$temporary"
  chmod "$mode" "$temporary"
  mv -f "$temporary" "$path"
}

# A symbolic link LINK -> TARGET, as `systemctl enable` makes them.
make_link() {   # target link
  if [ -L "$2" ] && [ "$(readlink "$2")" = "$1" ]; then
    say "unchanged ${2#"$R"}"
    return
  fi
  run install -d -m 0755 "$(dirname "$2")"
  run ln -sfn "$1" "$2"
}

remove_path() {   # path...
  local path
  for path in "$@"; do
    if [ -e "$path" ] || [ -L "$path" ]; then
      run rm -rf -- "$path"
    else
      say "already absent: ${path#"$R"}"
    fi
  done
}

# Enable a system unit under --root without a running systemd: the WantedBy= link.
enable_offline() {   # unit target
  make_link "/etc/systemd/system/$1" "$R/etc/systemd/system/$2.wants/$1"
}

# Enable a user unit for one user: the link `systemctl --user enable` makes in their home.
enable_for_user() {   # user unit target
  local home uid gid directory
  home="$(user_home "$1")"
  [ -n "$home" ] || die "no home folder for user $1"
  uid="$(user_id "$1")"
  gid="$(_entry passwd "$1" | cut -d: -f4)"
  for directory in .config .config/systemd .config/systemd/user \
      ".config/systemd/user/$3.wants"; do
    if [ ! -d "$R$home/$directory" ]; then
      run install -d -m 0755 -o "$uid" -g "${gid:-$uid}" "$R$home/$directory"
    fi
  done
  make_link "/etc/systemd/user/$2" "$R$home/.config/systemd/user/$3.wants/$2"
  if [ "$dry_run" = 0 ]; then
    chown -h "$uid:${gid:-$uid}" "$R$home/.config/systemd/user/$3.wants/$2"
  fi
}

disable_for_user() {   # user unit target
  local home
  home="$(user_home "$1")"
  [ -n "$home" ] || return 0
  remove_path "$R$home/.config/systemd/user/$3.wants/$2"
}
