"""The API's views: the node catalog, runs of definitions and ad-hoc workflows, the list of runs, a
run, its events, cancelling it, and the OpenAPI document. Each runs the workflow with user= (model
permissions)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from django_dataflow import conf
from django_dataflow.api import listing, openapi
from django_dataflow.api.body import object_field, read_json
from django_dataflow.api.catalog import catalog
from django_dataflow.api.endpoint import endpoint
from django_dataflow.api.errors import ApiError, not_found
from django_dataflow.api.serializers import events_json, run_json, run_summary
from django_dataflow.exceptions import DataflowError, WorkflowValidationError
from django_dataflow.models import RunStatus, WorkflowRun
from django_dataflow.runtime.celery import CeleryRuntime
from django_dataflow.runtime.handle import RunHandle
from django_dataflow.tenancy import request_tenant

#: The custom permission POST runs/ (an ad-hoc workflow body) needs.
ADHOC_PERMISSION = "django_dataflow.run_adhoc_workflow"
#: Seeing other users' runs.
VIEW_ALL_PERMISSION = "django_dataflow.view_workflowrun"
#: The admin's cancel action needs the same permission.
CANCEL_ANY_PERMISSION = "django_dataflow.cancel_workflowrun"
_TRUE, _FALSE = {"1", "true", "yes"}, {"", "0", "false", "no"}


@endpoint("GET")
def nodes(request: HttpRequest, user: Any) -> HttpResponse:
    """GET nodes/: every node type with the JSON Schema of its params."""
    from django_dataflow.registry import registry

    return JsonResponse(catalog(registry().entries()))


@endpoint("POST")
def definition_runs(request: HttpRequest, user: Any, name: str) -> HttpResponse:
    """POST workflows/<name>/runs: run a WorkflowDefinition (202; 200 when ?wait=1 saw it finish)."""
    from django_dataflow.runtime.definitions import get_definition

    wait = _wait_param(request)
    body = read_json(request, allowed={"inputs"})
    inputs = object_field(body, "inputs")
    try:
        definition = get_definition(name, using=conf.database())
    except WorkflowValidationError as exc:
        raise not_found(str(exc)) from None
    handle = CeleryRuntime(using=conf.database()).submit(
        definition, inputs, tenant=request_tenant(request), user=user
    )
    return _submitted(handle, wait)


@endpoint("GET", "POST")
def runs(request: HttpRequest, user: Any) -> HttpResponse:
    """runs/: GET lists the runs the caller may see; POST runs an ad-hoc workflow."""
    if request.method == "GET":
        return _list_runs(request, user)
    return _adhoc_run(request, user)


def _list_runs(request: HttpRequest, user: Any) -> HttpResponse:
    """GET runs/: the visible runs, newest first, a page at a time (docs/api.md, Listing runs)."""
    query = listing.parse(request.GET)
    rows, more = listing.page(_runs(request, user), query)
    next_url = f"{reverse('django_dataflow_api:runs')}?{query.next_query(rows[-1])}" if more else None
    return JsonResponse({"runs": [run_summary(run) for run in rows], "next": next_url})


def _adhoc_run(request: HttpRequest, user: Any) -> HttpResponse:
    """POST runs/: run the workflow in the body (needs django_dataflow.run_adhoc_workflow)."""
    from django_dataflow.workflow.graph import Workflow

    if not user.has_perm(ADHOC_PERMISSION):
        raise ApiError(
            403, "PermissionDenied", f"running an ad-hoc workflow needs permission '{ADHOC_PERMISSION}'",
            details={"permission": ADHOC_PERMISSION},
        )
    wait = _wait_param(request)
    body = read_json(request, allowed={"workflow", "inputs"}, required={"workflow"})
    inputs = object_field(body, "inputs")
    workflow = Workflow.from_dict(body["workflow"])
    handle = CeleryRuntime(using=conf.database()).submit(
        workflow, inputs, tenant=request_tenant(request), user=user
    )
    return _submitted(handle, wait)


@endpoint("GET")
def run_detail(request: HttpRequest, user: Any, run_id: str) -> HttpResponse:
    """GET runs/<id>: the run's status, results or error."""
    return JsonResponse(run_json(_visible_run(request, user, run_id)))


@endpoint("GET")
def run_events(request: HttpRequest, user: Any, run_id: str) -> HttpResponse:
    """GET runs/<id>/events: what happened so far, and a running bulk node's progress."""
    run = _visible_run(request, user, run_id)
    progress = None
    if run.status == RunStatus.RUNNING:
        try:
            handle = RunHandle.for_record(run, using=conf.database())
        except Exception:  # no Celery app here (not installed, bad CELERY_APP): progress is best effort
            handle = None
        progress = handle.live_progress(run) if handle is not None else None
    return JsonResponse(events_json(run, progress))


@endpoint("POST")
def run_cancel(request: HttpRequest, user: Any, run_id: str) -> HttpResponse:
    """POST runs/<id>/cancel: cancel a pending run; 409 once a worker started it or it finished."""
    run = _visible_run(request, user, run_id)
    if str(run.user_id) != str(user.pk) and not user.has_perm(CANCEL_ANY_PERMISSION):
        raise ApiError(
            403, "PermissionDenied",
            f"cancelling another user's run needs permission '{CANCEL_ANY_PERMISSION}'",
            details={"permission": CANCEL_ANY_PERMISSION},
        )
    if not RunHandle.for_run(run_id, using=conf.database()).cancel():
        run.refresh_from_db()
        raise ApiError(
            409, "Conflict", f"run {run_id} is {run.status}; only pending runs can be cancelled",
            details={"status": run.status},
        )
    run.refresh_from_db()
    return JsonResponse(run_json(run))


@endpoint("GET", auth=False)
def schema(request: HttpRequest, user: Any) -> HttpResponse:
    """GET schema/: the OpenAPI 3.1 document of this API."""
    return JsonResponse(openapi.document())


@endpoint("GET", "POST", "PUT", "PATCH", "DELETE", auth=False)
def unknown(request: HttpRequest, user: Any, path: str = "") -> HttpResponse:
    """Any other URL under the API's prefixes: a JSON 404 rather than Django's HTML page."""
    raise not_found(f"no API endpoint at {request.path}")


# -- helpers


def _wait_param(request: HttpRequest) -> bool:
    value = request.GET.get("wait", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, "BadRequest", f"?wait must be 1 or 0, not {value[:20]!r}", details={"param": "wait"})


def _submitted(handle: RunHandle, wait: bool) -> HttpResponse:
    """202 with the run, or 200 when ?wait=1 saw it finish within API_MAX_WAIT_SECONDS."""
    if wait:
        try:
            handle.wait(conf.api_max_wait_seconds())
        except DataflowError:
            pass  # failed, cancelled or still running: the row says which
    run = handle.record()
    finished = run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
    body = run_json(run)
    response = JsonResponse(body, status=200 if finished else 202)
    response["Location"] = body["links"]["self"]
    return response


def _runs(request: HttpRequest, user: Any) -> QuerySet[WorkflowRun]:
    """The runs this user may see: of the request's tenant; their own unless they may view all."""
    runs = WorkflowRun.objects.using(conf.database()).filter(tenant=request_tenant(request) or "")
    if not user.has_perm(VIEW_ALL_PERMISSION):
        runs = runs.filter(user_id=str(user.pk))
    return runs


def _visible_run(request: HttpRequest, user: Any, run_id: str) -> WorkflowRun:
    try:
        key = uuid.UUID(run_id)
    except ValueError:
        raise not_found(f"no run {run_id[:64]!r}: run ids are UUIDs") from None
    run = _runs(request, user).filter(pk=key).first()
    if run is None:  # another user's run is "not found" too: its existence is not revealed
        raise not_found(f"no run {key}")
    return run
