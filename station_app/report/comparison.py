"""``render_comparison``: two replay runs of the same captures side by side.

Differences are measured only on captures both runs scored, with a paired bootstrap
(same resamples for both runs), so "B is better" is claimed only when the interval of
B − A excludes zero. Captures whose verdict changed are listed for a closer look.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from html import escape
from pathlib import Path

import numpy as np

from calibration.bootstrap import PairedDifference, paired_benchmark_differences
from calibration.metrics import (TABLE_COLUMNS, MetricError, precision_recall_curve,
                                 roc_curve)
from station_app.report.data import CaptureRow, ReportData
from station_app.report.page import badge, number, page, table, write_atomically
from station_app.report.report import METRIC_FIELDS, SEVERITIES, VERDICTS
from station_app.report.svg import PALETTE, Chart, Series

MAX_LISTED_CHANGES = 200


def render_comparison(run_a: ReportData, run_b: ReportData, out_path: str | os.PathLike[str],
                      *, scorer_a: str | None = None, scorer_b: str | None = None) -> Path:
    """Write the comparison of run A and run B (primary scorers by default) to ``out_path``."""
    return write_atomically(out_path, comparison_html(run_a, run_b, scorer_a, scorer_b))


def comparison_html(run_a: ReportData, run_b: ReportData, scorer_a: str | None = None,
                    scorer_b: str | None = None) -> str:
    scorer_a, scorer_b = scorer_a or run_a.primary(), scorer_b or run_b.primary()
    name_a, name_b = f"A: {run_a.title} · {scorer_a}", f"B: {run_b.title} · {scorer_b}"
    shared = _shared_captures(run_a, run_b, scorer_a, scorer_b)
    rows_a, score_a, score_b, notes = shared
    defect = np.array([row.defect for row in rows_a], bool)
    major = np.array([row.major for row in rows_a], bool)
    body = [f"<h1>Comparison: {escape(run_a.title)} vs {escape(run_b.title)}</h1>",
            f'<p class="meta">{escape(name_a)}<br>{escape(name_b)}</p>',
            f'<p class="meta">{len(rows_a)} captures scored by both runs '
            f'({int(defect.sum())} defective, {int(major.sum())} major).</p>']
    body += [f'<p class="note">{escape(note)}</p>' for note in notes]
    body.append(_metrics_table(defect, major, score_a, score_b, run_a))
    body.append(_curves(defect, score_a, score_b, name_a, name_b))
    body.append(_verdict_changes(run_a, run_b, scorer_a, scorer_b, rows_a, score_a, score_b))
    return page(f"Comparison: {run_a.title} vs {run_b.title}", "".join(body))


def _shared_captures(run_a: ReportData, run_b: ReportData, scorer_a: str, scorer_b: str
                     ) -> tuple[list[CaptureRow], np.ndarray, np.ndarray, list[str]]:
    """Captures scored by both runs with the same ground truth, in run A's order."""
    by_id_b = {row.capture_id: row for row in run_b.captures}
    rows, scores_a, scores_b, disagree, unscored = [], [], [], 0, 0
    for row in run_a.captures:
        other = by_id_b.get(row.capture_id)
        if other is None:
            continue
        a = float(row.scores.get(scorer_a, math.nan))
        b = float(other.scores.get(scorer_b, math.nan))
        if not (math.isfinite(a) and math.isfinite(b)):
            unscored += 1
            continue
        if (row.defect, row.major) != (other.defect, other.major):
            disagree += 1
            continue
        rows.append(row)
        scores_a.append(a)
        scores_b.append(b)
    notes = []
    only_a = len(run_a.captures) - sum(row.capture_id in by_id_b for row in run_a.captures)
    only_b = len(by_id_b) - sum(row.capture_id in by_id_b for row in run_a.captures)
    if only_a or only_b:
        notes.append(f"Left out: {only_a} capture(s) only in A, {only_b} only in B.")
    if unscored:
        notes.append(f"Left out: {unscored} shared capture(s) without a score in one run.")
    if disagree:
        notes.append(f"Left out: {disagree} shared capture(s) whose ground truth differs "
                     f"between the runs (check the data sets).")
    return rows, np.array(scores_a), np.array(scores_b), notes


def _metrics_table(defect: np.ndarray, major: np.ndarray, score_a: np.ndarray,
                   score_b: np.ndarray, run_a: ReportData) -> str:
    heading = '<h2 id="metrics">Metrics side by side</h2>'
    try:
        differences = paired_benchmark_differences(
            defect, major, score_a, score_b, n=max(run_a.bootstrap_resamples, 1),
            seed=run_a.seed)
    except MetricError as error:
        return heading + f'<p class="note">Not available: {escape(str(error))}</p>'
    rows = [_difference_row(column, differences[name])
            for column, name in zip(TABLE_COLUMNS, METRIC_FIELDS)]
    return (heading + table(["Metric", "A", "B", "B − A", "95 % interval of B − A",
                             "Significant"], rows,
                            classes=["", "num", "num", "num", "num ci", ""])
            + f'<p class="note">Paired bootstrap over the shared captures '
              f'({max(run_a.bootstrap_resamples, 1)} resamples, stratified by severity, '
              f'seed {run_a.seed}); significant when the interval excludes 0.</p>')


def _difference_row(column: str, difference: PairedDifference) -> list[str]:
    sign = "+" if difference.difference > 0 else ""
    verdict = ('<span class="yes">yes</span>' if difference.significant
               else '<span class="no">no</span>')
    return [escape(column), number(difference.estimate_a), number(difference.estimate_b),
            f"{sign}{number(difference.difference)}",
            f"[{number(difference.low)}, {number(difference.high)}]", verdict]


def _curves(defect: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, name_a: str,
            name_b: str) -> str:
    pr_chart = Chart("Precision-recall", "recall", "precision", legend_position="bottom-left")
    roc_chart = Chart("ROC", "false-positive rate", "true-positive rate (recall)")
    for label, scores, colour in (("A", score_a, PALETTE[0]), ("B", score_b, PALETTE[1])):
        try:
            pr, roc = precision_recall_curve(defect, scores), roc_curve(defect, scores)
        except MetricError:
            continue
        pr_chart.series.append(Series(label, np.r_[0.0, pr.recall],
                                      np.r_[pr.precision[0], pr.precision], colour, step=True))
        roc_chart.series.append(Series(label, roc.fpr, roc.tpr, colour))
    roc_chart.series.append(Series("chance", [0, 1], [0, 1], "#999", dashed=True, width=1.2))
    return ('<h2 id="curves">Curves on the shared captures</h2><div class="charts">'
            + pr_chart.to_svg() + roc_chart.to_svg() + "</div>"
            + f'<p class="note">{escape(name_a)} · {escape(name_b)}</p>')


def _verdict_changes(run_a: ReportData, run_b: ReportData, scorer_a: str, scorer_b: str,
                     rows: list[CaptureRow], score_a: np.ndarray, score_b: np.ndarray) -> str:
    heading = '<h2 id="verdicts">Verdict changes</h2>'
    verdict_a = dict(zip((r.capture_id for r in run_a.captures), run_a.verdicts(scorer_a)))
    verdict_b = dict(zip((r.capture_id for r in run_b.captures), run_b.verdicts(scorer_b)))
    pairs = [(verdict_a.get(row.capture_id), verdict_b.get(row.capture_id)) for row in rows]
    if not any(a and b for a, b in pairs):
        return heading + ('<p class="note">No verdicts to compare: a run has neither recorded '
                          'verdicts nor station thresholds.</p>')
    transitions = Counter(pairs)
    matrix = [[f"A: {verdict}"] + [str(transitions[(verdict, other)]) for other in VERDICTS]
              for verdict in VERDICTS]
    changed = [index for index, (a, b) in enumerate(pairs) if a and b and a != b]
    changed.sort(key=lambda index: -abs(score_b[index] - score_a[index]))
    by_truth = Counter((rows[index].severity, _direction(*pairs[index])) for index in changed)
    summary = "; ".join(f"{severity}: {by_truth[(severity, 'stricter')]} stricter, "
                        f"{by_truth[(severity, 'more lenient')]} more lenient"
                        for severity in SEVERITIES)
    listed = [[escape(rows[i].capture_id), escape(rows[i].severity),
               escape(", ".join(rows[i].defect_types)), number(score_a[i], 3),
               number(score_b[i], 3), f"{badge(pairs[i][0])} → {badge(pairs[i][1])}"]
              for i in changed[:MAX_LISTED_CHANGES]]
    more = (f'<p class="note">{len(changed) - MAX_LISTED_CHANGES} more not listed.</p>'
            if len(changed) > MAX_LISTED_CHANGES else "")
    return (heading + table(["", *(f"B: {v}" for v in VERDICTS)], matrix,
                            classes=["", "num", "num", "num"])
            + f"<p>{len(changed)} capture(s) changed verdict. {escape(summary)}.</p>"
            + table(["Capture", "Truth", "Types", "Score A", "Score B", "Verdict A → B"],
                    listed, classes=["", "", "", "num", "num", ""]) + more)


def _direction(verdict_a: str | None, verdict_b: str | None) -> str:
    order = {verdict: rank for rank, verdict in enumerate(VERDICTS)}
    return "stricter" if order.get(verdict_b, 0) > order.get(verdict_a, 0) else "more lenient"
