"""Small server-rendered SVG charts: bars and lines, styled by the console's stylesheet.

The charts carry no inline styles or scripts, so they pass a strict Content-Security-Policy, and
each one is an `img` with a title and a description for screen readers; the pages put the same
figures in a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 230
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 26, 36


def nice_step(raw: float, whole: bool) -> float:
    """Return the smallest round step (1, 2, 2.5 or 5 times a power of ten) at or above raw."""
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        # Counts get whole-number steps: "2.5 people" on an axis reads as nonsense.
        if step >= raw and (not whole or step == int(step)):
            return step
    return 10 * power  # pragma: no cover  (the loop always returns)


def scale(value: float, whole: bool = True) -> tuple[float, int]:
    """Return a round axis maximum at or above a value, and how many steps divide it."""
    if value <= 0:
        return (4.0 if whole else 1.0), 4
    best: tuple[float, int] | None = None
    for ticks in (4, 5, 3):
        step = nice_step(value / ticks, whole)
        if whole:
            step = max(step, 1)
        top = step * ticks
        if best is None or top < best[0]:
            best = (top, ticks)
    assert best is not None
    return best


def nice_ceiling(value: float) -> float:
    """Return the round axis maximum for a value."""
    return scale(value, whole=False)[0]


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _axis(top_value: float, ticks: int, plot_height: float, unit: str) -> list[str]:
    parts = []
    for step in range(ticks + 1):
        value = top_value * step / ticks
        y = TOP + plot_height - plot_height * step / ticks
        parts.append(
            f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="chart-tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_number(value))}</text>"
        )
    if unit:
        parts.append(
            f'<text class="chart-tick" x="{LEFT - 6}" y="{TOP - 10}" text-anchor="end">'
            f"{escape(unit)}</text>"
        )
    return parts


def _open(chart_id: str, title: str, description: str) -> str:
    return (
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        f'preserveAspectRatio="xMidYMid meet">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>'
    )


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    chart_id: str,
    title: str,
    description: str,
    unit: str = "",
    highlight: Collection[int] = (),
    highlight_class: str = "chart-bar-hl",
    label_every: int = 1,
    whole: bool = True,
) -> Markup:
    """Return an SVG bar chart; bars at the `highlight` indexes stand out."""
    if len(labels) != len(values):
        raise ValueError("a bar chart needs one label per value")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value, ticks = scale(max(values, default=0), whole)
    parts = [_open(chart_id, title, description), *_axis(top_value, ticks, plot_h, unit)]
    band = plot_w / max(len(values), 1)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot_h * value / top_value
        x = LEFT + band * index + band * 0.15
        y = TOP + plot_h - height
        css = f"chart-bar {highlight_class}" if index in highlight else "chart-bar"
        parts.append(
            f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{band * 0.7:.1f}" '
            f'height="{max(height, 0):.1f}"><title>{escape(label)}: {escape(_number(value))}'
            f"</title></rect>"
        )
        if index % max(label_every, 1) == 0:
            parts.append(
                f'<text class="chart-label" x="{LEFT + band * (index + 0.5):.1f}" '
                f'y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append(
        f'<line class="chart-axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
        f'y1="{TOP + plot_h}" y2="{TOP + plot_h}"/></svg>'
    )
    return Markup("".join(parts))


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    chart_id: str,
    title: str,
    description: str,
    unit: str = "",
    label_every: int = 1,
) -> Markup:
    """Return an SVG line chart of one or more series; a None value breaks its line."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    present = [v for _, values in series for v in values if v is not None]
    top_value, ticks = scale(max(present, default=0), whole=False)
    parts = [_open(chart_id, title, description), *_axis(top_value, ticks, plot_h, unit)]
    step = plot_w / max(len(labels) - 1, 1)

    def point(index: int, value: float) -> tuple[float, float]:
        return LEFT + step * index, TOP + plot_h - plot_h * value / top_value

    for number, (name, values) in enumerate(series):
        if len(values) != len(labels):
            raise ValueError("a line chart needs one label per value in each series")
        runs: list[list[tuple[float, float]]] = [[]]
        for index, value in enumerate(values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append(point(index, value))
            x, y = point(index, value)
            parts.append(
                f'<circle class="chart-dot s{number}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                f"<title>{escape(name)}, {escape(labels[index])}: {escape(_number(value))}"
                f"{escape(' ' + unit if unit else '')}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(f'<polyline class="chart-line s{number}" points="{path}"/>')
        # The key sits above the plot, so it never covers a line.
        legend_x = LEFT + 8 + number * 140
        parts.append(
            f'<rect class="chart-key s{number}" x="{legend_x}" y="6" width="14" height="4"/>'
            f'<text class="chart-tick" x="{legend_x + 18}" y="12">{escape(name)}</text>'
        )
    for index, label in enumerate(labels):
        if index % max(label_every, 1) == 0:
            x, _ = point(index, 0)
            parts.append(
                f'<text class="chart-label" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append(
        f'<line class="chart-axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
        f'y1="{TOP + plot_h}" y2="{TOP + plot_h}"/></svg>'
    )
    return Markup("".join(parts))


def day_bar(
    spans: Sequence[tuple[int, int, str]], *, label: str, width: int = 96, height: int = 10
) -> Markup:
    """Return a 24-hour strip with the given (start minute, end minute, css class) spans."""
    parts = [
        f'<svg class="daybar" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(label)}">'
        f'<rect class="daybar-bg" x="0" y="0" width="{width}" height="{height}"/>'
    ]
    for start, end, css in spans:
        x = width * start / 1440
        w = max(width * (end - start) / 1440, 0.5)
        parts.append(
            f'<rect class="daybar-span {escape(css)}" x="{x:.2f}" y="0" width="{w:.2f}" '
            f'height="{height}"/>'
        )
    for hour in (6, 12, 18):
        x = width * hour / 24
        parts.append(f'<line class="daybar-tick" x1="{x}" x2="{x}" y1="0" y2="{height}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
