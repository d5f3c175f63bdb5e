"""The metrics (Prometheus text format) and health (JSON) views of django_dataflow.urls."""

from __future__ import annotations

import hmac
import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from django_dataflow import conf


def _authorised(request: HttpRequest) -> bool:
    """A staff session, or 'Authorization: Bearer <DATAFLOW['METRICS_TOKEN']>'."""
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    token = conf.metrics_token()
    header = request.headers.get("Authorization", "")
    if token is None or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """prometheus_client's exposition of every metric (a multiprocess collector when
    PROMETHEUS_MULTIPROC_DIR is set, as for Celery workers); 403 without a token or staff session."""
    if not _authorised(request):
        return HttpResponse(
            "metrics need a staff session or 'Authorization: Bearer <METRICS_TOKEN>'\n",
            status=403, content_type="text/plain",
        )
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """django_dataflow.health() as JSON: 200 when every check passes, 503 otherwise.

    Open to anyone (load balancers send no credentials); it names no secrets, only which
    dependency failed and the error's text.
    """
    from django_dataflow.monitoring import health as check

    report = check()
    return JsonResponse(report, status=200 if report["ok"] else 503)
