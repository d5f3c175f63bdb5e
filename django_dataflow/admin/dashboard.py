"""The dashboard page inside the admin: runs per status over time, node latency, rows written,
cache hit rate and failing definitions (numbers from admin/stats.py, charts from admin/charts.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from django_dataflow import conf
from django_dataflow.admin import charts, stats
from django_dataflow.models import RunStatus

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

#: Windows the page links to; ?days= accepts any whole number from 1 to conf.MAX_DASHBOARD_DAYS.
WINDOWS = (1, 7, 14, 30, 90)

STATUS_COLOURS = {
    RunStatus.SUCCEEDED: "#2e7d32",
    RunStatus.FAILED: "#c62828",
    RunStatus.CANCELLED: "#757575",
    RunStatus.RUNNING: "#1565c0",
    RunStatus.PENDING: "#f9a825",
}


def window_days(request: HttpRequest) -> int:
    """?days=N within 1..MAX_DASHBOARD_DAYS; the setting's default when absent or not a number."""
    raw = request.GET.get("days", "")
    days = int(raw) if raw.isdigit() else conf.admin_dashboard_days()
    return max(1, min(days, conf.MAX_DASHBOARD_DAYS))


def dashboard_view(model_admin: ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Render the dashboard for the window the request asks for."""
    days = window_days(request)
    data = stats.collect(days)
    labels = [day.strftime("%m-%d") for day in data.days]
    status_series = [
        (str(label), STATUS_COLOURS[RunStatus(value)],
         [data.runs_per_day.get(day, {}).get(value, 0) for day in data.days])
        for value, label in RunStatus.choices
    ]
    latency_chart = charts.grouped_hbars(
        [(item.node_type, [item.p50, item.p95]) for item in data.node_latency],
        [("p50", "#64b5f6"), ("p95", "#1565c0")], title="Node latency p50/p95 (seconds)",
    ) if data.node_latency else None
    rows_chart = charts.stacked_bars(
        labels, [("rows written", "#6a1b9a", [data.rows_written_per_day.get(d, 0) for d in data.days])],
        title="Rows written per day",
    )
    runs_chart = charts.stacked_bars(labels, status_series, title="Runs per day by status")
    rate = data.cache_hit_rate
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Dataflow dashboard",
        "opts": model_admin.opts,
        "data": data,
        "days": days,
        "windows": WINDOWS,
        "runs_chart": runs_chart,
        "latency_chart": latency_chart,
        "rows_chart": rows_chart,
        "status_rows": [(label, data.status_totals.get(value, 0)) for value, label in RunStatus.choices],
        "total_runs": sum(data.status_totals.values()),
        "cache_hit_rate": None if rate is None else f"{rate:.1%}",
        "runs_per_day_rows": [
            (day, *[data.runs_per_day.get(day, {}).get(value, 0) for value in RunStatus.values])
            for day in data.days if day in data.runs_per_day
        ],
        "status_labels": [label for _, label in RunStatus.choices],
    }
    return TemplateResponse(request, "admin/django_dataflow/dashboard.html", context)
