"""The account page's activity chart: a stacked bar per day, drawn server-side as inline SVG.

Only geometry lives here; `templates/accounts/_activity_chart.html` draws it, and the colours
come from the stylesheet (the pages' Content-Security-Policy allows no inline styles).
"""

from __future__ import annotations

from dataclasses import dataclass

from .selectors import ACTIVITY_CATEGORIES, DayActivity

WIDTH = 400  # sized for a phone; on wider screens the stylesheet caps how far it grows
HEIGHT = 200
PLOT_TOP = 16
PLOT_BOTTOM = 168  # the day labels sit below this line
PLOT_LEFT = 30
PLOT_RIGHT = WIDTH - 8


@dataclass(frozen=True)
class Segment:
    category: str
    label: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    center: float
    label: str
    date_label: str
    total: int
    total_y: float
    segments: list[Segment]


@dataclass(frozen=True)
class Gridline:
    y: float
    value: int


@dataclass(frozen=True)
class ActivityChart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_bottom: int
    bars: list[Bar]
    gridlines: list[Gridline]
    legend: list[tuple[str, str]]
    total: int
    busiest: DayActivity | None


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, … at or above `value`, so gridlines land on round numbers."""
    step = 1
    while True:
        for multiple in (1, 2, 5):
            if step * multiple >= value:
                return step * multiple
        step *= 10


def activity_chart_build(days: list[DayActivity]) -> ActivityChart:
    top = _nice_ceiling(max([d.total for d in days] + [4]))
    scale = (PLOT_BOTTOM - PLOT_TOP) / top
    slot = (PLOT_RIGHT - PLOT_LEFT) / max(len(days), 1)
    bar_width = slot * 0.6
    labels = dict((key, label) for key, label, _ in ACTIVITY_CATEGORIES)
    bars: list[Bar] = []
    for index, day in enumerate(days):
        y = float(PLOT_BOTTOM)
        segments: list[Segment] = []
        for key, _, _ in ACTIVITY_CATEGORIES:
            count = day.counts.get(key, 0)
            if not count:
                continue
            height = count * scale
            y -= height
            segments.append(
                Segment(category=key, label=labels[key], count=count, y=round(y, 1), height=round(height, 1))
            )
        bars.append(
            Bar(
                x=round(PLOT_LEFT + index * slot + (slot - bar_width) / 2, 1),
                width=round(bar_width, 1),
                center=round(PLOT_LEFT + index * slot + slot / 2, 1),
                label=day.day.strftime("%a"),
                date_label=day.day.strftime("%a %-d %b"),
                total=day.total,
                total_y=round(y - 4, 1),
                segments=segments,
            )
        )
    gridlines = [Gridline(y=round(PLOT_BOTTOM - v * scale, 1), value=v) for v in (0, top // 2, top)]
    busiest = max(days, key=lambda d: d.total) if days and any(d.total for d in days) else None
    return ActivityChart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=PLOT_LEFT,
        plot_right=PLOT_RIGHT,
        plot_bottom=PLOT_BOTTOM,
        bars=bars,
        gridlines=gridlines,
        legend=[(key, label) for key, label, _ in ACTIVITY_CATEGORIES],
        total=sum(d.total for d in days),
        busiest=busiest,
    )
