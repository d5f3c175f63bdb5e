"""Model-change triggers: on_commit_of(Customer, "created", definition="welcome", inputs=...).

Row events come from Django's post_save / post_delete signals; the run is submitted (CeleryRuntime)
only when the transaction that changed the row commits, so a rolled-back change starts nothing.
Bulk nodes report their writes through bulk_writes() (BulkUpsert: upsert_writes(), split by
event): one submission per bulk operation and event, carrying every primary key, instead of one
per row. docs/triggers.md lists which write paths fire.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

from django_dataflow.exceptions import DataflowError, WorkflowValidationError, valid_names
from django_dataflow.runtime.context import RunContext, active_run
from django_dataflow.tenancy import current_schema
from django_dataflow.triggers.origin import Origin, start

logger = logging.getLogger("django_dataflow.triggers")

EVENTS = ("created", "updated", "deleted")

InputsFunction = Callable[[models.Model], dict[str, Any]]


class ModelTrigger:
    """One on_commit_of() registration or stored ModelTriggerRule row (rule: its pk): starts
    `definition` after a committed change of `model`."""

    def __init__(
        self, model: type[models.Model], event: str, definition: str,
        inputs: InputsFunction | None, per_row: bool, *,
        static: Mapping[str, Any] | None = None, rule: int | None = None,
    ) -> None:
        self.model = model
        self.event = event
        self.definition = definition
        self.inputs = inputs
        self.per_row = per_row
        self.static = dict(static or {})
        self.rule = rule

    def __repr__(self) -> str:
        return f"<ModelTrigger {self.model._meta.label} {self.event} -> {self.definition}>"

    @property
    def label(self) -> str:
        """The model's 'app_label.ModelName'."""
        return self.model._meta.label

    def disconnect(self) -> None:
        """Stop this trigger (the signal receivers stay connected for the model's other triggers)."""
        found = _TRIGGERS.get((self.model, self.event), [])
        if self in found:
            found.remove(self)

    def rows_changed(
        self, pks: list[Any], instance: models.Model | None, using: str, *, bulk: bool = False
    ) -> None:
        """Schedule one submission for these rows after the current transaction commits."""
        active = active_run()
        pks = _outside_loop(self, active, pks)
        if not pks:
            return
        # A stored row's static inputs first: the change's own keys always win.
        inputs: dict[str, Any] = {**self.static, "model": self.label, "event": self.event}
        if bulk:
            inputs["pks"] = list(pks)
        else:
            inputs["pk"] = pks[0]
            if self.inputs is not None and instance is not None:
                inputs.update(self.inputs(instance))
        trigger: dict[str, Any] = {
            "kind": "model", "model": self.label, "event": self.event, "pks": list(pks)
        }
        if self.rule is not None:
            trigger["rule"] = self.rule
        origin = Origin.after(trigger, active)
        submit = partial(self._submit, inputs, origin, current_schema(using), using)
        # robust: a trigger that cannot start never turns a committed write into an exception.
        transaction.on_commit(submit, using=using, robust=True)

    def _submit(self, inputs: dict[str, Any], origin: Origin, tenant: str | None, using: str) -> None:
        try:
            start(self.definition, inputs, origin=origin, tenant=tenant, using=using)
        except DataflowError as exc:
            logger.error("trigger %s of %s %s: not started: %s", self.definition, self.label, self.event, exc)


_TRIGGERS: dict[tuple[type[models.Model], str], list[ModelTrigger]] = {}


def on_commit_of(
    model: type[models.Model], event: str, *, definition: str,
    inputs: InputsFunction | None = None, per_row: bool = False,
) -> ModelTrigger:
    """Start `definition` (CeleryRuntime) after a transaction that created/updated/deleted a row commits.

    inputs(obj) adds inputs for one-row events (the run always gets "pk", "model" and "event");
    bulk node operations give "pks" instead, once per operation unless per_row=True.
    """
    from django_dataflow.runtime.definitions import _SLUG

    if not (isinstance(model, type) and issubclass(model, models.Model)):
        raise WorkflowValidationError(f"on_commit_of() needs a model class, not {model!r}")
    where = f"on_commit_of({model._meta.label}, {event!r})"
    if event not in EVENTS:
        raise WorkflowValidationError(
            f"{where}: unknown event {event!r}; valid events: {valid_names(EVENTS)}"
        )
    if not isinstance(definition, str) or not _SLUG.fullmatch(definition):
        raise WorkflowValidationError(
            f"{where}: definition must be a workflow definition name, not {definition!r}"
        )
    if inputs is not None and not callable(inputs):
        raise WorkflowValidationError(f"{where}: inputs must be a function of the row, not {inputs!r}")
    trigger = ModelTrigger(model, event, definition, inputs, per_row)
    _TRIGGERS.setdefault((model, event), []).append(trigger)
    _watch(model)
    return trigger


def _watch(model: type[models.Model]) -> None:
    uid = f"django_dataflow.triggers.{model._meta.label}"
    post_save.connect(_saved, sender=model, dispatch_uid=f"{uid}.save", weak=False)
    post_delete.connect(_deleted, sender=model, dispatch_uid=f"{uid}.delete", weak=False)


def _unwatch(model: type[models.Model]) -> None:
    # A post_delete receiver turns off Django's fast delete: gone as soon as nothing watches the model.
    uid = f"django_dataflow.triggers.{model._meta.label}"
    post_save.disconnect(sender=model, dispatch_uid=f"{uid}.save")
    post_delete.disconnect(sender=model, dispatch_uid=f"{uid}.delete")


def replace_stored(triggers: Iterable[ModelTrigger]) -> None:
    """Swap the triggers of stored rows (rule set) for these; code triggers stay as they are.

    Each (model, event) list is replaced by one assignment, so an event firing meanwhile sees the
    old or the new triggers, never none. Receivers stay connected only for watched models.
    """
    new: dict[tuple[type[models.Model], str], list[ModelTrigger]] = {}
    for trigger in triggers:
        new.setdefault((trigger.model, trigger.event), []).append(trigger)
    for key in set(_TRIGGERS) | set(new):
        _TRIGGERS[key] = [t for t in _TRIGGERS.get(key, ()) if t.rule is None] + new.get(key, [])
    keys = list(_TRIGGERS.items())  # a copy: on_commit_of() may add a key meanwhile
    watched = {model for (model, _event), found in keys if found}
    for model in watched:
        _watch(model)
    for model in {model for (model, _event), _found in keys} - watched:
        _unwatch(model)


def triggers_for(model: type[models.Model], event: str) -> list[ModelTrigger]:
    """The triggers registered for this model and event."""
    return list(_TRIGGERS.get((model, event), ()))


def registered() -> list[ModelTrigger]:
    """Every registered model-change trigger."""
    return [t for found in _TRIGGERS.values() for t in found]


def _saved(sender: type[models.Model], instance: models.Model, created: bool = False,
           raw: bool = False, using: str = "default", **kwargs: Any) -> None:
    if not raw:  # loaddata writes fixtures, not changes
        _row_event(sender, "created" if created else "updated", instance, using)


def _deleted(
    sender: type[models.Model], instance: models.Model, using: str = "default", **kwargs: Any
) -> None:
    _row_event(sender, "deleted", instance, using)


def _row_event(model: type[models.Model], event: str, instance: models.Model, using: str) -> None:
    found = _TRIGGERS.get((model, event))
    if not found:
        return
    bulk = _BULK.get()
    if bulk is not None and bulk.model is model and bulk.event == event:
        bulk.add([instance.pk])  # one submission at the end of the bulk operation
        return
    for trigger in list(found):
        trigger.rows_changed([instance.pk], instance, using)


def _outside_loop(trigger: ModelTrigger, active: RunContext | None, pks: list[Any]) -> list[Any]:
    """Loop guard: rows whose change started the active run of the same definition are left out."""
    if active is None or active.definition != trigger.definition or not active.trigger:
        return pks
    source = active.trigger
    if source.get("kind") != "model" or source.get("model") != trigger.label:
        return pks
    started_by = {str(pk) for pk in source.get("pks", ())}
    kept = [pk for pk in pks if str(pk) not in started_by]
    if len(kept) < len(pks):
        logger.info(
            "run %s of %r changed the %s row(s) that started it; not triggering %r again",
            active.run_id, trigger.definition, trigger.label, trigger.definition,
        )
    return kept


class BulkWrites:
    """The primary keys one bulk node operation wrote, submitted once when the node finishes."""

    def __init__(self, model: type[models.Model], event: str, triggers: list[ModelTrigger]) -> None:
        self.model = model
        self.event = event
        self.triggers = triggers
        self.pks: list[Any] = []

    def add(self, pks: Iterable[Any]) -> None:
        """Record written primary keys."""
        self.pks.extend(pks)

    @contextmanager
    def collecting(self) -> Iterator[BulkWrites]:
        """Row signals sent inside the block (QuerySet.delete()) are gathered here, not fired."""
        token = _BULK.set(self)
        try:
            yield self
        finally:
            _BULK.reset(token)

    def fire(self, using: str) -> None:
        """One submission per trigger with every pk (per_row triggers: one per row)."""
        if not self.pks:
            return
        pks = list(dict.fromkeys(self.pks))
        for trigger in self.triggers:
            if trigger.per_row:
                for pk in pks:
                    trigger.rows_changed([pk], None, using)
            else:
                trigger.rows_changed(pks, None, using, bulk=True)


_BULK: ContextVar[BulkWrites | None] = ContextVar("django_dataflow_bulk_writes", default=None)


def bulk_writes(model: type[models.Model], event: str) -> BulkWrites | None:
    """A collector for one bulk operation's writes, or None when no trigger watches them."""
    found = _TRIGGERS.get((model, event))
    return BulkWrites(model, event, list(found)) if found else None


class UpsertWrites:
    """One upsert's two collectors: the keys it inserted ("created") and the ones it updated."""

    def __init__(self, model: type[models.Model]) -> None:
        # An event nobody watches gets a collector with no triggers: its fire() submits nothing.
        self.created = bulk_writes(model, "created") or BulkWrites(model, "created", [])
        self.updated = bulk_writes(model, "updated") or BulkWrites(model, "updated", [])

    def add(self, created: Iterable[Any], updated: Iterable[Any]) -> None:
        """Record the inserted and the updated primary keys of one statement."""
        self.created.add(created)
        self.updated.add(updated)

    def fire(self, using: str) -> None:
        """One submission per event's trigger (per_row triggers: one per row)."""
        self.created.fire(using)
        self.updated.fire(using)


def upsert_writes(model: type[models.Model]) -> UpsertWrites | None:
    """Collectors for an upsert's created and updated keys, or None when no trigger watches either."""
    if not (_TRIGGERS.get((model, "created")) or _TRIGGERS.get((model, "updated"))):
        return None
    return UpsertWrites(model)
