"""``station-app profile list|show|rollback|set-pin``: the station's calibration profiles.

Profiles are versioned (``calibration.profile_dir``): ``list`` shows every version with
who saved it, when and why; ``show`` prints one; ``rollback`` makes an earlier version
current by saving a copy of it as a new version; ``set-pin`` sets or changes the
technician PIN that guards the calibration wizard and rollback (a rollback also repairs
a damaged ``current`` pointer: any save rewrites it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from station_app.commands import add_common_options
from station_app.commands.pin_prompt import PinReader, require_technician_pin


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile", help="list, show or roll back calibration profiles; set the technician PIN",
        description="The station's calibration profiles: every calibration or threshold "
                    "change is a new version; the station uses the current one and records "
                    "its version on every capture.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="every version: who, when, why; * = current")
    show = actions.add_parser("show", help="print a version (default: the current one)")
    show.add_argument("version", nargs="?", help="e.g. 3 or v0003")
    rollback = actions.add_parser(
        "rollback", help="make an earlier version current (saved as a new version)",
        description="Save a copy of VERSION as a new version and make it current; the "
                    "versions in between stay in the history. Asks for the technician PIN "
                    "(refused until one is set with `station-app profile set-pin`). Also "
                    "repairs a damaged current pointer.")
    rollback.add_argument("version", help="the version to go back to, e.g. 3 or v0003")
    rollback.add_argument("--author", help="who rolls back (default: the login name)")
    rollback.add_argument("--note", default="", help="why, recorded in the new version")
    set_pin = actions.add_parser(
        "set-pin", help="set or change the technician PIN",
        description="Set the technician PIN (4 to 12 digits) that opens the calibration "
                    "wizard; changing it asks for the current one first. The PIN is stored "
                    "as a salted scrypt hash in calibration.pin_file.")
    for action in (rollback, set_pin):
        action.add_argument("--pin-stdin", action="store_true",
                            help="read PINs from standard input, one per line (for scripts): "
                                 "the current PIN first when one is set, then the new one")
    for action in (listing, show, rollback, set_pin):
        action.add_argument("--profile-dir", type=Path,
                            help="profile store (default: calibration.profile_dir)")
        add_common_options(action)
        action.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from calibration.pin import PinError, PinStore
    from calibration.profile import ProfileError, ProfileStore
    from station_app.config import load_config
    from station_app.errors import StationError

    config = load_config(args.config)
    store = ProfileStore(args.profile_dir or config.calibration.profile_dir)
    pins = PinStore(config.calibration.pin_file, config.calibration.pin_max_failures,
                    config.calibration.pin_lockout_minutes)
    try:
        if args.action == "list":
            return _list(store)
        if args.action == "show":
            return _show(store, args.version)
        if args.action == "rollback":
            return _rollback(store, pins, args)
        return _set_pin(pins, args)
    except (ProfileError, PinError) as error:
        raise StationError(str(error)) from error


def _list(store) -> int:
    versions = store.versions()
    if not versions:
        print(f"no calibration profiles in {store.root} yet: calibrate with "
              f"`station-app calibrate`")
        return 0
    rows = [("version", "saved", "by", "from", "note")]
    for version in versions:
        based_on = f"v{version.based_on:04d}" if version.based_on else "-"
        note = version.note if not version.problem else f"UNREADABLE: {version.problem}"
        rows.append((version.label + (" *" if version.current else ""), version.created or "?",
                     version.author or "?", based_on, note.replace("\n", " ")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    print(f"* = current; profiles in {store.root}")
    problem = _pointer_problem(store)
    if problem:
        print(f"no version is current: {problem}")
    return 0


def _pointer_problem(store) -> str:
    """Why the ``current`` pointer cannot be used ("" when it can)."""
    from calibration.profile import ProfileError

    try:
        store.current_version()
    except ProfileError as error:
        return str(error)
    return ""


def _show(store, version: str | None) -> int:
    from station_app.errors import StationError

    if version is None:
        number = store.current_version()
        if number is None:
            raise StationError(f"no calibration profile in {store.root} yet")
    else:
        number = version
    profile = store.get(number)   # validated before it is shown
    path = store.path(profile.version)
    problem = _pointer_problem(store)   # a given version shows even with a damaged pointer
    if problem:
        marker = f" (no version is current: {problem})"
    else:
        marker = " (current)" if store.current_version() == profile.version else ""
    print(f"# {path}{marker}")
    sys.stdout.write(path.read_text(encoding="utf-8"))
    return 0


def _rollback(store, pins, args: argparse.Namespace) -> int:
    import getpass

    # A technician's action, as calibrate is; an empty store (first start) needs no PIN.
    if pins.is_set() or store.latest_version() is not None:
        require_technician_pin(pins, args.pin_stdin, "rollback")
    saved = store.rollback(args.version, args.author or getpass.getuser(), args.note)
    print(f"rolled back: {saved.label} is a copy of v{int(saved.based_on):04d} and is now "
          f"current (note: {saved.note})")
    return 0


def _set_pin(pins, args: argparse.Namespace) -> int:
    from calibration.pin import check_new_pin
    from station_app.errors import StationError

    read = PinReader(args.pin_stdin)
    current = None
    if pins.is_set():
        current = read("Current technician PIN: ")
        pins.verify(current)   # before asking for the new one; counts towards the lockout
    new = check_new_pin(read("New technician PIN (4 to 12 digits): "))
    if not args.pin_stdin and read("Repeat the new PIN: ") != new:
        raise StationError("the two new PINs differ; nothing changed")
    pins.set_pin(new, current)
    print(f"technician PIN {'changed' if current is not None else 'set'} ({pins.path})")
    return 0
