"""The HTML shell shared by run and comparison reports: styles, tables, gallery tiles.

Everything is inline (no external CSS, JS, fonts or images) so the file opens offline.
"""

from __future__ import annotations

import math
import os
from html import escape
from pathlib import Path
from typing import Iterable, Sequence

from engines.files import write_atomic
from station_app.report.data import CaptureRow
from station_app.report.images import ImageSource, ImageUnavailable, overlay_uri, thumbnail_uri

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1320px; padding: 12px 24px 48px; color: #1c1c1c;
       font-size: 14px; line-height: 1.4; }
h1 { font-size: 24px; margin: 8px 0 4px; }
h2 { font-size: 19px; margin: 28px 0 8px; padding-top: 8px; border-top: 2px solid #ddd; }
h3 { font-size: 15px; margin: 16px 0 6px; }
p.meta, p.note { color: #555; margin: 2px 0; }
p.note { font-size: 12.5px; }
nav a { margin-right: 12px; color: #1f6fb4; text-decoration: none; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid #d5d5d5; padding: 4px 8px; }
th { background: #f2f4f7; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.ci, span.ci { color: #666; font-size: 11.5px; font-weight: normal; }
tr.best td.num.top { font-weight: 700; }
td.muted { color: #888; font-style: italic; }
.summary { display: flex; gap: 14px; flex-wrap: wrap; margin: 10px 0; }
.summary div { background: #f2f4f7; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.summary b { display: block; font-size: 20px; }
.summary .warn { background: #fff1e0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart { border: 1px solid #e3e3e3; border-radius: 4px; background: #fff; }
.gallery { display: flex; flex-direction: column; gap: 10px; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: 8px; background: #fafafa; }
.tile .caption { font-size: 13px; margin-bottom: 6px; }
.tile .caption b { font-size: 14px; }
.tile .images { display: flex; gap: 8px; flex-wrap: wrap; align-items: flex-start; }
figure { margin: 0; text-align: center; font-size: 11.5px; color: #555; }
figure img { display: block; max-width: 256px; max-height: 256px; border: 1px solid #ccc; }
.missing { width: 160px; height: 160px; display: flex; align-items: center;
           justify-content: center; background: #eee; color: #777; border: 1px dashed #bbb;
           font-size: 12px; padding: 6px; box-sizing: border-box; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 9px; font-size: 12px;
         color: #fff; margin-left: 4px; }
.OK { background: #2a9d3a; } .REVIEW { background: #e0a100; } .DAMAGED { background: #d62728; }
.yes { color: #1a7f37; font-weight: 700; } .no { color: #888; }
"""


def page(title: str, body: str) -> str:
    """A complete HTML document with the shared inline style."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{body}</body></html>\n")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *,
          classes: Sequence[str] | None = None) -> str:
    """A table from already-escaped cell HTML; ``classes`` per column (e.g. 'num')."""
    head = "".join(f"<th>{header}</th>" for header in headers)
    body = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            css = classes[index] if classes and index < len(classes) else ""
            cells.append(f'<td class="{css}">{cell}</td>' if css else f"<td>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def number(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def badge(verdict: str | None) -> str:
    return f'<span class="badge {escape(verdict)}">{escape(verdict)}</span>' if verdict else ""


def _figure(label: str, make_uri) -> str:
    try:
        uri = make_uri()
    except ImageUnavailable as reason:
        return (f'<figure><div class="missing">{escape(str(reason))}</div>'
                f'{escape(label)}</figure>')
    return f'<figure><img alt="{escape(label)}" src="{uri}">{escape(label)}</figure>'


def capture_tile(row: CaptureRow, score: float, verdict: str | None, *,
                 max_references: int = 2) -> str:
    """Tray image, heatmap overlay, item crop and references of one capture, with caption."""
    images = row.images
    base: ImageSource = images.crop if images.heatmap_on == "crop" else images.tray
    truth = row.severity + (f" ({', '.join(row.defect_types)})" if row.defect_types else "")
    if row.lookalike:
        truth += ", look-alike"
    figures = [_figure("tray", lambda: thumbnail_uri(images.tray)),
               _figure(f"heatmap on {images.heatmap_on}",
                       lambda: overlay_uri(base, images.heatmap)),
               _figure("item crop", lambda: thumbnail_uri(images.crop))]
    references = list(images.references)[:max_references]
    if references:
        figures += [_figure(f"reference {index + 1}", lambda source=source: thumbnail_uri(source))
                    for index, source in enumerate(references)]
    else:
        figures.append('<figure><div class="missing">no reference for this item</div>'
                       'reference</figure>')
    caption = (f'<div class="caption"><b>{escape(row.capture_id)}</b> · score '
               f'<b>{number(score, 3)}</b>{badge(verdict)} · truth: {escape(truth)} · item '
               f'{escape(row.item_identifier)} · {escape(row.material)}</div>')
    return f'<div class="tile">{caption}<div class="images">{"".join(figures)}</div></div>'


def write_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write beside the target and rename over it, so readers never see half a report."""
    return write_atomic(path, text)