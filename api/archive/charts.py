"""Small server-side SVG charts (no JavaScript): a multi-series line chart and a bar chart.

Every text that reaches the SVG is escaped. Colours are presentation attributes (allowed by the
Content-Security-Policy, unlike ``style`` attributes); the palette is Okabe-Ito plus a few
darker tones, distinguishable with common colour-vision deficiencies. Each chart is an
``<svg role="img">`` labelled by its ``<title>``/``<desc>``; the pages put the same numbers in a
``<table>`` next to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = (
    "#0072b2",
    "#d55e00",
    "#009e73",
    "#cc79a7",
    "#8a6d00",
    "#56b4e9",
    "#6a3d9a",
    "#e69f00",
    "#1b4f72",
    "#7f7f7f",
    "#b22222",
    "#2e8b57",
)
WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 40
MAX_X_LABELS = 8


@dataclass
class Series:
    key: str
    label: str
    values: list[int]
    color: str = ""


def color(n: int) -> str:
    return PALETTE[n % len(PALETTE)]


def nice_max(value: float) -> tuple[float, float]:
    """(axis maximum, tick step) for values up to ``value``: 1, 2 or 5 × 10^k steps."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, 1.0)
    return math.ceil(value / step) * step, step


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _frame(
    uid: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    top: float,
    step: float,
    xpos: Callable[[int, int], float],
) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{uid}-t {uid}-d" xmlns="http://www.w3.org/2000/svg" '
        f'preserveAspectRatio="xMidYMid meet">',
        f'<title id="{uid}-t">{escape(title)}</title>',
        f'<desc id="{uid}-d">{escape(desc)}</desc>',
    ]
    ticks = round(top / step)
    for i in range(ticks + 1):
        value = step * i
        y = TOP + plot_h - plot_h * value / top
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
            f'stroke="#d0d0d0" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#333">{escape(_fmt(value))}</text>'
        )
    n = len(labels)
    every = max(1, math.ceil(n / MAX_X_LABELS))
    for i, label in enumerate(labels):
        if i % every and i != n - 1:
            continue
        x = xpos(i, n)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" font-size="12" '
            f'fill="#333">{escape(label)}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        f'stroke="#555" stroke-width="1"/>'
    )
    return parts


def _x(i: int, n: int) -> float:
    plot_w = WIDTH - LEFT - RIGHT
    if n <= 1:
        return LEFT + plot_w / 2
    return LEFT + plot_w * i / (n - 1)


def line_chart(
    uid: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series]
) -> Markup:
    """One polyline per series over the same x labels (periods)."""
    peak = max((v for s in series for v in s.values), default=0)
    top, step = nice_max(peak)
    plot_h = HEIGHT - TOP - BOTTOM
    parts = _frame(uid, title, desc, labels, top, step, _x)
    n = len(labels)
    for k, s in enumerate(series):
        stroke = s.color or color(k)
        points = [(_x(i, n), TOP + plot_h - plot_h * v / top) for i, v in enumerate(s.values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<g class="series" data-key="{escape(s.key)}">')
        if len(points) > 1:
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{stroke}" stroke-width="2" '
                f'stroke-linejoin="round"/>'
            )
        for (x, y), label, value in zip(points, labels, s.values, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{stroke}">'
                f"<title>{escape(s.label)} · {escape(label)}: {value}</title></circle>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    uid: str, title: str, desc: str, labels: Sequence[str], values: Sequence[int]
) -> Markup:
    """One bar per label."""
    top, step = nice_max(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(values), 1)
    slot = plot_w / n
    parts = _frame(uid, title, desc, labels, top, step, lambda i, _n: LEFT + slot * i + slot / 2)
    bar = max(1.0, slot * 0.7)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = LEFT + slot * i + (slot - bar) / 2
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {value}</title></rect>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def swatch(fill: str) -> Markup:
    """A small colour square for legends."""
    return Markup(
        f'<svg class="swatch" width="12" height="12" viewBox="0 0 12 12" aria-hidden="true" '
        f'focusable="false"><rect width="12" height="12" fill="{escape(fill)}"/></svg>'
    )
