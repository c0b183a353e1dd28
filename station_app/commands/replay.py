"""``station-app replay DATA --out RUN``: the full pipeline over a data set, measured.

Scores every capture of a split (Kaputt layout) with the station's models or the ones
named, writes ``RUN/predictions.csv``, ``RUN/results.jsonl``, ``RUN/run.json`` and
``RUN/report.html``. Interrupted runs resume when the same command is run again.
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
                    "verdict) over every capture of a data-set split and write RUN/"
                    "predictions.csv (capture_id,pred), RUN/results.jsonl (every score, "
                    "verdict and timing per capture), RUN/run.json and RUN/report.html. "
                    "Ctrl-C stops after the current capture; the same command resumes. "
                    "Captures whose files are missing or unreadable are skipped and counted.")
    parser.add_argument("data", type=Path, help="data-set root (Kaputt layout)")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"))
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
    parser.add_argument("--profile", type=Path, help="profile YAML --fit-thresholds writes")
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
    from station_app.replay.source import DatasetSource

    if args.fit_thresholds and not args.profile:
        raise StationError("--fit-thresholds needs --profile FILE to write them to")
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
    source = DatasetSource(args.data, args.split)
    models = open_replay_models(config, args.scorer, args.fusion, thresholds,
                                args.segmenter_masks, args.batch_size, args.cache)
    options = ReplayOptions(batch_size=args.batch_size, limit=args.limit,
                            segmenter_masks=args.segmenter_masks)
    bar = ProgressBar(f"replay {args.split}")
    with _StopOnInterrupt() as stop:
        summary = run_replay(source, models.inspector, args.out, models.info, options,
                             progress=bar, should_stop=stop)
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
        fit_and_write(args.out, args.fit_thresholds, args.profile)
    return 0


def fit_and_write(run_dir: Path, method: str, profile: Path) -> None:
    from station_app.replay.run_report import load_run
    from station_app.replay.threshold_fit import fit_thresholds, write_fitted_thresholds

    data = load_run(run_dir, with_images=False, bootstrap_resamples=0)
    defect, _ = data.labels()
    chosen = fit_thresholds(method, defect, data.scores("fused"))
    write_fitted_thresholds(profile, chosen, f"{data.data_set}, replay {run_dir}",
                            data.model_versions)
    print(f"thresholds ({method}): ok_below {chosen.ok_below:.4f}, damaged_above "
          f"{chosen.damaged_above:.4f} written to {profile}")
    for note in chosen.notes:
        print(f"  note: {note}")
