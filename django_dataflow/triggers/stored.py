"""Stored model-change triggers: ModelTriggerRule rows loaded into on_commit_of()'s registry.

A row becomes a ModelTrigger (rule=its pk, static inputs) in model_events' registry, so it fires
through the very same code as on_commit_of(): on_commit, loop guard, bulk nodes, tenant. Loading
is lazy and throttled (docs/triggers.md#stored-triggers): a process reads the enabled rows on its
first database connection, again at its next request, Celery task or new connection once
DATAFLOW['TRIGGER_REFRESH_SECONDS'] have passed, and right after a row (or a definition) is saved
or deleted in it. Nothing is read at import or app-ready time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import DatabaseError, connections, transaction

from django_dataflow import conf
from django_dataflow.exceptions import valid_names
from django_dataflow.registry import get_entry, registry
from django_dataflow.triggers.model_events import EVENTS, ModelTrigger, replace_stored

if TYPE_CHECKING:
    from django_dataflow.models import ModelTriggerRule

logger = logging.getLogger("django_dataflow.triggers")

#: Inputs every triggered run gets from the change itself; a rule's static inputs may not set them.
RESERVED_INPUTS = ("event", "model", "pk", "pks")

_lock = threading.Lock()
#: time.monotonic() of the last load (None: never loaded), what was loaded (row fingerprints) and
#: the definitions the loaded rows start (by pk: saving one of them, e.g. a rename, reloads).
_state: dict[str, Any] = {"loaded_at": None, "fingerprint": None, "definitions": frozenset()}


def rule_problems(rule: ModelTriggerRule) -> dict[str, list[str]]:
    """Field -> problems: a registered model label, a known event and definition, free input keys."""
    from django_dataflow.models import WorkflowDefinition

    problems: dict[str, list[str]] = {}
    registered = valid_names(entry.label for entry in registry().entries())
    try:
        model = apps.get_model(rule.model) if isinstance(rule.model, str) else None
    except (LookupError, ValueError):
        model = None
    if model is None:
        problems["model"] = [
            f"model {rule.model!r} is not an installed model ('app_label.ModelName'); "
            f"registered models: {registered}"
        ]
    elif get_entry(model) is None:
        problems["model"] = [
            f"model {model._meta.label!r} is not registered with django_dataflow; "
            f"registered models: {registered}"
        ]
    else:
        rule.model = model._meta.label  # stored as Django spells it: 'shop.Customer'
    if rule.event not in EVENTS:
        problems["event"] = [f"unknown event {rule.event!r}; valid events: {valid_names(EVENTS)}"]
    if rule.definition_id is None:
        problems["definition"] = ["a workflow definition is required"]
    elif not WorkflowDefinition.objects.using(rule._state.db or conf.database()).filter(
        pk=rule.definition_id
    ).exists():
        problems["definition"] = [f"workflow definition {rule.definition_id!r} does not exist"]
    if not isinstance(rule.inputs, dict):
        problems["inputs"] = [f"inputs must be a dict, not {type(rule.inputs).__name__}"]
    elif reserved := sorted(set(rule.inputs) & set(RESERVED_INPUTS)):
        problems["inputs"] = [
            f"inputs may not set {', '.join(map(repr, reserved))}: the run always gets "
            f"{', '.join(RESERVED_INPUTS)} from the change"
        ]
    return problems


def refresh(using: str | None = None, *, wait: bool = True) -> int | None:
    """Read the enabled rows now and swap them into the trigger registry; returns how many there are.

    A database error (no table before migrate, no connection) keeps what was loaded before.
    wait=False: None at once when another thread (or this one, further up) is reading them.
    """
    if not _lock.acquire(blocking=wait):
        return None
    try:
        return _load(using or conf.database())
    finally:
        _lock.release()


def _load(using: str) -> int:
    from django_dataflow.models import ModelTriggerRule

    try:
        with _guarded(using):
            rows = list(
                ModelTriggerRule.objects.using(using).filter(enabled=True).order_by("pk").values_list(
                    "pk", "model", "event", "definition__name", "inputs", "per_row", "definition_id"
                )
            )
    except DatabaseError as exc:
        _state["loaded_at"] = time.monotonic()  # not again at every connection until the interval
        logger.debug("stored model-change triggers not read: %s", exc)
        return 0
    _state["loaded_at"] = time.monotonic()
    fingerprint = tuple((pk, model, event, name, repr(inputs), per_row)
                        for pk, model, event, name, inputs, per_row, _definition in rows)
    if fingerprint != _state["fingerprint"]:  # unchanged rows: the registry is left alone
        replace_stored([t for row in rows if (t := _trigger(*row[:6])) is not None])
        _state.update(fingerprint=fingerprint, definitions=frozenset(row[6] for row in rows))
    return len(rows)


def maybe_refresh(using: str | None = None) -> None:
    """refresh() when nothing was loaded yet or DATAFLOW['TRIGGER_REFRESH_SECONDS'] have passed.

    Called at check points (a connection, a request, a task), which it must never break: a failure
    (an invalid DATAFLOW setting, which the system checks report) is logged.
    """
    try:
        loaded_at = _state["loaded_at"]
        if loaded_at is not None:
            interval = conf.trigger_refresh_seconds()
            if interval is None or time.monotonic() - loaded_at < interval:
                return
        refresh(using, wait=False)
    except Exception:
        logger.exception("stored model-change triggers not read")


def reset() -> None:
    """Forget the loaded rows as if the table were empty (tests: a flush sends no signals)."""
    with _lock:
        _state.update(loaded_at=time.monotonic(), fingerprint=(), definitions=frozenset())
        replace_stored([])


@contextmanager
def _guarded(using: str) -> Iterator[None]:
    # Inside a caller's transaction a failed read must not leave it aborted (PostgreSQL): a savepoint.
    inside = connections[using].in_atomic_block
    with transaction.atomic(using=using) if inside else nullcontext():
        yield


def _trigger(
    pk: int, label: str, event: str, definition: str, inputs: Any, per_row: bool
) -> ModelTrigger | None:
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        model = None
    if model is None or get_entry(model) is None:
        # Another application sharing the database may register models this one does not have.
        logger.warning("stored trigger %s: model %r is not registered here; it does not fire", pk, label)
        return None
    static = inputs if isinstance(inputs, dict) else {}
    return ModelTrigger(model, event, definition, None, per_row, static=static, rule=pk)


# ----------------------------------------------------------------------------- the check points


def _connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    # The first connection of a process loads the rows (the connection is in autocommit here).
    try:
        ours = connection.alias == conf.database()
    except Exception:  # an invalid DATAFLOW setting: the system checks say so, connecting must work
        return
    if ours:
        maybe_refresh(connection.alias)


def _request_started(sender: Any, **kwargs: Any) -> None:
    maybe_refresh()


def _rule_changed(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    # A row saved or deleted in this process counts from its commit on (a rollback changes nothing).
    if not raw:
        transaction.on_commit(refresh_after_commit, using=instance._state.db or conf.database())


def _definition_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    # Only a definition that loaded rows start: its new name is what they start from now on.
    if not raw and instance.pk in _state["definitions"]:
        transaction.on_commit(refresh_after_commit, using=instance._state.db or conf.database())


def refresh_after_commit() -> None:
    """refresh() after a commit that changed rows or definitions (logged, never raised)."""
    try:
        refresh()
    except Exception:  # an on_commit callback must not turn a committed save into an error
        logger.exception("stored model-change triggers not reloaded")


def connect() -> None:
    """Connect the check points (idempotent: fixed dispatch uids); no query here."""
    from django.core.signals import request_started
    from django.db.backends.signals import connection_created
    from django.db.models.signals import post_delete, post_save

    from django_dataflow.models import ModelTriggerRule, WorkflowDefinition

    connection_created.connect(_connection_created, dispatch_uid="dataflow_stored_triggers_connection")
    request_started.connect(_request_started, dispatch_uid="dataflow_stored_triggers_request")
    uid = "dataflow_stored_triggers"
    post_save.connect(_rule_changed, sender=ModelTriggerRule, dispatch_uid=f"{uid}_save")
    post_delete.connect(_rule_changed, sender=ModelTriggerRule, dispatch_uid=f"{uid}_delete")
    # Deleting a definition deletes its rows (cascade), whose post_delete reloads.
    post_save.connect(_definition_saved, sender=WorkflowDefinition, dispatch_uid=f"{uid}_definition")
