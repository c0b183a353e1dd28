"""``station-app dataset``: check a data set in the Kaputt layout, or summarise it."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from station_app.commands import add_common_options
from station_app.errors import StationError


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset", help="check or summarise a data set in the Kaputt layout",
        description="Work with a data set in the Kaputt layout (query-/reference-{split}.parquet).")
    commands = parser.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND", required=True)

    check = commands.add_parser(
        "check", help="list every problem in a data set; exit 1 if there is an error",
        description="List every problem in a data set, one per line (file:row: column: message), "
                    "then a summary. Exits 1 if there is any error; warnings alone exit 0.")
    check.add_argument("directory", metavar="DIR", type=Path, help="data-set root")
    check.add_argument("--no-images", action="store_true",
                       help="skip decoding images and masks (paths and image headers are still checked)")
    add_common_options(check)
    check.set_defaults(handler=run_check)

    summary = commands.add_parser(
        "summary", help="per-split counts: queries, defects, types, materials, references",
        description="Count queries, defective and major items, defect types, materials and "
                    "references per split.")
    summary.add_argument("directory", metavar="DIR", type=Path, help="data-set root")
    add_common_options(summary)
    summary.set_defaults(handler=run_summary)


def _row_counts(directory: Path) -> dict[str, tuple[int | None, int | None]]:
    """Rows of the query and reference files per split, from parquet metadata (cheap)."""
    import pyarrow.parquet as pq

    from engines.dataset import available_splits, query_file_name, reference_file_name

    def rows(path: Path) -> int | None:
        if not path.exists():
            return 0  # a split without a reference file has no references
        try:
            return pq.read_metadata(path).num_rows
        except (OSError, ValueError):
            return None

    return {split: (rows(directory / query_file_name(split)), rows(directory / reference_file_name(split)))
            for split in available_splits(directory)}


def run_check(args: argparse.Namespace) -> int:
    from engines.dataset import check_dataset
    from station_app.progress import ProgressBar

    progress = None if args.no_images else ProgressBar("decoding images", stream=sys.stderr)
    problems = check_dataset(args.directory, check_images=not args.no_images, progress=progress)
    for problem in problems:
        print(problem)
    errors = sum(problem.severity == "error" for problem in problems)
    warnings = len(problems) - errors
    counts = _row_counts(args.directory) if args.directory.is_dir() else {}

    def shown(count: int | None) -> str:
        return "?" if count is None else str(count)

    splits = "; ".join(f"{split}: {shown(queries)} queries, {shown(references)} references"
                       for split, (queries, references) in counts.items())
    print(f"{_count(errors, 'error')}, {_count(warnings, 'warning')}"
          + (f" ({splits})" if splits else ""))
    return 1 if errors else 0


def run_summary(args: argparse.Namespace) -> int:
    from engines.dataset import DatasetError, available_splits, read_split
    from engines.taxonomy import DEFECT_TYPES, MATERIALS

    splits = available_splits(args.directory)
    if not splits:
        raise StationError(f"no split found in {args.directory}; expected query-{{train,validation,test}}.parquet")
    counts: dict[str, Counter[str]] = {}
    for split in splits:
        try:
            data = read_split(args.directory, split, check_files=False)
        except DatasetError as error:
            raise StationError(f"{error} (run 'station-app dataset check' for every problem)") from error
        count: Counter[str] = Counter()
        count["queries"] = len(data.queries)
        count["items"] = len({query.item_identifier for query in data.queries})
        count["references"] = len(data.references)
        for query in data.queries:
            count["defective"] += query.defect
            count["major"] += query.major_defect
            for defect_type in query.defect_types:
                count[f"type {defect_type}"] += 1
            count[f"material {query.item_material}"] += 1
        counts[split] = count

    labels = ["queries", "items", "defective", "major", "references",
              *(f"type {t}" for t in DEFECT_TYPES), *(f"material {m}" for m in MATERIALS)]
    label_width = max(map(len, labels))
    widths = [max(len(split), 8) for split in splits]
    print(" " * label_width + "".join(f"  {split:>{width}}" for split, width in zip(splits, widths)))
    for label in labels:
        print(f"{label:<{label_width}}" + "".join(f"  {counts[split][label]:>{width}}"
                                                  for split, width in zip(splits, widths)))
    return 0
