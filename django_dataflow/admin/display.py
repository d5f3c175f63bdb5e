"""HTML fragments the admin pages share: pretty-printed JSON and small tables."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

#: Longest JSON text shown on a page; bulk params and results can hold millions of rows.
MAX_SHOWN_CHARS = 100_000


def pretty_json(value: Any) -> SafeString:
    """The value as indented JSON in a <pre>, cut after MAX_SHOWN_CHARS characters."""
    if value is None or value == "":
        return format_html('<span class="quiet">{}</span>', "(none)")
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    cut = len(text) - MAX_SHOWN_CHARS
    if cut > 0:
        text = text[:MAX_SHOWN_CHARS] + f"\n... ({cut} more characters not shown)"
    return format_html('<pre class="dataflow-json">{}</pre>', text)


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, css: str = "dataflow-table"
) -> SafeString:
    """A plain HTML table; every cell is escaped unless it is already safe."""
    head = format_html_join("", "<th scope=\"col\">{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    if not body:
        return format_html('<span class="quiet">{}</span>', "(none)")
    return format_html(
        '<table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', css, head, body
    )
