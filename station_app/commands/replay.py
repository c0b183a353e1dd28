"""``station-app replay DATA --out RUN``: the full pipeline over a data set, measured.

Scores every capture of a split (Kaputt layout), or of the station's capture store
(read-only, confirmations as truth), with the station's models or the ones named, writes
``RUN/predictions.csv``, ``RUN/results.jsonl``, ``RUN/run.json`` and ``RUN/report.html``.
Interrupted runs resume when the same command is run again.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from station_app.commands import add_common_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="re-score a data set with the full pipeline and measure it",
        description="Run the inspection pipeline (scorer, reference comparison, fusion, "
                    "verdict) over every capture of a data-set split, or of the station's "
                    "capture store (opened read-only; ground truth is the associates' "
                    "confirmation; references are the item's gallery as it stood when "
                    "each capture was taken), and write RUN/"
                    "predictions.csv (capture_id,pred), RUN/results.jsonl (every score, "
                    "verdict and timing per capture), RUN/run.json and RUN/report.html. "
                    "Ctrl-C stops after the current capture; the same command resumes. "
                    "Captures whose files are missing or unreadable are skipped and counted.")
    parser.add_argument("data", type=Path,
                        help="data-set root (Kaputt layout) or capture store (its "
                             "captures.sqlite3, or the folder holding it)")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--split", choices=("train", "validation", "test"),
                        help="data set: the split (default test); capture store: only items "
                             "that store export puts in this split (default all)")
    parser.add_argument("--since", help="capture store: captures taken at or after this ISO "
                                        "date/time (no zone: UTC)")
    parser.add_argument("--until", help="capture store: captures taken before this ISO "
                                        "date/time (no zone: UTC)")
    parser.add_argument("--include-unconfirmed", action="store_true",
                        help="capture store: also score unconfirmed captures; they have no "
                             "ground truth, so they stay out of metrics and predictions.csv "
                             "(scores in results.jsonl, counted in the report)")
    parser.add_argument("--limit", type=int, help="only the first N captures of the split")
    parser.add_argument("--scorer", type=Path, help="scorer ONNX (default: configured)")
    parser.add_argument("--fusion", type=Path,
                        help="fusion YAML (default: fusion.yaml beside the scorer; "
                             "P(any) alone when there is none)")
    parser.add_argument("--segmenter-masks", action="store_true",
                        help="segment items with the segmenter (quality gates apply) "
                             "instead of using the data set's masks")
    parser.add_argument("--ok-below", type=float, help="threshold (default: configured)")
    parser.add_argument("--damaged-above", type=float, help="threshold (default: configured)")
    parser.add_argument("--batch-size", type=int, default=4, help="tray images per model run")
    parser.add_argument("--cache", type=Path, help="reference feature cache folder")
    parser.add_argument("--fit-thresholds", metavar="METHOD",
                        help="choose thresholds on this run: max_f1, fpr:F, precision:P, "
                             "recall:R, 'GOAL,GOAL' (ok_below, damaged_above) or station")
    parser.add_argument("--profile-dir", type=Path,
                        help="station profile store --fit-thresholds saves a new version in "
                             "(default: the configured calibration.profile_dir)")
    parser.add_argument("--author", help="who fitted the thresholds, recorded in the profile "
                                         "(default: the login name)")
    parser.add_argument("--no-report", action="store_true", help="skip report.html")
    add_common_options(parser)
    parser.set_defaults(handler=run)


class _StopOnInterrupt:
    """First Ctrl-C: finish the current capture, then stop; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "_StopOnInterrupt":
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after the current capture (Ctrl-C again to stop now)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def __call__(self) -> bool:
        return self.requested


def run(args: argparse.Namespace) -> int:
    from engines.verdict import DecisionThresholds
    from station_app.config import load_config
    from station_app.errors import StationError
    from station_app.progress import ProgressBar
    from station_app.replay.run_report import write_run_report
    from station_app.replay.runner import ReplayOptions, run_replay
    from station_app.replay.setup import open_replay_models
    from station_app.replay.source import open_replay_source

    if args.fit_thresholds:
        from station_app.replay.threshold_fit import check_method
        check_method(args.fit_thresholds)
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise StationError("--batch-size and --limit must be at least 1")
    config = load_config(args.config)
    thresholds = None
    if args.ok_below is not None or args.damaged_above is not None:
        try:
            thresholds = DecisionThresholds(
                args.ok_below if args.ok_below is not None else config.thresholds.ok_below,
                args.damaged_above if args.damaged_above is not None
                else config.thresholds.damaged_above)
        except ValueError as error:
            raise StationError(str(error)) from error
    source = open_replay_source(args.data, args.split, args.since, args.until,
                                args.include_unconfirmed, config.data.gallery_size)
    notes = list(getattr(source, "notes", list)())     # what a store selection left out
    for note in notes:
        print(note)
    models = open_replay_models(config, args.scorer, args.fusion, thresholds,
                                args.segmenter_masks, args.batch_size, args.cache)
    options = ReplayOptions(batch_size=args.batch_size, limit=args.limit,
                            segmenter_masks=args.segmenter_masks)
    bar = ProgressBar(f"replay {source.describe().get('split', '')}")
    info = {**models.info, "source_notes": notes} if notes else models.info
    with _StopOnInterrupt() as stop:
        summary = run_replay(source, models.inspector, args.out, info, options,
                             progress=bar, should_stop=stop)
    getattr(source, "close", lambda: None)()         # a capture store's read-only connection
    skipped = "" if not summary.skipped else " (" + ", ".join(
        f"{count} {reason}" for reason, count in summary.skip_reasons.items()) + ")"
    print(f"{summary.scored} scored, {summary.skipped} skipped{skipped} of {summary.total} "
          f"captures; {summary.captures_per_second:.2f} captures/s this session")
    if summary.interrupted:
        print(f"interrupted: {summary.total - summary.scored - summary.skipped} captures left; "
              f"run the same command again to resume (results in {args.out})", file=sys.stderr)
        return 130
    if not args.no_report:
        print(f"report: {write_run_report(args.out)}")
    print(f"predictions: {args.out / 'predictions.csv'}")
    if args.fit_thresholds:
        fit_and_write(args.out, args.fit_thresholds,
                      args.profile_dir or config.calibration.profile_dir, args.author)
    return 0


def fit_and_write(run_dir: Path, method: str, profile_dir: Path,
                  author: str | None = None) -> None:
    """Fit thresholds on the run and save them as a new version of the station profile."""
    import getpass

    from calibration.profile import ProfileStore
    from station_app.replay.threshold_fit import fit_run_thresholds, write_fitted_thresholds

    fit = fit_run_thresholds(run_dir, method)
    store = ProfileStore(profile_dir)
    saved = write_fitted_thresholds(store, fit, author or getpass.getuser())
    print(f"thresholds ({method}): ok_below {fit.ok_below:.4f}, damaged_above "
          f"{fit.damaged_above:.4f}; expected recall {fit.expected_recall:.1%} at FPR "
          f"{fit.expected_fpr:.2%}, {fit.review_fraction:.1%} to REVIEW; saved as profile "
          f"{saved.label} in {store.root}")
    for note in fit.chosen.notes:
        print(f"  note: {note}")
    for failure in fit.failures:
        print(f"  warning: {failure}", file=sys.stderr)
