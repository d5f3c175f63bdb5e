"""GET runs/: its query parameters, checked strictly, and its pages, cut by a keyset cursor on
(created_at, run_id) rather than an offset, so that a page never repeats or skips a run when new
runs arrive or several share a created_at."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from django_dataflow.api.errors import ApiError
from django_dataflow.models import RunStatus, WorkflowRun

#: The query parameters GET runs/ takes; any other is a 400.
PARAMS = ("status", "definition", "limit", "cursor")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: Columns a summary does not show: loading them would read every run's payloads for nothing.
_PAYLOADS = ("workflow", "inputs", "results")
_DIGITS = re.compile(r"[0-9]{1,4}")


@dataclass(frozen=True)
class RunQuery:
    """GET runs/'s validated parameters."""

    statuses: tuple[str, ...] = ()
    definition: str | None = None
    limit: int = DEFAULT_LIMIT
    after: tuple[dt.datetime, uuid.UUID] | None = None

    def next_query(self, last: WorkflowRun) -> str:
        """The query string of the page after the one ending with `last`."""
        params: dict[str, str | int] = {}
        if self.statuses:
            params["status"] = ",".join(self.statuses)
        if self.definition is not None:
            params["definition"] = self.definition
        params["limit"] = self.limit
        params["cursor"] = encode_cursor(last)
        return urlencode(params)


def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, "BadRequest", message, details={"param": param})


def _single(query: QueryDict, param: str) -> str | None:
    values = query.getlist(param)
    if len(values) > 1:
        raise _bad(param, f"?{param} may be given once, not {len(values)} times")
    return values[0] if values else None


def parse(query: QueryDict) -> RunQuery:
    """The parameters of GET runs/, or a 400 naming the first bad one."""
    unknown = sorted(set(query) - set(PARAMS))
    if unknown:
        raise ApiError(
            400, "BadRequest", f"unknown query parameters {unknown}; valid: {', '.join(PARAMS)}",
            details={"param": unknown[0], "unknown": unknown},
        )
    statuses: list[str] = []
    for value in query.getlist("status"):
        for status in value.split(","):
            status = status.strip()
            if status not in RunStatus.values:
                raise _bad("status", f"?status {status[:40]!r} is not a run status; valid: "
                                     f"{', '.join(RunStatus.values)}")
            if status not in statuses:
                statuses.append(status)
    definition = _single(query, "definition")
    if definition is not None and not definition.strip():
        raise _bad("definition", "?definition must name a workflow definition")
    limit = _single(query, "limit")
    if limit is not None and not (_DIGITS.fullmatch(limit) and 1 <= int(limit) <= MAX_LIMIT):
        raise _bad("limit", f"?limit must be a whole number from 1 to {MAX_LIMIT}, not {limit[:20]!r}")
    cursor = _single(query, "cursor")
    return RunQuery(
        statuses=tuple(statuses),
        definition=definition,
        limit=DEFAULT_LIMIT if limit is None else int(limit),
        after=None if cursor is None else decode_cursor(cursor),
    )


def encode_cursor(run: WorkflowRun) -> str:
    """The opaque cursor of the page after `run` (its created_at and run_id)."""
    created = run.created_at
    if timezone.is_aware(created):
        created = created.astimezone(dt.UTC)
    raw = f"{created.isoformat()}|{run.run_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """(created_at, run_id) from a cursor encode_cursor() made, or a 400 naming ?cursor."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        created, run_id = raw.decode().split("|")
        key = (dt.datetime.fromisoformat(created), uuid.UUID(run_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad("cursor", "?cursor is not a cursor this API gave out (take it from 'next')") from None
    if timezone.is_aware(key[0]) != settings.USE_TZ:
        raise _bad("cursor", "?cursor is not a cursor this API gave out (take it from 'next')")
    return key


def page(runs: QuerySet[WorkflowRun], query: RunQuery) -> tuple[list[WorkflowRun], bool]:
    """The runs of one page, newest first, and whether more follow."""
    if query.statuses:
        runs = runs.filter(status__in=query.statuses)
    if query.definition is not None:
        runs = runs.filter(definition=query.definition)
    if query.after is not None:
        created, run_id = query.after
        # The redundant created_at <= bound gives an index on (..., created_at) a range to scan.
        runs = runs.filter(
            Q(created_at__lt=created) | Q(created_at=created, run_id__lt=run_id), created_at__lte=created
        )
    rows = list(runs.defer(*_PAYLOADS).order_by("-created_at", "-run_id")[: query.limit + 1])
    return rows[: query.limit], len(rows) > query.limit
