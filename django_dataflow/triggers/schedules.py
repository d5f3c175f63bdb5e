"""Schedules: DefinitionSchedule rows kept in sync with django-celery-beat's PeriodicTask rows.

Each schedule owns one PeriodicTask named ``django_dataflow.schedule.<pk>`` that sends the
``django_dataflow.fire_schedule`` task; ``celery beat -S django`` (DatabaseScheduler) runs it. The
task reads the schedule row (the one source of truth; the PeriodicTask's kwargs mirror it for the
beat admin), applies the overlap policy and submits the run through CeleryRuntime.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import zlib
from typing import TYPE_CHECKING, Any, NamedTuple

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from django_dataflow import tenancy
from django_dataflow.triggers.origin import Origin, start

if TYPE_CHECKING:
    from django_dataflow.models import DefinitionSchedule, WorkflowDefinition

logger = logging.getLogger("django_dataflow.triggers")

#: The Celery task every schedule's PeriodicTask sends (django_dataflow/tasks.py).
FIRE_TASK = "django_dataflow.fire_schedule"
#: Names of the PeriodicTask rows this module owns start with this.
TASK_PREFIX = "django_dataflow.schedule."
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def beat_installed() -> bool:
    """Whether django-celery-beat is in INSTALLED_APPS."""
    return apps.is_installed("django_celery_beat")


def require_beat() -> None:
    """ImproperlyConfigured (saying what to install) unless django-celery-beat is installed."""
    if not beat_installed():
        raise ImproperlyConfigured(
            "workflow schedules are stored by django-celery-beat: pip install 'django-dataflow[schedules]' "
            "and add 'django_celery_beat' to INSTALLED_APPS"
        )


def crontab_parts(text: str) -> dict[str, str]:
    """The five crontab fields by name ('*/5 * * * *' -> minute='*/5', ...); ValueError when invalid."""
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(
            f"crontab {text!r} must have 5 fields (minute hour day-of-month month day-of-week), "
            f"not {len(parts)}"
        )
    from celery.schedules import crontab

    try:  # celery's own parser: what beat will evaluate
        crontab(**dict(zip(CRONTAB_FIELDS, parts, strict=True)))
    except Exception as exc:  # celery raises ValueError or its ParseException
        raise ValueError(f"crontab {text!r} is invalid: {exc}") from exc
    return dict(zip(CRONTAB_FIELDS, parts, strict=True))


def schedule_problems(schedule: DefinitionSchedule) -> dict[str, list[str]]:
    """Field -> problems: a crontab or an interval (exactly one), valid values, one tenant choice."""
    problems: dict[str, list[str]] = {}
    has_crontab, has_interval = bool(schedule.crontab.strip()), schedule.interval_seconds is not None
    if has_crontab == has_interval:
        problems["crontab"] = ["give either a crontab or interval_seconds (exactly one)"]
    elif has_crontab:
        try:
            crontab_parts(schedule.crontab)
        except ValueError as exc:
            problems["crontab"] = [str(exc)]
    elif schedule.interval_seconds is not None and schedule.interval_seconds < 1:
        problems["interval_seconds"] = ["interval_seconds must be at least 1"]
    if not isinstance(schedule.inputs, dict):
        problems["inputs"] = [f"inputs must be a dict, not {type(schedule.inputs).__name__}"]
    if schedule.all_tenants and schedule.tenant:
        problems["tenant"] = ["give a tenant or all_tenants, not both"]
    return problems


def sync_schedule(schedule: DefinitionSchedule) -> Any:
    """Create or update the schedule's PeriodicTask from the row (and its definition); returns it."""
    require_beat()
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    using = schedule._state.db or "default"
    definition = schedule.definition
    crontab = interval = None
    if schedule.crontab.strip():
        crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
            **crontab_parts(schedule.crontab), timezone=timezone.get_default_timezone_name()
        )
    else:
        interval, _ = IntervalSchedule.objects.using(using).get_or_create(
            every=schedule.interval_seconds, period=IntervalSchedule.SECONDS
        )
    from django_dataflow import conf

    kwargs = {
        "schedule_id": schedule.pk, "definition": definition.name, "inputs": schedule.inputs,
        "tenant": schedule.tenant, "all_tenants": schedule.all_tenants, "overlap": schedule.overlap,
    }
    task, _ = PeriodicTask.objects.using(using).update_or_create(
        name=schedule.task_name,
        defaults={
            "task": FIRE_TASK, "crontab": crontab, "interval": interval,
            "kwargs": json.dumps(kwargs, sort_keys=True), "queue": conf.celery_queue(),
            "enabled": schedule.enabled and definition.enabled,
            "description": f"django-dataflow: runs workflow definition {definition.name!r}",
        },
    )
    return task


def remove_schedule(schedule: DefinitionSchedule) -> None:
    """Delete the schedule's PeriodicTask (nothing when django-celery-beat is absent)."""
    if beat_installed():
        from django_celery_beat.models import PeriodicTask

        PeriodicTask.objects.using(schedule._state.db or "default").filter(name=schedule.task_name).delete()


def sync_definition(definition: WorkflowDefinition) -> None:
    """Bring the PeriodicTasks of a definition's schedules in line with it (enabled or not)."""
    for schedule in definition.schedules.all():
        schedule.definition = definition
        sync_schedule(schedule)


class SyncResult(NamedTuple):
    """What sync_all() did."""

    written: int
    removed: int


def sync_all(using: str = "default") -> SyncResult:
    """Rebuild every schedule's PeriodicTask and delete ones whose schedule is gone."""
    require_beat()
    from django_celery_beat.models import PeriodicTask

    from django_dataflow.models import DefinitionSchedule

    with transaction.atomic(using=using):
        schedules = list(DefinitionSchedule.objects.using(using).select_related("definition"))
        for schedule in schedules:
            sync_schedule(schedule)
        names = {s.task_name for s in schedules}
        stale = PeriodicTask.objects.using(using).filter(name__startswith=TASK_PREFIX).exclude(name__in=names)
        removed, _ = stale.delete()
    return SyncResult(len(schedules), removed)


def next_run(schedule: DefinitionSchedule, now: dt.datetime | None = None) -> dt.datetime | None:
    """When beat next fires the schedule's PeriodicTask (None when missing or disabled)."""
    if not beat_installed():
        return None
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.using(schedule._state.db or "default").filter(name=schedule.task_name).first()
    if task is None or not task.enabled:
        return None
    now = now or timezone.now()
    last = task.last_run_at or task.date_changed or now  # what beat's DatabaseScheduler assumes
    beat_schedule = task.schedule
    beat_schedule.nowfun = lambda: now  # celery's schedules compute "remaining" from their own clock
    return now + beat_schedule.remaining_estimate(last)


def _tenants(schedule: DefinitionSchedule) -> list[str | None]:
    if not schedule.all_tenants:
        return [schedule.tenant or None]
    from django_dataflow.tenancy import TenantError, tenants_enabled

    if not tenants_enabled():
        raise TenantError(
            f"schedule {schedule.pk} of {schedule.definition_id!r} runs for all tenants, "
            "but django-tenants is not installed"
        )
    from django_tenants.utils import get_public_schema_name, get_tenant_model

    public = get_public_schema_name()
    schemas = get_tenant_model().objects.exclude(schema_name=public).values_list("schema_name", flat=True)
    return sorted(schemas)


def fire(schedule_id: int, using: str | None = None) -> list[dict[str, Any]]:
    """What beat's task does: one run per tenant of the schedule, unless overlap says skip."""
    from django_dataflow import conf

    using = using or conf.database()
    # Schedules are shared rows and name their tenants: read and fire them from the public schema,
    # whatever schema the calling connection was left in (tenant=None must not mean that schema).
    with tenancy.public_scope(using):
        return _fire(schedule_id, using)


def _fire(schedule_id: int, using: str) -> list[dict[str, Any]]:
    from django_dataflow.models import DefinitionSchedule

    schedule = (
        DefinitionSchedule.objects.using(using).select_related("definition").filter(pk=schedule_id).first()
    )
    if schedule is None:
        logger.warning("schedule %s no longer exists; run manage.py dataflow_schedules --sync", schedule_id)
        return [{"state": "missing", "schedule": schedule_id}]
    if not (schedule.enabled and schedule.definition.enabled):
        return [{"state": "disabled", "schedule": schedule_id}]
    return [_fire_for(schedule, tenant, using) for tenant in _tenants(schedule)]


def _fire_for(schedule: DefinitionSchedule, tenant: str | None, using: str) -> dict[str, Any]:
    from django_dataflow.models import DefinitionSchedule, OverlapPolicy, WorkflowRun
    from django_dataflow.runtime.records import RESTARTABLE

    name = schedule.definition.name
    rows = DefinitionSchedule.objects.using(using).filter(pk=schedule.pk)
    with transaction.atomic(using=using):
        if schedule.overlap == OverlapPolicy.SKIP:
            _serialise(using, f"{name}\0{tenant or ''}")
            # A tenant's runs are in its own schema: look for the unfinished one there.
            with tenancy.tenant_scope(tenant, using):
                previous = (
                    WorkflowRun.objects.using(using)
                    .filter(definition=name, tenant=tenant or "", status__in=RESTARTABLE)
                    .values_list("run_id", flat=True).first()
                )
            if previous is not None:
                rows.update(skipped_fires=F("skipped_fires") + 1, last_skipped_at=timezone.now())
                logger.warning(
                    "schedule %s of %r: fire skipped, run %s for tenant %r has not finished (overlap=skip)",
                    schedule.pk, name, previous, tenant,
                )
                return {"state": "skipped", "tenant": tenant, "running": str(previous)}
        origin = Origin({"kind": "schedule", "schedule": schedule.pk})
        handle = start(name, schedule.inputs, origin=origin, tenant=tenant, using=using)
        rows.update(last_fired_at=timezone.now(), last_run_id=handle.run_id)
    return {"state": "started", "tenant": tenant, "run_id": handle.run_id}


def _serialise(using: str, key: str) -> None:
    # Two fires of one definition and tenant at once (beat twice, a manual fire) must not both see
    # "nothing running": PostgreSQL serialises them until the transaction (with the new run) commits.
    # SQLite's one writer at a time already does.
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x0DF1, zlib.crc32(key.encode()) - 2**31])
