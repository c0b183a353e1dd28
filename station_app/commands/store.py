"""``station-app store summary|list|show|export|gallery|remove-reference|check``: the
capture store from the command line.

Every action but ``remove-reference`` opens the store read-only (SQLite ``mode=ro``), so
it is safe beside a running station: it sees every committed capture and never blocks or
changes it. ``remove-reference`` is a technician's action behind the technician PIN; the
store records who removed the reference and why.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from station_app.commands import add_common_options
from station_app.errors import StationError

if TYPE_CHECKING:
    from station_app.store import CaptureRecord, CaptureStore

LIST_HINT = "ids are listed by `station-app store list`"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "store", help="inspect the capture store, its reference galleries; export for retraining",
        description="The station's capture store (data.captures): captures with their model "
                    "outputs and confirmations, the per-item reference galleries, export of "
                    "confirmed captures in the Kaputt layout, and a health check. Everything "
                    "except remove-reference only reads, safely beside a running station.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    summary = actions.add_parser(
        "summary", help="counts, verdicts, items, gallery, date range, disk use",
        description="Captures (confirmed / unconfirmed), verdicts, confirmations, items, "
                    "reference gallery, date range, disk use and free space against "
                    "data.min_free_gb.")
    summary.set_defaults(handler=run_summary)

    listing = actions.add_parser(
        "list", help="one line per capture, newest first",
        description="One line per capture, newest first: id, time (UTC), item, verdict, "
                    "fused score, confirmation.")
    listing.add_argument("--item", metavar="CODE", help="only this item identifier")
    listing.add_argument("--unconfirmed", action="store_true",
                         help="only captures nobody has confirmed yet")
    listing.add_argument("--since", metavar="DATE", type=_time_argument,
                         help="captured at or after DATE (YYYY-MM-DD or ISO time; UTC "
                              "unless the time has a zone)")
    listing.add_argument("--limit", metavar="N", type=_positive, help="at most N captures")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser(
        "show", help="the whole record of one capture, with its file paths",
        description="Every field of one capture record (DESIGN.md §3): times, station, "
                    "operator, item, camera and lighting, profile and model versions, model "
                    "outputs, latencies, verdict, confirmation, gallery membership and the "
                    "image files.")
    show.add_argument("capture_id", metavar="CAPTURE_ID")
    show.set_defaults(handler=run_show)

    export = actions.add_parser(
        "export", help="confirmed captures as a Kaputt-layout data set, then check it",
        description="Write the confirmed captures as a data set in the Kaputt layout "
                    "(query-/reference-{split}.parquet, images, masks) for retraining. Ground "
                    "truth is the associates' confirmation; the station's verdict and fused "
                    "score ride along as extra columns. Queries are confirmed captures that "
                    "are not current references; references are the items' galleries. Items "
                    "go to train/validation/test by a hash of the item identifier, so an item "
                    "stays in its split in every later export. The result is then checked as "
                    "`station-app dataset check` does; exit 1 if the check finds an error.")
    export.add_argument("--out", metavar="DIR", type=Path, required=True,
                        help="data-set folder (must be empty or absent unless --force)")
    export.add_argument("--since", metavar="DATE", type=_time_argument,
                        help="only captures taken at or after DATE (YYYY-MM-DD or ISO time)")
    export.add_argument("--until", metavar="DATE", type=_time_argument,
                        help="only captures taken before DATE (YYYY-MM-DD or ISO time)")
    export.add_argument("--force", action="store_true",
                        help="export into a non-empty folder: split files are replaced, "
                             "images already copied there are reused")
    export.set_defaults(handler=run_export)

    gallery = actions.add_parser(
        "gallery", help="an item's reference images: capture, when, confirmed by",
        description="The item's current references (newest first, at most data.gallery_size): "
                    "confirmed-OK captures the station compares new captures of the item with.")
    gallery.add_argument("item", metavar="ITEM", help="item identifier (barcode)")
    gallery.set_defaults(handler=run_gallery)

    remove = actions.add_parser(
        "remove-reference", help="take a bad reference out of its item's gallery (technician)",
        description="Take a capture out of its item's reference gallery, e.g. a reference "
                    "with glare or the wrong item. Asks for the technician PIN (refused until "
                    "one is set with `station-app profile set-pin`). Who and why are recorded; "
                    "the capture stays out even if it is confirmed again. The capture itself "
                    "is kept.")
    remove.add_argument("capture_id", metavar="CAPTURE_ID")
    remove.add_argument("--reason", metavar="TEXT", required=True,
                        help="why (recorded with the removal)")
    remove.add_argument("--by", metavar="NAME", help="who removes it (default: the login name)")
    remove.add_argument("--pin-stdin", action="store_true",
                        help="read the PIN from standard input (for scripts)")
    remove.set_defaults(handler=run_remove_reference)

    check = actions.add_parser(
        "check", help="database integrity, missing image files, orphan folders; exit 1 if bad",
        description="PRAGMA integrity_check and foreign keys, every capture's image files "
                    "present, and orphans (files or folders without a capture row, left by a "
                    "crash mid-capture; reported, never counted as captures, removed when the "
                    "station starts). Exit 1 on a database problem or a missing file.")
    check.set_defaults(handler=run_check)

    for action in (summary, listing, show, export, gallery, remove, check):
        action.add_argument("--store", metavar="DIR", type=Path,
                            help="capture store folder (default: data.captures of the config)")
        add_common_options(action)


# ---------------------------------------------------------------------- arguments


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _time_argument(text: str) -> str:
    """A date or ISO time as the store writes times (UTC, so text order is time order)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time; use YYYY-MM-DD or e.g. 2025-03-01T08:00:00+00:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


# ---------------------------------------------------------------------- opening


def _open(args: argparse.Namespace, read_only: bool = True) -> CaptureStore:
    from station_app.config import load_config
    from station_app.store import CaptureStore
    from station_app.store.capture_store import DATABASE_NAME

    data = load_config(args.config).data
    root = Path(args.store or data.captures).expanduser()
    if not (root / DATABASE_NAME).is_file():
        where = "--store" if args.store else "data.captures of the config"
        raise StationError(f"no capture store at {root} ({DATABASE_NAME} not found): check "
                           f"{where}, or give --store DIR; the station creates the store "
                           "with its first capture")
    return CaptureStore(root, data.min_free_gb, data.gallery_size, read_only=read_only)


def _record_or_fail(store: CaptureStore, capture_id: str) -> CaptureRecord:
    record = store.get(capture_id)
    if record is None:
        raise StationError(f"no capture {capture_id!r} in {store.root}: {LIST_HINT}")
    return record


# ---------------------------------------------------------------------- formatting


def _time(text: str | None) -> str:
    """UTC time to the second, 'Z' for the zone: compact and unambiguous."""
    if not text:
        return "-"
    moment = datetime.fromisoformat(text).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _score(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


def _confirmation(record: CaptureRecord) -> str:
    confirmation = record.confirmation
    if confirmation is None:
        return "unconfirmed"
    text = confirmation.severity
    if confirmation.defect_types:
        text += " (" + ", ".join(confirmation.defect_types) + ")"
    text += f" by {confirmation.confirmed_by}"
    return text + ("" if confirmation.agrees else ", override")


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def _counts(counter: Counter[str], order: tuple[str, ...] = ()) -> str:
    keys = [key for key in order if counter[key]] + sorted(set(counter) - set(order))
    return ", ".join(f"{key} {counter[key]}" for key in keys) or "-"


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


def _fields(pairs: list[tuple[str, Any]]) -> None:
    width = max(len(label) for label, _ in pairs)
    for label, value in pairs:
        print(f"{label:<{width}}  {value}")


def _disk_bytes(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:   # removed by the station meanwhile
                pass
    return total


# ---------------------------------------------------------------------- actions


def run_summary(args: argparse.Namespace) -> int:
    from station_app.store.disk import GB

    with _open(args) as store:
        records = store.list()
        confirmed = [record for record in records if record.confirmation is not None]
        verdicts = Counter(record.outputs.verdict or "no verdict" for record in records)
        severities = Counter(record.confirmation.severity for record in confirmed)
        overrides = sum(not record.confirmation.agrees for record in confirmed)
        gallery_items = store.gallery.items()
        references = sum(len(store.gallery.references(item)) for item in gallery_items)
        space = store.space()
        used = _disk_bytes(store.root)
        pairs: list[tuple[str, Any]] = [
            ("capture store", store.root),
            ("captures", f"{len(records)} ({len(confirmed)} confirmed, "
                         f"{len(records) - len(confirmed)} unconfirmed)"),
            ("verdicts", _counts(verdicts, ("OK", "REVIEW", "DAMAGED"))),
            ("confirmed as", _counts(severities, ("none", "minor", "major"))
             + (f"; {overrides} override{'s' if overrides != 1 else ''}" if confirmed else "")),
            ("items", len({record.item_identifier for record in records})),
            ("gallery", f"{references} reference{'s' if references != 1 else ''} of "
                        f"{len(gallery_items)} item{'s' if len(gallery_items) != 1 else ''} "
                        f"(up to {store.gallery.size} per item, data.gallery_size)"),
            ("captured", f"{_time(records[0].captured_at)} .. {_time(records[-1].captured_at)}"
             if records else "no captures yet"),
            ("disk", f"{_size(used)} used by the store; {space.free_bytes / GB:.1f} GB free, "
                     f"reserve {space.reserve_bytes / GB:.1f} GB (data.min_free_gb): "
                     + ("OK" if space.ok else "BELOW RESERVE, capturing is stopped")),
        ]
    _fields(pairs)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from station_app.store import CaptureFilter

    with _open(args) as store:
        records = store.list(CaptureFilter(
            item_identifier=args.item, confirmed=False if args.unconfirmed else None,
            since=args.since, newest_first=True, limit=args.limit))
        total = store.count()
    if not records:
        print(f"no captures in {store.root} yet" if total == 0
              else f"no captures match (of {total} in the store)")
        return 0
    rows = [("capture", "captured", "item", "verdict", "fused", "confirmation")]
    rows += [(record.capture_id, _time(record.captured_at), record.item_identifier,
              record.outputs.verdict or "-", _score(record.outputs.fused), _confirmation(record))
             for record in records]
    _table(rows)
    return 0


def run_show(args: argparse.Namespace) -> int:
    from station_app.store import IMAGE_KINDS

    with _open(args) as store:
        record = _record_or_fail(store, args.capture_id)
        is_reference = store.gallery.is_reference(record.capture_id)
        paths = {kind: store.path(record, kind) for kind in IMAGE_KINDS if kind in record.files}
    outputs = record.outputs
    confirmation = record.confirmation
    camera = ", ".join(f"{key} {value}" for key, value in sorted(record.camera_settings.items()))
    latencies = ", ".join(f"{stage} {ms:g}" for stage, ms in record.latencies_ms.items())
    if record.latencies_ms:
        latencies += f" (total {sum(record.latencies_ms.values()):g})"
    pairs: list[tuple[str, Any]] = [
        ("capture", record.capture_id),
        ("captured at", record.captured_at),
        ("station", record.station_id),
        ("operator", record.operator),
        ("item", f"{record.item_identifier} ({record.item_material})"),
        ("camera", camera or "-"),
        ("lighting level", "-" if record.lighting_level is None else f"{record.lighting_level:g} %"),
        ("profile version", record.calibration_profile_version or "-"),
        ("model versions", ", ".join(f"{name} {version}" for name, version
                                     in sorted(record.model_versions.items())) or "-"),
        ("p_any", _score(outputs.p_any)),
        ("p_major", _score(outputs.p_major)),
        ("p_types", ", ".join(f"{name} {_score(p)}" for name, p in outputs.p_types.items()) or "-"),
        ("item crop p_any", "- (no item scorer)" if outputs.item_p_any is None
         else f"{_score(outputs.item_p_any)} (p_major {_score(outputs.item_p_major)})"),
        ("reference score", _score(outputs.reference_score)
         if outputs.reference_score is not None else "- (no references)"),
        ("fused", _score(outputs.fused)),
        ("verdict", (outputs.verdict or "- (no thresholds)")
         + (f" ({', '.join(outputs.likely_types)})" if outputs.likely_types else "")),
        ("verdict reason", outputs.verdict_reason or "-"),
        ("latencies ms", latencies or "-"),
        ("confirmation", "unconfirmed" if confirmation is None else
         f"{confirmation.severity} by {confirmation.confirmed_by} at {confirmation.confirmed_at}, "
         + ("agrees with the verdict" if confirmation.agrees else "override")),
        ("defect types", ", ".join(confirmation.defect_types) or "-" if confirmation else "-"),
        ("gallery", f"reference of {record.item_identifier}" if is_reference else "not a reference"),
    ]
    pairs += [(f"file {kind}", str(path) + ("" if path.is_file() else "  (MISSING)"))
              for kind, path in paths.items()]
    _fields(pairs)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from engines.dataset import available_splits
    from station_app.commands.dataset import run_check as check_dataset_command
    from station_app.progress import ProgressBar
    from station_app.store import CaptureFilter, export_confirmed

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise StationError(f"--out {out} is a file: give a folder for the data set")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise StationError(f"--out {out} is not empty: give an empty or new folder, or --force "
                           "to update the export there (split files replaced, images reused)")
    since = (f" since {args.since}" if args.since else "") + \
        (f" until {args.until}" if args.until else "")
    with _open(args) as store:
        if store.count() == 0:
            raise StationError(f"the capture store {store.root} is empty: nothing to export; "
                               "the station stores captures as associates inspect items")
        confirmed = len(store.list(CaptureFilter(confirmed=True, since=args.since,
                                                 until=args.until)))
        if confirmed == 0:
            raise StationError(f"no confirmed captures{since} in {store.root}: associates "
                               "confirm captures at the station (`station-app store list "
                               "--unconfirmed` shows those waiting)")
        before = set(available_splits(out)) if out.is_dir() else set()
        print(f"exporting {confirmed} confirmed capture{'s' if confirmed != 1 else ''}{since} "
              f"from {store.root} to {out}", flush=True)
        summary = export_confirmed(store, out, since=args.since, until=args.until,
                                   progress=ProgressBar("export"))
    if summary.total_queries == 0:
        raise StationError(f"all {confirmed} confirmed captures{since} are gallery references, "
                           "so there is no query to export; export again after more "
                           "captures are confirmed")
    for split in summary.queries:
        print(f"{split}: {summary.queries[split]} queries, "
              f"{summary.references[split]} references")
    stale = sorted(before - set(summary.queries))
    if stale:
        print(f"note: split{'s' if len(stale) > 1 else ''} {', '.join(stale)} in {out} "
              "are from an earlier export (no queries for them now); the check below "
              "includes them")
    print(f"checking the data set in {out}", flush=True)
    return check_dataset_command(argparse.Namespace(directory=out, no_images=False))


def run_gallery(args: argparse.Namespace) -> int:
    with _open(args) as store:
        references = store.gallery.references(args.item)
        records = {reference.capture_id: store.get(reference.capture_id)
                   for reference in references}
        size = store.gallery.size
    if not references:
        print(f"item {args.item} has no references: a capture confirmed OK joins its item's "
              "gallery")
        return 0
    rows = [("capture", "captured", "joined", "confirmed by")]
    for reference in references:
        confirmation = records[reference.capture_id].confirmation
        rows.append((reference.capture_id, _time(reference.captured_at), _time(reference.added_at),
                     confirmation.confirmed_by if confirmation else "-"))
    _table(rows)
    print(f"{len(references)} of at most {size} references of {args.item} (newest first)")
    return 0


def run_remove_reference(args: argparse.Namespace) -> int:
    import getpass

    from calibration.pin import PinError, PinStore
    from station_app.commands.pin_prompt import require_technician_pin
    from station_app.config import load_config

    reason = args.reason.strip()
    if not reason:
        raise StationError("--reason is empty: say why the reference is removed (it is recorded)")
    with _open(args) as store:   # read-only: check the id before asking for the PIN
        record = _record_or_fail(store, args.capture_id)
        if not store.gallery.is_reference(record.capture_id):
            raise StationError(f"capture {record.capture_id} is not a reference of item "
                               f"{record.item_identifier}: `station-app store gallery "
                               f"{record.item_identifier}` lists its references")
    calibration = load_config(args.config).calibration
    pins = PinStore(calibration.pin_file, calibration.pin_max_failures,
                    calibration.pin_lockout_minutes)
    try:
        require_technician_pin(pins, args.pin_stdin, "remove-reference")
    except PinError as error:
        raise StationError(str(error)) from error
    by = args.by or getpass.getuser()
    with _open(args, read_only=False) as store:
        try:
            store.gallery.remove_reference(record.capture_id, by, reason)
        except KeyError:   # removed or aged out since the check above
            raise StationError(f"capture {record.capture_id} is no longer a reference of "
                               f"{record.item_identifier}; nothing removed") from None
        left = len(store.gallery.references(record.item_identifier))
    print(f"removed {record.capture_id} from the gallery of {record.item_identifier} "
          f"(by {by}: {reason}); {left} reference{'s' if left != 1 else ''} left")
    return 0


def run_check(args: argparse.Namespace) -> int:
    with _open(args) as store:
        health = store.verify()
        captures = store.count()
        root = store.root
    for problem in health.integrity:
        print(f"database: {problem}")
    for missing in health.missing_files:
        print(f"missing file: {missing}")
    for orphan in health.orphans:
        print(f"orphan (no capture row, removed when the station starts): "
              f"{orphan.relative_to(root)}")
    print(f"{captures} capture{'s' if captures != 1 else ''} checked in {root}: "
          f"{len(health.integrity)} database problem{'s' if len(health.integrity) != 1 else ''}, "
          f"{len(health.missing_files)} missing file{'s' if len(health.missing_files) != 1 else ''}, "
          f"{len(health.orphans)} orphan{'s' if len(health.orphans) != 1 else ''}")
    if not health.ok:
        print("the store is damaged: restore the missing files or the database from a backup; "
              "`station-app store show CAPTURE_ID` shows a capture's files")
        return 1
    return 0
