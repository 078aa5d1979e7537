"""The one way the service draws charts, for the account page and the support console alike.

Geometry lives here; `templates/charts/bars.html` and `templates/charts/timeline.html` draw it, and
`static/charts.css` colours it. The marks are an SVG that stretches to the width it is given; every
word (axis values, labels, legend) is ordinary HTML text beside it, so it stays readable on a phone
instead of shrinking with the drawing, and nothing runs as script or loads from outside the service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from accounts.formatting import when

from .selectors import ACTIVITY_CATEGORIES, DayActivity

# The drawing's own units; the browser stretches them to the page's width (preserveAspectRatio="none").
PLOT_WIDTH = 1000
PLOT_HEIGHT = 200
LANE_HEIGHT = 24


@dataclass(frozen=True)
class Series:
    key: str  # the CSS class `series-<key>` colours it
    label: str


@dataclass(frozen=True)
class Segment:
    series: Series
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    x: float
    width: float
    label: str  # under the axis ("" where labels would crowd)
    title: str  # what hovering says
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class BarChart:
    title: str
    y_label: str
    x_label: str
    width: int
    height: int
    columns: list[Column]
    y_ticks: list[int]  # top first, as the axis reads
    gridlines: list[float]
    legend: list[Series]
    summary: str  # one sentence a screen reader (or a person in a hurry) reads instead

    @property
    def empty(self) -> bool:
        return not any(c.total for c in self.columns)


def _axis_top(value: int) -> int:
    """The smallest of 2, 4, 10, 20, 40, 100, … at or above `value`: round numbers, with a whole middle tick."""
    step = 1
    while True:
        for multiple in (2, 4, 10):
            if step * multiple >= value:
                return step * multiple
        step *= 10


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def bar_chart_build(
    *,
    title: str,
    y_label: str,
    x_label: str,
    series: Sequence[Series],
    columns: Sequence[tuple[str, str, Mapping[str, int]]],
    label_every: int = 1,
    unit: tuple[str, str] = ("event", "events"),
    period: str = "",
) -> BarChart:
    """Stacked columns: one per (label, title, counts by series key), series stacked in the given order."""
    top = _axis_top(max([sum(c.values()) for _, _, c in columns] + [1]))
    scale = PLOT_HEIGHT / top
    slot = PLOT_WIDTH / max(len(columns), 1)
    built: list[Column] = []
    for index, (label, column_title, counts) in enumerate(columns):
        y = float(PLOT_HEIGHT)
        segments = []
        for s in series:
            n = counts.get(s.key, 0)
            if not n:
                continue
            y -= n * scale
            segments.append(Segment(series=s, count=n, y=round(y, 2), height=round(n * scale, 2)))
        total = sum(counts.get(s.key, 0) for s in series)
        parts = ", ".join(f"{seg.count} {seg.series.label.lower()}" for seg in segments)
        built.append(
            Column(
                x=round(index * slot + slot * 0.15, 2),
                width=round(slot * 0.7, 2),
                # Thinned labels skip the last column: centred under it, one would run past the chart's edge.
                label=label if label_every == 1 or (index % label_every == 0 and index < len(columns) - 1) else "",
                title=f"{column_title}: {_count(total, *unit)}" + (f" ({parts})" if parts else ""),
                total=total,
                segments=segments,
            )
        )
    busiest = max(built, key=lambda c: c.total, default=None)
    total = sum(c.total for c in built)
    summary = (
        f"{_count(total, *unit)} {period}; the busiest was {columns[built.index(busiest)][1]}, with {busiest.total}."
        if busiest and total
        else f"No {unit[1]} {period}."
    )
    return BarChart(
        title=title,
        y_label=y_label,
        x_label=x_label,
        width=PLOT_WIDTH,
        height=PLOT_HEIGHT,
        columns=built,
        y_ticks=[top, top // 2, 0],
        gridlines=[0.0, PLOT_HEIGHT / 2, float(PLOT_HEIGHT)],
        legend=list(series),
        summary=summary,
    )


ACTIVITY_SERIES = [Series(key, label) for key, label, _ in ACTIVITY_CATEGORIES]


def activity_chart_build(days: list[DayActivity]) -> BarChart:
    """The account page's week: what happened to the person's devices each day."""
    return bar_chart_build(
        title="Device activity per day, last 7 days",
        y_label="Changes",
        x_label="Day (UTC)",
        series=ACTIVITY_SERIES,
        columns=[(d.day.strftime("%a"), d.day.strftime("%A %-d %b"), d.counts) for d in days],
        unit=("change", "changes"),
        period="in the last 7 days",
    )


# --- Timelines: marks along one time axis, one lane per kind of thing -----------------------------


@dataclass(frozen=True)
class Mark:
    at: datetime
    kind: str  # the CSS class `mark-<kind>` colours it
    title: str
    href: str = ""


@dataclass(frozen=True)
class PlacedMark:
    x: float
    kind: str
    title: str
    href: str


@dataclass(frozen=True)
class Lane:
    label: str
    marks: Sequence[Mark]
    placed: list[PlacedMark] = field(default_factory=list)


@dataclass(frozen=True)
class Timeline:
    title: str
    width: int
    height: int
    lanes: list[Lane]
    start_label: str
    middle_label: str
    end_label: str
    legend: list[Series]

    @property
    def mark_count(self) -> int:
        return sum(len(lane.placed) for lane in self.lanes)


def timeline_build(
    *, title: str, start: datetime, end: datetime, lanes: Sequence[Lane], legend: Sequence[Series]
) -> Timeline:
    span = max((end - start).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        offset = min(max((at - start).total_seconds(), 0.0), span)
        return round(PLOT_WIDTH * offset / span, 1)

    placed = [
        Lane(
            label=lane.label,
            marks=lane.marks,
            placed=[
                PlacedMark(x=min(max(x(m.at) - 4, 0), PLOT_WIDTH - 8), kind=m.kind, title=m.title, href=m.href)
                for m in lane.marks
            ],
        )
        for lane in lanes
    ]
    return Timeline(
        title=title,
        width=PLOT_WIDTH,
        height=LANE_HEIGHT,
        lanes=placed,
        start_label=when(start),
        middle_label=when(start + (end - start) / 2),
        end_label=when(end),
        legend=list(legend),
    )
