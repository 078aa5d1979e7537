"""Small inline SVG charts for the support pages: no JavaScript, no external assets.

Every mark has a <title>, so hovering shows what it is, and the pages keep a table beside each
chart for people who would rather read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH = 900
LABEL_WIDTH = 150
ROW_HEIGHT = 34


@dataclass(frozen=True)
class Mark:
    at: datetime
    color: str
    title: str
    shape: str = "dot"  # "dot" or "tick"


@dataclass(frozen=True)
class Lane:
    label: str
    marks: Sequence[Mark]


def timeline_svg(*, start: datetime, end: datetime, lanes: Sequence[Lane], title: str) -> SafeString:
    """Lanes of marks along one time axis (events, polls, notifications)."""
    span = max((end - start).total_seconds(), 1.0)
    plot = WIDTH - LABEL_WIDTH - 20
    height = ROW_HEIGHT * len(lanes) + 40

    def x(at: datetime) -> float:
        offset = min(max((at - start).total_seconds(), 0.0), span)
        return round(LABEL_WIDTH + plot * offset / span, 1)

    parts = []
    for i, lane in enumerate(lanes):
        y = 20 + i * ROW_HEIGHT + ROW_HEIGHT / 2
        parts.append(
            format_html(
                '<text x="4" y="{}" class="lane-label">{}</text><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>',
                y + 4,
                lane.label,
                LABEL_WIDTH,
                y,
                WIDTH - 20,
                y,
            )
        )
        for mark in lane.marks:
            if mark.shape == "tick":
                parts.append(
                    format_html(
                        '<rect x="{}" y="{}" width="3" height="18" fill="{}" class="mark"><title>{}</title></rect>',
                        x(mark.at) - 1.5,
                        y - 9,
                        mark.color,
                        mark.title,
                    )
                )
            else:
                parts.append(
                    format_html(
                        '<circle cx="{}" cy="{}" r="5" fill="{}" class="mark"><title>{}</title></circle>',
                        x(mark.at),
                        y,
                        mark.color,
                        mark.title,
                    )
                )
    axis_y = height - 12
    for at, anchor in ((start, "start"), (end, "end")):
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="{}" class="axis">{} UTC</text>',
                x(at),
                axis_y,
                anchor,
                f"{at:%Y-%m-%d %H:%M}",
            )
        )
    return format_html(
        '<svg class="support-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="100%">'
        "<title>{}</title>{}</svg>",
        title,
        WIDTH,
        height,
        title,
        mark_safe("".join(parts)),  # noqa: S308 - every part was built by format_html
    )


def bars_svg(*, rows: Sequence[tuple[str, int, int]], title: str) -> SafeString:
    """Horizontal bars: one per label, total calls in blue with the failed part in red."""
    biggest = max((total for _, total, _ in rows), default=0) or 1
    plot = WIDTH - LABEL_WIDTH - 120
    height = 24 * len(rows) + 10

    def bar(i: int, label: str, total: int, failed: int) -> tuple[object, ...]:
        y = 5 + i * 24
        w = round(plot * total / biggest, 1)
        wf = round(plot * failed / biggest, 1)
        rate = f"{100 * failed / total:.1f} %" if total else "–"
        return (
            y + 14,
            label,
            LABEL_WIDTH,
            y,
            w,
            label,
            total,
            LABEL_WIDTH,
            y,
            wf,
            failed,
            LABEL_WIDTH + w + 6,
            y + 14,
            total,
            rate,
        )

    body = format_html_join(
        "",
        '<text x="4" y="{}" class="lane-label">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="16" fill="#4a7ab5"><title>{}: {} calls</title></rect>'
        '<rect x="{}" y="{}" width="{}" height="16" fill="#c0392b"><title>{} failed</title></rect>'
        '<text x="{}" y="{}" class="axis">{} calls, {} failed</text>',
        (bar(i, *row) for i, row in enumerate(rows)),
    )
    return format_html(
        '<svg class="support-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="100%">'
        "<title>{}</title>{}</svg>",
        title,
        WIDTH,
        height,
        title,
        body,
    )


def columns_svg(*, rows: Sequence[tuple[datetime, int, int]], title: str) -> SafeString:
    """Vertical columns per hour: calls in blue, failed in red on top of the same baseline."""
    biggest = max((calls for _, calls, _ in rows), default=0) or 1
    n = max(len(rows), 1)
    step = (WIDTH - 40) / n
    chart_h = 120

    def column(i: int, hour: datetime, calls: int, errors: int) -> tuple[object, ...]:
        h = round(chart_h * calls / biggest, 1)
        he = round(chart_h * errors / biggest, 1)
        x = round(20 + i * step, 1)
        label = f"{hour:%H:%M}: {calls} calls, {errors} failed"
        return (x, 10 + chart_h - h, round(step - 2, 1), h, label, x, 10 + chart_h - he, round(step - 2, 1), he, label)

    body = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#4a7ab5"><title>{}</title></rect>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#c0392b"><title>{}</title></rect>',
        (column(i, *row) for i, row in enumerate(rows)),
    )
    first = rows[0][0] if rows else None
    last = rows[-1][0] if rows else None
    axis = (
        format_html(
            '<text x="20" y="{}" class="axis">{}</text><text x="{}" y="{}" text-anchor="end" class="axis">{}</text>',
            chart_h + 28,
            f"{first:%Y-%m-%d %H:%M}",
            WIDTH - 20,
            chart_h + 28,
            f"{last:%H:%M} UTC",
        )
        if first and last
        else ""
    )
    return format_html(
        '<svg class="support-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="100%">'
        "<title>{}</title>{}{}</svg>",
        title,
        WIDTH,
        chart_h + 36,
        title,
        body,
        axis,
    )
