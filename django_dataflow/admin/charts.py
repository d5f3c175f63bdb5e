"""Charts as inline SVG built on the server: no JavaScript, no chart library, no static build.

Every label passes through format_html (escaped); the numbers are the same ones the page's tables
show, so the charts are a view of the tables, never a second source of truth.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

#: Pixels: plot margins (left for the axis labels, bottom for the category labels).
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 36
#: Narrowest chart, in pixels.
MIN_WIDTH = 520
#: Category labels drawn at most this many times along the x axis.
MAX_X_LABELS = 12


def _join(parts: Sequence[SafeString]) -> SafeString:
    # Every part came from format_html, so it is escaped already.
    return mark_safe("".join(parts))


def _px(value: float) -> str:
    # format_html escapes its arguments to text first, so numbers are formatted here.
    return f"{value:.1f}"


def _number(value: float) -> str:
    return f"{value:g}" if value < 1e6 else f"{value:.3g}"


def stacked_bars(
    labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]], *, title: str,
    unit: str = "", height: int = 220,
) -> SafeString:
    """Vertical bars, one per label, stacked by series (name, colour, values per label)."""
    count = max(len(labels), 1)
    bar = max(8, min(48, 720 // count))
    # At least wide enough for the legend of five statuses.
    width = max(LEFT + RIGHT + count * bar, MIN_WIDTH)
    plot = height - TOP - BOTTOM
    totals = [sum(values[i] for _, _, values in series) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    parts = [_axis(width, height, top, unit)]
    step = max(1, -(-len(labels) // MAX_X_LABELS))
    for i, label in enumerate(labels):
        x = LEFT + i * bar
        y: float = TOP + plot
        for name, colour, values in series:
            value = values[i]
            if not value:
                continue
            h = plot * value / top
            y -= h
            parts.append(format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                '<title>{}: {} {}</title></rect>',
                x + 1, _px(y), bar - 2, _px(h), colour, label, _number(value), name,
            ))
        if i % step == 0:
            parts.append(format_html(
                '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
                x + bar // 2, height - BOTTOM + 14, label,
            ))
    parts.append(_legend([(name, colour) for name, colour, _ in series], height - 8))
    return _svg(width, height, title, parts)


def grouped_hbars(
    rows: Sequence[tuple[str, Sequence[float]]], series: Sequence[tuple[str, str]], *, title: str,
    unit: str = "s",
) -> SafeString:
    """Horizontal bars: one group per row label, one bar per series (e.g. p50 and p95)."""
    label_width, bar, gap = 190, 10, 8
    width = 640
    group = bar * len(series) + gap
    height = TOP + max(len(rows), 1) * group + 24
    top = max((v for _, values in rows for v in values), default=0) or 1
    span = width - label_width - 80
    parts = []
    for r, (label, values) in enumerate(rows):
        y = TOP + r * group
        parts.append(format_html(
            '<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>',
            label_width - 6, _px(y + bar * len(series) / 2 + 4), label,
        ))
        for s, ((name, colour), value) in enumerate(zip(series, values, strict=True)):
            w = span * value / top
            parts.append(format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} {}: {} {}</title></rect>'
                '<text x="{}" y="{}" font-size="9">{} {}</text>',
                label_width, y + s * bar, _px(max(w, 1)), bar - 1, colour, label, name, _number(value), unit,
                _px(label_width + max(w, 1) + 4), y + s * bar + bar - 2, _number(value), unit,
            ))
    parts.append(_legend(series, height - 8))
    return _svg(width, height, title, parts)


def _axis(width: int, height: int, top: float, unit: str) -> SafeString:
    plot = height - TOP - BOTTOM
    parts = [format_html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>', LEFT, TOP + plot, width - RIGHT, TOP + plot,
    )]
    for fraction in (0, 0.5, 1):
        y = TOP + plot - plot * fraction
        parts.append(format_html(
            '<text x="{}" y="{}" font-size="10" text-anchor="end">{}{}</text>'
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>',
            LEFT - 4, _px(y + 3), _number(round(top * fraction, 2)), unit,
            LEFT, _px(y), width - RIGHT, _px(y),
        ))
    return _join(parts)


def _legend(entries: Sequence[tuple[str, str]], y: int) -> SafeString:
    parts = []
    x = LEFT
    for name, colour in entries:
        parts.append(format_html(
            '<rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
            '<text x="{}" y="{}" font-size="10">{}</text>',
            x, y - 9, colour, x + 14, y, name,
        ))
        x += 24 + 7 * len(name)
    return _join(parts)


def _svg(
    width: int, height: int, title: str, parts: Sequence[SafeString], *, css: str = "dataflow-chart"
) -> SafeString:
    return format_html(
        '<svg class="{}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" '
        'height="{}" role="img" aria-label="{}"><title>{}</title>{}</svg>',
        css, width, height, width, height, title, title, _join(parts),
    )
