"""``render_report``: one replay run as a single self-contained HTML file.

Sections: header with counts, the paper's Table 2 (with bootstrap intervals), PR and ROC
curves, score histograms by class, threshold curves with the chosen points, breakdowns
per defect type / severity / material / look-alikes, galleries of the worst false
positives and false negatives, and the captures that could not be scored.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from html import escape
from pathlib import Path

import numpy as np

from calibration.bootstrap import ConfidenceInterval, bootstrap_benchmark_ci
from calibration.metrics import (TABLE_COLUMNS, BenchmarkMetrics, GroupMetrics, MetricError,
                                 benchmark_metrics, breakdown, precision_recall_curve,
                                 roc_curve)
from calibration.thresholds import (ThresholdChoice, threshold_curves, threshold_for_fpr,
                                    threshold_for_precision, threshold_max_f1)
from station_app.report.data import ReportData
from station_app.report.page import capture_tile, number, page, table, write_atomically
from station_app.report.svg import (PALETTE, Chart, Marker, Series, VerticalLine,
                                    class_histogram)

METRIC_FIELDS = ("ap_any", "ap_major", "auroc", "recall_at_50_precision", "recall_at_1_fpr")
SEVERITIES = ("non-defective", "minor", "major")
VERDICTS = ("OK", "REVIEW", "DAMAGED")


def render_report(run: ReportData, out_path: str | os.PathLike[str]) -> Path:
    """Write the run's report to ``out_path`` (atomically) and return the path."""
    return write_atomically(out_path, report_html(run))


def report_html(run: ReportData) -> str:
    """The whole report as one HTML string."""
    sections = [_header(run), _metrics_section(run), _curves_section(run),
                _histogram_section(run), _thresholds_section(run), _breakdown_section(run),
                _gallery_section(run), _skipped_section(run)]
    return page(run.title, "".join(sections))


# ------------------------------------------------------------------------- helpers

def scored_subset(run: ReportData, scorer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                          np.ndarray]:
    """(defect, major, scores, kept) for the captures this scorer scored (finite score)."""
    defect, major = run.labels()
    scores = run.scores(scorer)
    kept = np.isfinite(scores)
    return defect[kept], major[kept], scores[kept], kept


def metric_cell(value: float, interval: ConfidenceInterval | None) -> str:
    """A Table 2 cell: the value, and its interval underneath in small grey text."""
    if interval is None or not math.isfinite(interval.low):
        return number(value)
    return (f'{number(value)}<br><span class="ci">[{number(interval.low)}, '
            f'{number(interval.high)}]</span>')


def _counts(run: ReportData) -> Counter:
    return Counter(row.severity for row in run.captures)


# ------------------------------------------------------------------------ sections

def _header(run: ReportData) -> str:
    counts = _counts(run)
    lookalikes = sum(row.lookalike for row in run.captures)
    skipped = len(run.skipped)
    boxes = [("captures scored", len(run.captures), ""),
             ("non-defective", counts["non-defective"], ""), ("minor defect", counts["minor"], ""),
             ("major defect", counts["major"], ""), ("look-alikes", lookalikes, ""),
             ("skipped", skipped, "warn" if skipped else "")]
    summary = "".join(f'<div class="{css}"><b>{value}</b>{escape(label)}</div>'
                      for label, value, css in boxes)
    meta = []
    if run.data_set:
        meta.append(f"data set: <b>{escape(run.data_set)}</b>")
    if run.created:
        meta.append(f"created {escape(run.created)}")
    if run.model_versions:
        meta.append("models: " + ", ".join(f"{escape(k)} {escape(str(v))}"
                                           for k, v in run.model_versions.items()))
    if run.thresholds:
        meta.append(f"station thresholds: ok_below {run.thresholds[0]:.3f}, damaged_above "
                    f"{run.thresholds[1]:.3f}")
    nav = ("<nav>" + "".join(f'<a href="#{anchor}">{label}</a>' for anchor, label in (
        ("metrics", "Metrics"), ("curves", "PR / ROC"), ("histograms", "Histograms"),
        ("thresholds", "Thresholds"), ("breakdowns", "Breakdowns"),
        ("false-positives", "False positives"), ("false-negatives", "False negatives"),
        ("skipped", f"Skipped ({skipped})"))) + "</nav>")
    return (f"<h1>{escape(run.title)}</h1>"
            + "".join(f'<p class="meta">{line}</p>' for line in meta)
            + f'<div class="summary">{summary}</div>{nav}')


def _metrics_section(run: ReportData) -> str:
    rows, notes, best = [], [], {}
    results: dict[str, tuple[BenchmarkMetrics, dict[str, ConfidenceInterval]] | str] = {}
    for scorer in run.scorer_names():
        defect, major, scores, kept = scored_subset(run, scorer)
        missing = int((~kept).sum())
        if missing:
            notes.append(f"{scorer}: {missing} capture(s) without a score left out")
        try:
            metrics = benchmark_metrics(defect, major, scores)
            intervals = (bootstrap_benchmark_ci(defect, major, scores,
                                                n=run.bootstrap_resamples, seed=run.seed)
                         if run.bootstrap_resamples > 0 else {})
        except MetricError as error:
            results[scorer] = str(error)
            continue
        results[scorer] = (metrics, intervals)
        notes.extend(f"{scorer}: {note}" for note in metrics.notes)
        for name in METRIC_FIELDS:
            value = getattr(metrics, name)
            if math.isfinite(value) and value > best.get(name, -1):
                best[name] = value
    for scorer, result in results.items():
        if isinstance(result, str):
            rows.append([escape(scorer), "", f'<span class="muted">{escape(result)}</span>',
                         "", "", "", ""])
            continue
        metrics, intervals = result
        cells = [escape(scorer), f"{metrics.count} ({metrics.positives} defective)"]
        for name in METRIC_FIELDS:
            value = getattr(metrics, name)
            cell = metric_cell(value, intervals.get(name))
            if len(results) > 1 and math.isfinite(value) and value == best.get(name):
                cell = f"<b>{cell}</b>"
            cells.append(cell)
        rows.append(cells)
    level = "95 %"
    explanation = (f"Values in percent, as in Table 2 of the Kaputt paper. Under each value: "
                   f"{level} bootstrap interval ({run.bootstrap_resamples} resamples of the "
                   f"captures, stratified by severity, seed {run.seed}). AP_major is measured on "
                   f"non-defective and major-defect captures only. Best value per column in bold."
                   if run.bootstrap_resamples > 0 else
                   "Values in percent, as in Table 2 of the Kaputt paper (no intervals).")
    body = table(["Scorer", "Captures", *TABLE_COLUMNS], rows,
                 classes=["", "num", "num", "num", "num", "num", "num"])
    return ('<h2 id="metrics">Metrics (Table 2 format)</h2>' + body
            + f'<p class="note">{escape(explanation)}</p>'
            + "".join(f'<p class="note">{escape(note)}</p>' for note in notes))


def _curves_section(run: ReportData) -> str:
    pr_chart = Chart("Precision-recall", "recall", "precision", legend_position="bottom-left")
    roc_chart = Chart("ROC", "false-positive rate", "true-positive rate (recall)")
    for index, scorer in enumerate(run.scorer_names()):
        defect, _, scores, _ = scored_subset(run, scorer)
        colour = PALETTE[index % len(PALETTE)]
        try:
            pr = precision_recall_curve(defect, scores)
            roc = roc_curve(defect, scores)
        except MetricError:
            continue
        pr_chart.series.append(Series(scorer, np.r_[0.0, pr.recall],
                                      np.r_[pr.precision[0], pr.precision], colour, step=True))
        roc_chart.series.append(Series(scorer, roc.fpr, roc.tpr, colour))
        if scorer == run.primary():
            at_half = np.flatnonzero(pr.precision >= 0.5)
            if at_half.size:
                best = at_half[np.argmax(pr.recall[at_half])]
                pr_chart.markers.append(Marker(float(pr.recall[best]),
                                               float(pr.precision[best]),
                                               f"R@50%P {pr.recall[best]:.1%}", colour))
            at_fpr = np.flatnonzero(roc.fpr <= 0.01)
            best = at_fpr[np.argmax(roc.tpr[at_fpr])]
            roc_chart.markers.append(Marker(float(roc.fpr[best]), float(roc.tpr[best]),
                                            f"R@1%FPR {roc.tpr[best]:.1%}", colour))
    defect, _ = run.labels()
    if defect.size:
        prevalence = float(defect.mean())
        pr_chart.series.append(Series(f"chance ({prevalence:.0%} defective)", [0, 1],
                                      [prevalence, prevalence], "#999", dashed=True, width=1.2))
    roc_chart.series.append(Series("chance", [0, 1], [0, 1], "#999", dashed=True, width=1.2))
    return ('<h2 id="curves">Precision-recall and ROC curves</h2><div class="charts">'
            + pr_chart.to_svg() + roc_chart.to_svg() + "</div>"
            + '<p class="note">Points mark R@50%P and R@1%FPR of the primary scorer '
              f'({escape(run.primary())}).</p>')


def _station_lines(run: ReportData) -> list[VerticalLine]:
    if not run.thresholds:
        return []
    ok_below, damaged_above = run.thresholds
    return [VerticalLine(ok_below, f"ok_below {ok_below:.2f}", "#2a9d3a"),
            VerticalLine(damaged_above, f"damaged_above {damaged_above:.2f}", "#d62728")]


def _histogram_section(run: ReportData) -> str:
    scorer = run.primary()
    scores = run.scores(scorer)
    by_class = {}
    for severity in SEVERITIES:
        mask = np.array([row.severity == severity for row in run.captures], bool)
        values = scores[mask] if mask.size else np.array([])
        by_class[severity] = values[np.isfinite(values)]
    charts = [class_histogram(f"Scores by class: {scorer}", by_class,
                              vertical_lines=_station_lines(run), width=620, height=340)]
    lookalike = np.array([row.lookalike for row in run.captures], bool)
    if lookalike.any():
        good = np.array([row.severity == "non-defective" for row in run.captures], bool)
        charts.append(class_histogram(
            "Good items: look-alikes vs the rest",
            {"other non-defective": scores[good & ~lookalike & np.isfinite(scores)],
             "look-alike (damage-like art)": scores[good & lookalike & np.isfinite(scores)]},
            vertical_lines=_station_lines(run), width=620, height=340))
    return ('<h2 id="histograms">Score histograms</h2><div class="charts">'
            + "".join(charts) + '</div><p class="note">Each class is normalised to its own '
            'size (share of class per bin), so rare classes stay visible.</p>')


def chosen_thresholds(defect: np.ndarray, scores: np.ndarray) -> list[ThresholdChoice]:
    """The candidate operating points the report shows and marks."""
    return [threshold_max_f1(defect, scores), threshold_for_fpr(defect, scores, 0.01),
            threshold_for_precision(defect, scores, 0.5),
            threshold_for_precision(defect, scores, 0.9)]


def _thresholds_section(run: ReportData) -> str:
    scorer = run.primary()
    defect, major, scores, _ = scored_subset(run, scorer)
    try:
        curves = threshold_curves(defect, scores)
        choices = chosen_thresholds(defect, scores)
    except MetricError as error:
        return (f'<h2 id="thresholds">Thresholds</h2><p class="note">Not available: '
                f'{escape(str(error))}</p>')
    low = min(0.0, float(scores.min()))
    high = max(1.0, float(scores.max()))
    chart = Chart(f"Threshold curves: {scorer}", "threshold (flag when score ≥ threshold)",
                  "rate", x_range=(low, high), width=620, height=360,
                  vertical_lines=_station_lines(run), legend_position="above")
    xs = curves.thresholds
    chart.series += [Series("precision", xs, curves.precision, PALETTE[0]),
                     Series("recall", xs, curves.recall, PALETTE[1]),
                     Series("false-positive rate", xs, curves.fpr, PALETTE[4]),
                     Series("F1", xs, curves.f1, PALETTE[2], dashed=True)]
    marker_curve = {"max_f1": ("f1", PALETTE[2]), "fpr": ("recall", PALETTE[1]),
                    "precision": ("precision", PALETTE[0])}
    for choice in choices:
        if not choice.target_met:
            continue
        attribute, colour = next(value for key, value in marker_curve.items()
                                 if choice.method.startswith(key))
        chart.markers.append(Marker(choice.threshold, getattr(choice, attribute),
                                    choice.method, colour))
    rows = [[escape(choice.method), number(choice.threshold, 4), _pct(choice.precision),
             _pct(choice.recall), _pct(choice.fpr), number(choice.f1, 3),
             escape(choice.description)] for choice in choices]
    parts = [f'<h2 id="thresholds">Thresholds</h2><div class="charts">{chart.to_svg()}</div>',
             table(["Goal", "Threshold", "Precision", "Recall", "FPR", "F1", "What it means"],
                   rows, classes=["", "num", "num", "num", "num", "num", ""])]
    parts.append(_verdict_table(run))
    return "".join(parts)


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.1f} %"


def _verdict_table(run: ReportData) -> str:
    verdicts = run.verdicts()
    if not any(verdicts):
        return '<p class="note">No verdicts: the run has no station thresholds.</p>'
    counts = Counter((row.severity, verdict) for row, verdict in zip(run.captures, verdicts))
    counts.update(("of which look-alikes", verdict)
                  for row, verdict in zip(run.captures, verdicts) if row.lookalike)
    rows = []
    for severity in (SEVERITIES[0], "of which look-alikes", *SEVERITIES[1:]):
        total = sum(counts[(severity, verdict)] for verdict in (*VERDICTS, None))
        if not total and severity == "of which look-alikes":
            continue
        cells = [escape(severity), str(total)]
        for verdict in VERDICTS:
            count = counts[(severity, verdict)]
            cells.append(f"{count} ({count / total:.1%})" if total else "0")
        rows.append(cells)
    return ("<h3>Verdicts against the truth</h3>"
            + table(["Truth", "Captures", *VERDICTS], rows,
                    classes=["", "num", "num", "num", "num"]))


def _group_table(title: str, results: dict[str, GroupMetrics], explanation: str) -> str:
    rows = []
    for name, group in results.items():
        cells = [escape(name), str(group.count), str(group.positives), str(group.negatives)]
        if group.metrics is None:
            cells += [f'<span class="muted">{escape(group.note)}</span>', "", "", "", ""]
        else:
            cells += list(group.metrics.as_row())
        rows.append(cells)
    return (f"<h3>{escape(title)}</h3>"
            + table(["Group", "Evaluated", "Defective", "Good", *TABLE_COLUMNS], rows,
                    classes=["", "num", "num", "num", "num", "num", "num", "num", "num"])
            + f'<p class="note">{escape(explanation)}</p>')


def _breakdown_section(run: ReportData) -> str:
    scorer = run.primary()
    defect, major, scores, kept = scored_subset(run, scorer)
    rows = [row for row, keep in zip(run.captures, kept) if keep]
    if not defect.any() or defect.all():
        return ('<h2 id="breakdowns">Breakdowns</h2><p class="note">Not available: needs '
                'defective and non-defective captures.</p>')
    types = sorted({kind for row in rows for kind in row.defect_types})
    by_type = {kind: np.array([kind in row.defect_types for row in rows]) for kind in types}
    by_severity = {"minor": defect & ~major, "major": major}
    materials = sorted({row.material for row in rows})
    by_material = {material: np.array([row.material == material for row in rows])
                   for material in materials}
    lookalike = np.array([row.lookalike for row in rows], bool)
    parts = [f'<h2 id="breakdowns">Breakdowns ({escape(scorer)})</h2>',
             _group_table("Per defect type", breakdown(by_type, defect, major, scores),
                          "Each type: captures with that type (a capture can have several) "
                          "against all non-defective captures."),
             _group_table("Per severity", breakdown(by_severity, defect, major, scores),
                          "Each severity's defects against all non-defective captures."),
             _group_table("Per material",
                          breakdown(by_material, defect, major, scores, pairing="within_group"),
                          "Only that material's captures, defective and not.")]
    if lookalike.any():
        groups = {"look-alikes": lookalike, "other good items": ~lookalike & ~defect}
        parts.append(_group_table(
            "Look-alikes (damage-like artwork)",
            breakdown(groups, defect, major, scores, pairing="negatives_vs_all_positives"),
            "That group's good items against all defective captures. Compare AUROC (it does not "
            "depend on group size; AP does): a lower AUROC for look-alikes means the scorer "
            "takes the artwork for damage. Their verdicts are in the Thresholds section."))
    return "".join(parts)


def _gallery_section(run: ReportData) -> str:
    scorer = run.primary()
    scores = run.scores(scorer)
    verdicts = run.verdicts(scorer)
    finite = np.isfinite(scores)
    defect, _ = run.labels()
    false_positive = np.flatnonzero(finite & ~defect)
    false_positive = false_positive[np.argsort(-scores[false_positive], kind="stable")]
    false_negative = np.flatnonzero(finite & defect)
    false_negative = false_negative[np.argsort(scores[false_negative], kind="stable")]
    parts = []
    for anchor, title, indices, why in (
            ("false-positives", "Worst false positives", false_positive,
             "non-defective captures with the highest scores"),
            ("false-negatives", "Worst false negatives", false_negative,
             "defective captures with the lowest scores")):
        chosen = indices[:run.gallery_size]
        tiles = "".join(capture_tile(run.captures[i], float(scores[i]), verdicts[i])
                        for i in chosen)
        parts.append(f'<h2 id="{anchor}">{title}</h2><p class="note">The {len(chosen)} '
                     f'{why} ({escape(scorer)}).</p><div class="gallery">{tiles}</div>')
    return "".join(parts)


def _skipped_section(run: ReportData) -> str:
    if not run.skipped:
        return '<h2 id="skipped">Skipped captures (0)</h2><p class="note">None.</p>'
    reasons = Counter(skip.reason for skip in run.skipped)
    summary = "; ".join(f"{count} × {reason}" for reason, count in reasons.most_common())
    rows = [[escape(skip.capture_id), escape(skip.reason), escape(skip.path)]
            for skip in run.skipped]
    return (f'<h2 id="skipped">Skipped captures ({len(run.skipped)})</h2>'
            f'<p class="note">Not scored and not in any metric: {escape(summary)}.</p>'
            + table(["Capture", "Reason", "Path"], rows))
