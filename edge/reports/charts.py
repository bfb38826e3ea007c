"""Small inline SVG charts (bars and lines) for the self-contained HTML report: no scripts, no external assets.

Every chart scales to its container (``viewBox`` with ``width: 100%``), names itself for screen readers and carries
each value in a ``<title>`` tooltip, so the numbers are in the file as well as the picture.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 36


@dataclass(frozen=True, slots=True)
class Series:
    """One named series of values (``None`` = no value) in one colour."""

    name: str
    values: Sequence[float | None]
    colour: str


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10.0 ** exponent
        if candidate >= value - 1e-12:
            return candidate
    return 10.0 ** (exponent + 1)


def _frame(title: str, top: float, fmt: Callable[[float], str], legend: Sequence[Series]) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" class="chart">',
             f"<title>{escape(title)}</title>"]
    lead = round(top / 10.0 ** math.floor(math.log10(top)))
    steps = 4 if lead == 2 else 5  # ticks on round numbers: 2 → 0.5 steps, 1 and 5 → 0.2 and 1
    for i in range(steps + 1):
        value = top * i / steps
        y = TOP + plot_h - plot_h * i / steps
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{escape(fmt(value))}'
                     "</text>")
    x = LEFT
    for series in legend:
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{series.colour}"/>')
        parts.append(f'<text x="{x + 16}" y="16" class="axis">{escape(series.name)}</text>')
        x += 24 + 7 * len(series.name)
    return parts


def _x_labels(labels: Sequence[str], centres: Sequence[float]) -> list[str]:
    every = max(1, math.ceil(len(labels) / 12))
    return [f'<text x="{cx:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" class="axis">{escape(label)}</text>'
            for i, (label, cx) in enumerate(zip(labels, centres, strict=True)) if i % every == 0]


def bar_chart(title: str, categories: Sequence[str], series: Sequence[Series],
              fmt: Callable[[float], str] = lambda v: f"{v:g}") -> str:
    """Grouped vertical bars, one group per category."""
    values = [v for s in series for v in s.values if v is not None]
    top = nice_max(max(values, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(title, top, fmt, series if len(series) > 1 else ())
    group = plot_w / max(1, len(categories))
    bar = group * 0.8 / max(1, len(series))
    centres = []
    for i, category in enumerate(categories):
        x0 = LEFT + i * group + group * 0.1
        centres.append(LEFT + (i + 0.5) * group)
        for k, s in enumerate(series):
            value = s.values[i]
            if value is None:
                continue
            h = plot_h * value / top
            parts.append(f'<rect x="{x0 + k * bar:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(bar - 1, 1):.1f}" '
                         f'height="{h:.1f}" fill="{s.colour}"><title>{escape(category)} {escape(s.name)}: '
                         f"{escape(fmt(value))}</title></rect>")
    parts += _x_labels(categories, centres)
    parts.append("</svg>")
    return "".join(parts)


def _polyline(points: Sequence[str], colour: str) -> list[str]:
    if not points:
        return []
    return [f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>']


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series],
               fmt: Callable[[float], str] = lambda v: f"{v:g}") -> str:
    """Lines over evenly spaced points (a gap where a value is ``None``); ``labels`` name the points."""
    values = [v for s in series for v in s.values if v is not None]
    top = nice_max(max(values, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(title, top, fmt, series)
    n = max(1, len(labels))
    xs = [LEFT + plot_w * (i + 0.5) / n for i in range(len(labels))]
    for s in series:
        run: list[str] = []
        for x, value in zip(xs, s.values, strict=True):
            if value is None:
                parts += _polyline(run, s.colour)
                run = []
            else:
                run.append(f"{x:.1f},{TOP + plot_h - plot_h * value / top:.1f}")
        parts += _polyline(run, s.colour)
    hour_labels = [(label, x) for label, x in zip(labels, xs, strict=True) if label.endswith(":00")]
    if hour_labels:
        parts += _x_labels([label for label, _ in hour_labels], [x for _, x in hour_labels])
    parts.append("</svg>")
    return "".join(parts)
