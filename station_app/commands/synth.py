"""``station-app synth``: write a synthetic tray-scene data set in the Kaputt layout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from station_app.commands import add_common_options
from station_app.errors import StationError

MARKER_FILE = "synth.json"   # training.synth.MARKER_FILE; repeated so --help stays light


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth", help="write a synthetic data set in the Kaputt layout (train/validation/test)",
        description="Render synthetic tray scenes (items of every material, every defect type "
                    "with severity and defect mask, benign look-alikes, reference captures) and "
                    "write them in the Kaputt layout. The same seed gives the same data set.")
    parser.add_argument("--out", metavar="DIR", type=Path, required=True,
                        help="data-set root to create")
    parser.add_argument("--items", metavar="N", type=int, default=20,
                        help="item identifiers to generate, split ~70/15/15 (default 20)")
    parser.add_argument("--seed", metavar="S", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", metavar="K", type=int, default=None,
                        help="worker processes (default: one per CPU core)")
    parser.add_argument("--no-frames", action="store_true",
                        help="skip writing the 4096x3000 camera frames (much smaller data set)")
    parser.add_argument("--force", action="store_true",
                        help="write into DIR even if it holds files that are not a synth output")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def _check_output(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise StationError(f"--out {out} is a file; give a directory path")
    if not out.is_dir() or force or not any(out.iterdir()):
        return
    marker = out / MARKER_FILE
    try:
        previous = json.loads(marker.read_text())
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict) or previous.get("generator") != "training.synth":
        raise StationError(f"--out {out} is a non-empty directory that is not a synth output; "
                           "choose an empty or new directory, or add --force")


def run(args: argparse.Namespace) -> int:
    if args.items < 3:
        raise StationError(f"--items {args.items} is too few: need at least 3, one item per "
                           "split (train, validation, test)")
    if args.seed < 0:
        raise StationError(f"--seed {args.seed} must be 0 or greater")
    if args.workers is not None and args.workers < 1:
        raise StationError(f"--workers {args.workers} must be at least 1")
    _check_output(args.out, args.force)

    from station_app.progress import ProgressBar
    from training.synth import generate_dataset

    try:
        summary = generate_dataset(args.out, items=args.items, seed=args.seed,
                                   progress=ProgressBar("synth", stream=sys.stderr),
                                   workers=args.workers, write_frames=not args.no_frames)
    except OSError as error:
        raise StationError(f"could not write {args.out}: {error}; check the path and free space") \
            from error
    for split in summary.queries:
        print(f"{split}: {summary.items[split]} items, {summary.queries[split]} queries "
              f"({summary.defective_queries[split]} defective), {summary.references[split]} "
              f"references ({summary.defective_references[split]} defective)")
    print(f"wrote {summary.files_written} files to {summary.root} in {summary.seconds:.1f} s")
    return 0
