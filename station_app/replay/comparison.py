"""Two replays of the same captures side by side: metric differences and significance.

Runs are compared only on the same capture set: if the runs covered different captures
(another split, a ``--limit``, an unfinished run) the comparison is refused with the ids,
since metrics on different captures differ for reasons no model change explains. Run B
may also be a bare predictions file (``capture_id,pred``) scored on run A's captures.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from calibration.bootstrap import PairedDifference, paired_benchmark_differences
from calibration.metrics import MetricError
from station_app.errors import StationError
from station_app.replay.predictions import _listing, read_predictions
from station_app.replay.run_report import PRIMARY_SCORER, all_capture_ids, load_run
from station_app.report import ReportData, render_comparison
from station_app.report.report import METRIC_FIELDS

METRIC_LABELS = dict(zip(METRIC_FIELDS, ("AP_any", "AP_major", "AUROC", "R@50%P", "R@1%FPR")))


@dataclass(frozen=True)
class RunComparison:
    run_a: ReportData
    run_b: ReportData
    differences: dict[str, PairedDifference]
    shared: int

    def lines(self) -> list[str]:
        out = [f"A: {self.run_a.title}", f"B: {self.run_b.title}",
               f"{self.shared} captures scored by both runs (percentage points, paired "
               f"bootstrap 95 % interval of B - A)"]
        for name in METRIC_FIELDS:
            d = self.differences[name]
            mark = "significant" if d.significant else "not significant"
            out.append(f"  {METRIC_LABELS[name]:<9} A {d.estimate_a:6.2f}  B {d.estimate_b:6.2f}"
                       f"  B-A {d.difference:+6.2f}  [{d.low:+6.2f}, {d.high:+6.2f}]  {mark}")
        return out


def _predictions_as_run(path: Path, run_a: ReportData, ids_a: list[str]) -> ReportData:
    """Run A's captures with run B's predictions (all of A's scored ids must be there)."""
    expected = [row.capture_id for row in run_a.captures]
    predictions = read_predictions(path, expected)
    rows = [dataclasses.replace(row, scores={PRIMARY_SCORER: predictions[row.capture_id]},
                                verdict=None) for row in run_a.captures]
    return dataclasses.replace(run_a, title=path.name, captures=rows, scorers=[PRIMARY_SCORER],
                               skipped=[])


def _check_same_captures(ids_a: list[str], ids_b: list[str]) -> None:
    only_a, only_b = set(ids_a) - set(ids_b), set(ids_b) - set(ids_a)
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} only in A: {_listing(only_a)}")
        if only_b:
            parts.append(f"{len(only_b)} only in B: {_listing(only_b)}")
        raise StationError("the runs cover different captures; compare runs of the same "
                           "captures (" + "; ".join(parts) + ")")


def compare_runs(run_a_path: Path, run_b_path: Path, out: Path | None = None,
                 bootstrap_resamples: int = 1000, seed: int = 0) -> RunComparison:
    """Compare two run folders (or run A with a predictions CSV); write the HTML if ``out``."""
    run_a = load_run(run_a_path, title=Path(run_a_path).name,
                     bootstrap_resamples=bootstrap_resamples)
    ids_a = all_capture_ids(run_a_path)
    if Path(run_b_path).is_file():
        run_b = _predictions_as_run(Path(run_b_path), run_a, ids_a)
    else:
        run_b = load_run(run_b_path, title=Path(run_b_path).name,
                         bootstrap_resamples=bootstrap_resamples)
        _check_same_captures(ids_a, all_capture_ids(run_b_path))
    scores_b = {row.capture_id: row.scores.get(PRIMARY_SCORER) for row in run_b.captures}
    shared = [row for row in run_a.captures
              if scores_b.get(row.capture_id) is not None and PRIMARY_SCORER in row.scores]
    try:
        differences = paired_benchmark_differences(
            [row.defect for row in shared], [row.major for row in shared],
            [row.scores[PRIMARY_SCORER] for row in shared],
            [scores_b[row.capture_id] for row in shared],
            n=max(1, bootstrap_resamples), seed=seed)
    except MetricError as error:
        raise StationError(f"cannot compare the runs: {error}") from error
    if out is not None:
        render_comparison(run_a, run_b, out)
    return RunComparison(run_a, run_b, differences, len(shared))
