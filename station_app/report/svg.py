"""Small inline-SVG charts (line charts and class histograms) for self-contained reports.

matplotlib is not a station dependency, and a report must open with no network, so the
few chart kinds the reports need are drawn here as plain SVG text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Sequence

import numpy as np

PALETTE = ("#1f6fb4", "#d62728", "#2a9d3a", "#8e5bbf", "#e07b00", "#7f5539", "#17a2b8")
CLASS_COLOURS = {"non-defective": "#2a9d3a", "minor": "#e0a100", "major": "#d62728"}

_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 58, 16, 30, 48
_MAX_POINTS = 1500


@dataclass
class Series:
    """A named polyline; ``step`` draws it as a staircase (for PR curves)."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    colour: str
    dashed: bool = False
    step: bool = False
    width: float = 2.0


@dataclass
class Marker:
    """A labelled point on a chart (a chosen threshold)."""

    x: float
    y: float
    label: str
    colour: str = "#111"


@dataclass
class VerticalLine:
    """A labelled vertical rule (a station threshold)."""

    x: float
    label: str
    colour: str = "#555"
    dashed: bool = True


@dataclass
class Chart:
    """Axes, ranges and labels shared by every chart kind."""

    title: str
    x_label: str
    y_label: str
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)
    width: int = 470
    height: int = 340
    series: list[Series] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    vertical_lines: list[VerticalLine] = field(default_factory=list)
    legend_position: str = "bottom-right"  # "top-right", "bottom-left", "top-left", "above"

    @property
    def top(self) -> int:
        """Top of the plot area; an "above" legend takes a row under the title."""
        return _MARGIN_TOP + (20 if self.legend_position == "above" else 0)

    # ---------------------------------------------------------------- geometry
    def _x(self, value: float) -> float:
        low, high = self.x_range
        plot_width = self.width - _MARGIN_LEFT - _MARGIN_RIGHT
        return _MARGIN_LEFT + (value - low) / (high - low or 1) * plot_width

    def _y(self, value: float) -> float:
        low, high = self.y_range
        plot_height = self.height - self.top - _MARGIN_BOTTOM
        return self.height - _MARGIN_BOTTOM - (value - low) / (high - low or 1) * plot_height

    # ---------------------------------------------------------------- drawing
    def to_svg(self, extra: str = "") -> str:
        """The chart as an ``<svg>`` element; ``extra`` is drawn under the series."""
        parts = [f'<svg class="chart" role="img" '
                 f'width="{self.width}" height="{self.height}" '
                 f'viewBox="0 0 {self.width} {self.height}" font-family="sans-serif">',
                 f'<title>{escape(self.title)}</title>',
                 f'<text x="{self.width / 2:.1f}" y="18" text-anchor="middle" '
                 f'font-size="14" font-weight="600">{escape(self.title)}</text>']
        parts.append(self._axes())
        parts.append(extra)
        for index, line in enumerate(self.vertical_lines):
            parts.append(self._vertical(line, index))
        for series in self.series:
            parts.append(self._polyline(series))
        for marker in self.markers:
            parts.append(self._marker(marker))
        parts.append(self._legend())
        parts.append("</svg>")
        return "".join(parts)

    def _axes(self) -> str:
        left, right = _MARGIN_LEFT, self.width - _MARGIN_RIGHT
        top, bottom = self.top, self.height - _MARGIN_BOTTOM
        parts = [f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
                 f'fill="#fff" stroke="#999"/>']
        for tick in nice_ticks(*self.x_range):
            x = self._x(tick)
            parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" '
                         f'stroke="#eee"/><text x="{x:.1f}" y="{bottom + 15}" font-size="11" '
                         f'text-anchor="middle">{_tick_text(tick)}</text>')
        for tick in nice_ticks(*self.y_range):
            y = self._y(tick)
            parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
                         f'stroke="#eee"/><text x="{left - 6}" y="{y + 4:.1f}" font-size="11" '
                         f'text-anchor="end">{_tick_text(tick)}</text>')
        parts.append(f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}"'
                     f' fill="none" stroke="#666"/>')
        parts.append(f'<text x="{(left + right) / 2:.1f}" y="{self.height - 10}" font-size="12" '
                     f'text-anchor="middle">{escape(self.x_label)}</text>')
        middle = (top + bottom) / 2
        parts.append(f'<text x="14" y="{middle:.1f}" font-size="12" text-anchor="middle" '
                     f'transform="rotate(-90 14 {middle:.1f})">{escape(self.y_label)}</text>')
        return "".join(parts)

    def _polyline(self, series: Series) -> str:
        xs, ys = _thin(np.asarray(series.xs, float), np.asarray(series.ys, float))
        keep = np.isfinite(xs) & np.isfinite(ys)
        xs, ys = xs[keep], ys[keep]
        if xs.size == 0:
            return ""
        if series.step and xs.size > 1:
            xs = np.repeat(xs, 2)[1:]
            ys = np.repeat(ys, 2)[:-1]
        points = " ".join(f"{self._x(x):.1f},{self._y(y):.1f}" for x, y in zip(xs, ys))
        dash = ' stroke-dasharray="6 4"' if series.dashed else ""
        return (f'<polyline fill="none" stroke="{series.colour}" stroke-width="{series.width}"'
                f'{dash} stroke-linejoin="round" points="{points}"><title>'
                f'{escape(series.name)}</title></polyline>')

    def _marker(self, marker: Marker) -> str:
        if not (math.isfinite(marker.x) and math.isfinite(marker.y)):
            return ""
        x, y = self._x(marker.x), self._y(marker.y)
        anchor = "end" if x > self.width * 0.6 else "start"
        dx = -8 if anchor == "end" else 8
        return (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{marker.colour}" '
                f'stroke="#fff" stroke-width="1.5"/><text x="{x + dx:.1f}" y="{y - 7:.1f}" '
                f'font-size="11" text-anchor="{anchor}" fill="{marker.colour}" '
                f'paint-order="stroke" stroke="#fff" stroke-width="3">'
                f'{escape(marker.label)}</text>')

    def _vertical(self, line: VerticalLine, index: int = 0) -> str:
        low, high = self.x_range
        if not (math.isfinite(line.x) and low <= line.x <= high):
            return ""
        x = self._x(line.x)
        dash = ' stroke-dasharray="4 3"' if line.dashed else ""
        label_y = self.top + 12 + 14 * index  # staggered so neighbouring labels never collide
        return (f'<line x1="{x:.1f}" y1="{self.top}" x2="{x:.1f}" '
                f'y2="{self.height - _MARGIN_BOTTOM}" stroke="{line.colour}" '
                f'stroke-width="1.5"{dash}/><text x="{x + 3:.1f}" y="{label_y}" '
                f'font-size="11" fill="{line.colour}" paint-order="stroke" stroke="#fff" '
                f'stroke-width="3">{escape(line.label)}</text>')

    def _legend(self) -> str:
        entries = [(s.name, s.colour, s.dashed) for s in self.series if s.name]
        if not entries:
            return ""
        if self.legend_position == "above":
            return self._legend_row(entries)
        row_height, box_width = 16, max(len(name) for name, _, _ in entries) * 6.4 + 34
        box_height = row_height * len(entries) + 8
        right = self.position_right(box_width)
        top = (self.top + 6 if self.legend_position.startswith("top")
               else self.height - _MARGIN_BOTTOM - box_height - 6)
        parts = [f'<rect x="{right:.1f}" y="{top}" width="{box_width:.1f}" '
                 f'height="{box_height}" fill="#fff" fill-opacity="0.9" stroke="#ccc"/>']
        for index, (name, colour, dashed) in enumerate(entries):
            y = top + 12 + index * row_height
            dash = ' stroke-dasharray="6 4"' if dashed else ""
            parts.append(f'<line x1="{right + 6:.1f}" y1="{y}" x2="{right + 26:.1f}" y2="{y}" '
                         f'stroke="{colour}" stroke-width="2.5"{dash}/><text '
                         f'x="{right + 30:.1f}" y="{y + 4}" font-size="11">{escape(name)}'
                         f'</text>')
        return "".join(parts)

    def _legend_row(self, entries: list[tuple[str, str, bool]]) -> str:
        """Entries side by side under the title, centred."""
        widths = [len(name) * 6.2 + 36 for name, _, _ in entries]
        x = (self.width - sum(widths)) / 2
        y = _MARGIN_TOP + 6
        parts = []
        for (name, colour, dashed), width in zip(entries, widths):
            dash = ' stroke-dasharray="6 4"' if dashed else ""
            parts.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x + 20:.1f}" y2="{y}" '
                         f'stroke="{colour}" stroke-width="2.5"{dash}/><text x="{x + 24:.1f}" '
                         f'y="{y + 4}" font-size="11">{escape(name)}</text>')
            x += width
        return "".join(parts)

    def position_right(self, box_width: float) -> float:
        if self.legend_position.endswith("left"):
            return _MARGIN_LEFT + 6
        return self.width - _MARGIN_RIGHT - box_width - 6


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2 or 5 times a power of ten)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_text(value: float) -> str:
    return f"{value:g}"


def _thin(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most _MAX_POINTS evenly spaced points (ends kept), to keep the file small."""
    if xs.size <= _MAX_POINTS:
        return xs, ys
    index = np.unique(np.linspace(0, xs.size - 1, _MAX_POINTS).round().astype(int))
    return xs[index], ys[index]


def class_histogram(title: str, scores_by_class: dict[str, np.ndarray], *,
                    bins: int = 30, value_range: tuple[float, float] | None = None,
                    vertical_lines: Sequence[VerticalLine] = (), width: int = 470,
                    height: int = 340, x_label: str = "score") -> str:
    """Overlaid per-class histograms, each normalised to its class size (share of class).

    Classes differ in size by orders of magnitude (few major defects, many good items);
    normalising each makes their overlap, which is what thresholds cut, visible.
    """
    present = {name: np.asarray(values, float) for name, values in scores_by_class.items()
               if len(values)}
    if value_range is None:
        every = np.concatenate(list(present.values())) if present else np.array([0.0, 1.0])
        value_range = (min(0.0, float(every.min())), max(1.0, float(every.max())))
    edges = np.linspace(value_range[0], value_range[1], bins + 1)
    shares = {name: np.histogram(values, edges)[0] / values.size
              for name, values in present.items()}
    top = max((float(share.max()) for share in shares.values()), default=1.0)
    chart = Chart(title, x_label, "share of class", value_range, (0.0, _round_up(top)),
                  width=width, height=height, vertical_lines=list(vertical_lines),
                  legend_position="above")
    bars = []
    for index, (name, share) in enumerate(shares.items()):
        colour = CLASS_COLOURS.get(name, PALETTE[index % len(PALETTE)])
        outline_x = np.repeat(edges, 2)[1:-1]
        outline_y = np.repeat(share, 2)
        path = " ".join(f"{chart._x(x):.1f},{chart._y(y):.1f}"
                        for x, y in zip(outline_x, outline_y))
        base_left = f"{chart._x(edges[0]):.1f},{chart._y(0):.1f}"
        base_right = f"{chart._x(edges[-1]):.1f},{chart._y(0):.1f}"
        bars.append(f'<polygon points="{base_left} {path} {base_right}" fill="{colour}" '
                    f'fill-opacity="0.18" stroke="none"/>')
        label = f"{name} (n={present[name].size})"
        chart.series.append(Series(label, outline_x, outline_y, colour, width=1.8))
    return chart.to_svg(extra="".join(bars))


def _round_up(value: float) -> float:
    """A tidy axis top a little above ``value``."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for multiple in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if multiple * magnitude >= value * 1.05:
            return multiple * magnitude
    return 10 * magnitude
