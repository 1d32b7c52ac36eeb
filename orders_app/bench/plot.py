"""A dependency-free SVG line chart: stacked panels sharing a time axis, a few series each."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
WIDTH, PANEL_HEIGHT, LEFT, RIGHT, TOP, GAP = 900, 220, 70, 20, 40, 50


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[float, float]]  # (seconds, value)


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    series: list[Series]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def render_svg(title: str, panels: list[Panel]) -> str:
    t_max = max((x for panel in panels for s in panel.series for x, _ in s.points), default=1.0) or 1.0
    height = TOP + len(panels) * (PANEL_HEIGHT + GAP) + 10
    plot_width = WIDTH - LEFT - RIGHT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
             f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>']
    for index, panel in enumerate(panels):
        top = TOP + index * (PANEL_HEIGHT + GAP) + 20
        y_max = _nice_max(max((y for s in panel.series for _, y in s.points), default=1.0))
        parts.append(f'<text x="{LEFT}" y="{top - 8}" font-weight="bold">{escape(panel.title)}</text>')
        for tick in range(5):
            value = y_max * tick / 4
            y = top + PANEL_HEIGHT - PANEL_HEIGHT * tick / 4
            parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
        for tick in range(6):
            x = LEFT + plot_width * tick / 5
            parts.append(f'<text x="{x:.1f}" y="{top + PANEL_HEIGHT + 16}" text-anchor="middle">'
                         f'{t_max * tick / 5:.1f} s</text>')
        parts.append(f'<text x="12" y="{top + PANEL_HEIGHT / 2}" transform="rotate(-90 12 {top + PANEL_HEIGHT / 2})" '
                     f'text-anchor="middle">{escape(panel.unit)}</text>')
        for number, series in enumerate(panel.series):
            color = COLORS[number % len(COLORS)]
            points = " ".join(f"{LEFT + plot_width * x / t_max:.1f},{top + PANEL_HEIGHT - PANEL_HEIGHT * y / y_max:.1f}"
                              for x, y in series.points)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{points}"/>')
            parts.append(f'<text x="{WIDTH - RIGHT - 5}" y="{top + 14 * (number + 1)}" text-anchor="end" '
                         f'fill="{color}">{escape(series.label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
