"""Charts for the dashboard, drawn on the server as inline SVG (no script, no CDN, nothing fetched).

A government network may forbid pages that call out or run third-party code, so the dashboard's
one chart is plain SVG markup: it prints, it reads without JavaScript, and each bar carries its
day, series and count as ``data-`` attributes and a ``<title>`` (the browser test reads them back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

#: Widest bar drawn (a chart of few days keeps slim bars).
MAX_BAR_WIDTH = 48.0
#: Colours for the series, in order (colour-blind-safe Okabe-Ito palette, darkened for contrast).
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7f6d00", "#444444")


@dataclass(frozen=True)
class Bar:
    """One drawn segment of a stacked bar."""

    day: str
    series: str
    count: int
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True)
class StackedBarChart:
    """A stacked bar chart laid out, ready to render: bars, axis ticks and a legend."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    days: tuple[str, ...]
    series: tuple[tuple[str, str], ...]  # (name, colour)
    ticks: tuple[tuple[int, float], ...]  # (value, y)
    plot_left: float
    plot_bottom: float
    plot_right: float
    label_every: int

    def svg(self, title: str) -> str:
        """The chart as an inline ``<svg>`` element whose accessible name is ``title``."""
        out = [
            (f'<svg class="chart" viewBox="0 0 {self.width} {self.height}" width="100%" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'),
            f"<title>{escape(title)}</title>",
        ]
        for value, y in self.ticks:
            out.append(f'<line class="grid" x1="{self.plot_left:.1f}" x2="{self.plot_right:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>')
            out.append(f'<text class="tick" x="{self.plot_left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
        out.append(f'<line class="axis" x1="{self.plot_left:.1f}" x2="{self.plot_right:.1f}" '
                   f'y1="{self.plot_bottom:.1f}" y2="{self.plot_bottom:.1f}"/>')
        for bar in self.bars:
            out.append(
                f'<rect class="bar" x="{bar.x:.2f}" y="{bar.y:.2f}" width="{bar.width:.2f}" height="{bar.height:.2f}" '
                f'fill="{bar.colour}" data-day="{escape(bar.day)}" data-series="{escape(bar.series)}" '
                f'data-count="{bar.count}"><title>{escape(bar.day)} · {escape(bar.series)}: {bar.count}</title></rect>'
            )
        slot = (self.plot_right - self.plot_left) / max(len(self.days), 1)
        for i, day in enumerate(self.days):
            if (len(self.days) - 1 - i) % self.label_every == 0:  # the latest day always labelled
                x = self.plot_left + slot * (i + 0.5)
                out.append(f'<text class="day" x="{x:.1f}" y="{self.plot_bottom + 16:.1f}" text-anchor="middle">{escape(day[5:])}</text>')
        x = self.plot_left
        for name, colour in self.series:
            out.append(f'<rect class="key" x="{x:.1f}" y="8" width="12" height="12" fill="{colour}"/>')
            out.append(f'<text class="legend" x="{x + 16:.1f}" y="18">{escape(name)}</text>')
            x += 24 + 8 * len(name)
        out.append("</svg>")
        return "".join(out)


def _nice_step(maximum: int, ticks: int = 4) -> int:
    """A round step (1, 2, 5 × 10^k) so that ``ticks`` steps cover ``maximum``."""
    raw = max(maximum / ticks, 1)
    power = 1
    while power * 10 <= raw:
        power *= 10
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


def stacked_bars(
    counts: Mapping[str, Mapping[str, int]],
    *,
    days: Sequence[str] | None = None,
    width: int = 760,
    height: int = 260,
) -> StackedBarChart:
    """Lay out ``counts[day][series] = n`` (days as ISO dates) as stacked bars, one bar per day.

    ``days`` fixes the x axis (e.g. every day of a window, empty ones included); by default the
    days that have counts, in order. Series keep a stable colour: sorted by name.
    """
    axis_days = tuple(days) if days is not None else tuple(sorted(counts))
    names = sorted({name for per_day in counts.values() for name in per_day})
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    left, right, top, bottom = 44.0, width - 12.0, 30.0, height - 26.0
    peak = max((sum(counts.get(day, {}).values()) for day in axis_days), default=0)
    step = _nice_step(peak)
    top_value = max(step * -(-peak // step), step)
    scale = (bottom - top) / top_value
    slot = (right - left) / max(len(axis_days), 1)
    bar_width = min(max(slot * 0.7, 1.0), MAX_BAR_WIDTH)
    bars: list[Bar] = []
    for i, day in enumerate(axis_days):
        base = bottom
        x = left + slot * i + (slot - bar_width) / 2
        for name in names:
            n = int(counts.get(day, {}).get(name, 0))
            if n <= 0:
                continue
            h = n * scale
            base -= h
            bars.append(Bar(day, name, n, x, base, bar_width, h, colours[name]))
    ticks = tuple((v, bottom - v * scale) for v in range(0, top_value + 1, step))
    label_every = max(1, -(-len(axis_days) // 10))
    return StackedBarChart(width, height, tuple(bars), axis_days, tuple((n, colours[n]) for n in names), ticks,
                           left, bottom, right, label_every)
