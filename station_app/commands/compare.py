"""``station-app compare RUN_A RUN_B``: two replays side by side, with significance."""

from __future__ import annotations

import argparse
from pathlib import Path

from station_app.commands import add_common_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two replay runs",
        description="Compare two replay runs of the same captures: the Table 2 metrics of "
                    "each, B - A with a paired bootstrap interval and whether it is "
                    "significant, and the captures whose verdict changed. RUN_B may be a "
                    "predictions CSV (capture_id,pred) for RUN_A's captures. Runs over "
                    "different captures are refused, listing the ids.")
    parser.add_argument("run_a", type=Path, metavar="RUN_A")
    parser.add_argument("run_b", type=Path, metavar="RUN_B")
    parser.add_argument("--out", type=Path, help="comparison HTML (default: RUN_B/compare.html "
                                                 "or beside the predictions file)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from station_app.replay.comparison import compare_runs

    out = args.out or (args.run_b.with_name(args.run_b.stem + "-compare.html")
                       if args.run_b.is_file() else args.run_b / "compare.html")
    comparison = compare_runs(args.run_a, args.run_b, out, bootstrap_resamples=args.resamples)
    print("\n".join(comparison.lines()))
    print(f"comparison: {out}")
    return 0
