"""The registry of models turned into nodes, and of the node classes generated for them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, overload

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string

from django_dataflow.nodes import OPERATION_NAMES

if TYPE_CHECKING:
    from django.db.models import Q

    from django_dataflow.conf import ModelSetting
    from django_dataflow.nodes.base import ModelNode
    from django_dataflow.nodes.schema import ModelSchema
    from django_dataflow.schema_registry.dynamic import LoadedModels

__all__ = [
    "ModelEntry",
    "get_entry",
    "get_node_class",
    "load_from_database",
    "load_tables",
    "models_registered",
    "node_types",
    "register",
    "unregister",
]

M = TypeVar("M", bound=type[models.Model])
#: register(..., row_filter=...): the run's user -> the Q of the rows that user may see and change.
RowFilter = Callable[[Any], "Q"]


@dataclass(eq=False)
class ModelEntry:
    """A registered model: its node name, hidden fields and (lazily generated) node classes."""

    model: type[models.Model]
    name: str
    exclude_fields: frozenset[str] = frozenset()
    #: Built at run time from the registry table or an existing table, not from this process's code.
    dynamic: bool = False
    #: callable(user) -> Q: the rows a user may see and change through this model's nodes.
    row_filter: RowFilter | None = None
    #: Audit mode of this model's writes: True, "rows", False, or None (DATAFLOW['AUDIT'] decides).
    audit: bool | str | None = None

    @cached_property
    def nodes(self) -> dict[str, type[ModelNode]]:
        """Operation -> generated node class, built with type() on first use."""
        from django_dataflow.nodes.factory import build_node_classes

        with _registry.lock:
            return build_node_classes(self)

    @cached_property
    def schema(self) -> ModelSchema:
        """Field metadata for nodes, computed on first use (never during django.setup())."""
        from django_dataflow.nodes.schema import ModelSchema

        return ModelSchema(self)

    @property
    def label(self) -> str:
        """The model's 'app_label.ModelName'."""
        return self.model._meta.label

    def type_names(self) -> dict[str, str]:
        """Node type name -> operation, without generating any class."""
        return {f"{self.name}{op}Node": op for op in OPERATION_NAMES}

    def same_options(
        self, name: str, exclude_fields: frozenset[str], row_filter: RowFilter | None,
        audit: bool | str | None = None,
    ) -> bool:
        """Whether a second registration asks for exactly this entry."""
        return (
            self.name == name and self.exclude_fields == exclude_fields and self.row_filter == row_filter
            and self.audit == audit
        )

    def hides(self, field: Any) -> bool:
        """Whether exclude_fields names this field (by name or attname) or, for a reverse relation,
        the foreign key behind it on a registered model (the link itself is then hidden)."""
        if field.name in self.exclude_fields or getattr(field, "attname", None) in self.exclude_fields:
            return True
        remote = getattr(field, "field", None) if field.auto_created and not field.concrete else None
        if remote is not None:
            other = _registry._entries.get(field.related_model)
            return other is not None and (remote.name in other.exclude_fields
                                          or remote.attname in other.exclude_fields)
        return False

    def check_options(self) -> None:
        """Refuse exclude_fields that name no field (needs the model's fields to be ready)."""
        for excluded in self.exclude_fields:
            try:
                self.model._meta.get_field(excluded)
            except FieldDoesNotExist:
                raise ImproperlyConfigured(
                    f"exclude_fields of {self.label} names {excluded!r}, which is not a field."
                ) from None


class Registry:
    """Holds model entries; refuses duplicate node names. Node classes are generated per model
    on first lookup, so django.setup() stays cheap in processes that never run a node."""

    def __init__(self) -> None:
        self._entries: dict[type[models.Model], ModelEntry] = {}
        self._by_name: dict[str, ModelEntry] = {}
        # Dynamic models live in an app registry of their own, so apps.get_model() cannot find them.
        self._by_label: dict[str, ModelEntry] = {}
        self._types: dict[str, tuple[ModelEntry, str]] = {}
        self._ready = False
        self.lock = threading.RLock()
        self.listeners: list[Callable[[], None]] = []

    def add(
        self,
        model: type[models.Model],
        *,
        name: str | None,
        exclude_fields: Iterable[str],
        dynamic: bool = False,
        row_filter: RowFilter | None = None,
        audit: bool | str | None = None,
    ) -> ModelEntry:
        """Register a model; its options are checked now if the app registry is ready."""
        if not (isinstance(model, type) and issubclass(model, models.Model)):
            raise ImproperlyConfigured(f"register() takes a Django model class, not {model!r}.")
        if model._meta.abstract:
            raise ImproperlyConfigured(f"{model.__name__} is abstract and cannot be registered.")
        node_name = name or model.__name__
        if not node_name.isidentifier():
            raise ImproperlyConfigured(f"Node name {node_name!r} for {model.__name__} is not an identifier.")
        excluded = frozenset(exclude_fields)
        if row_filter is not None and not callable(row_filter):
            raise ImproperlyConfigured(
                f"row_filter of {model._meta.label} must be a callable(user) -> Q, not {row_filter!r}."
            )
        if audit not in (None, True, False, "rows") or (audit is not None and type(audit) not in (bool, str)):
            raise ImproperlyConfigured(
                f'audit of {model._meta.label} must be True, False, "rows" or None, not {audit!r}.'
            )
        with self.lock:
            existing = self._entries.get(model)
            if existing is not None:
                if existing.same_options(node_name, excluded, row_filter, audit):
                    return existing
                raise ImproperlyConfigured(
                    f"{model._meta.label} is registered twice with different options "
                    f"(name {existing.name!r} vs {node_name!r}, exclude_fields "
                    f"{sorted(existing.exclude_fields)} vs {sorted(excluded)}, row_filter "
                    f"{existing.row_filter!r} vs {row_filter!r})."
                )
            entry = ModelEntry(
                model=model, name=node_name, exclude_fields=excluded, dynamic=dynamic,
                row_filter=row_filter, audit=audit,
            )
            clash = self._by_name.get(node_name) or next(
                (self._types[t][0] for t in entry.type_names() if t in self._types), None
            )
            if clash is not None:
                raise ImproperlyConfigured(
                    f"Models {clash.label} and {model._meta.label} both register the node name "
                    f"{node_name!r} (or names whose node types collide); pass "
                    "register(..., name=...) to one of them."
                )
            if self._ready:
                entry.check_options()  # a refused registration leaves nothing behind
            self._entries[model] = entry
            self._by_name[node_name] = entry
            self._by_label[entry.label.lower()] = entry
            for type_name, op in entry.type_names().items():
                self._types[type_name] = (entry, op)
            self._changed()
        return entry

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def remove(self, model: type[models.Model]) -> None:
        """Forget a model and its node classes (for tests and dynamic models)."""
        with self.lock:
            entry = self._entries.pop(model, None)
            if entry is None:
                return
            del self._by_name[entry.name]
            if self._by_label.get(entry.label.lower()) is entry:
                del self._by_label[entry.label.lower()]
            for type_name in entry.type_names():
                self._types.pop(type_name, None)
            self._changed()

    def populate(self, configured: Iterable[ModelSetting]) -> None:
        """Register models named in settings and check every entry's options (no node classes yet)."""
        for item in configured:
            try:
                model = apps.get_model(item.label)
            except (LookupError, ValueError) as exc:
                raise ImproperlyConfigured(
                    f"[django_dataflow.E004] DATAFLOW['MODELS'] names {item.label!r}: {exc}"
                ) from None
            row_filter = None
            if item.row_filter:
                try:
                    row_filter = import_string(item.row_filter)
                except ImportError as exc:
                    raise ImproperlyConfigured(
                        f"[django_dataflow.E004] DATAFLOW['MODELS'] row_filter of {item.label!r}: {exc}"
                    ) from None
            self.add(
                model, name=item.name, exclude_fields=item.exclude_fields, row_filter=row_filter,
                audit=item.audit,
            )
        with self.lock:
            for entry in self._entries.values():
                entry.check_options()  # bad options still fail django.setup()
            self._ready = True

    def entry(self, model: type[models.Model] | str) -> ModelEntry | None:
        """The entry of a model class or label, or None."""
        if isinstance(model, str):
            if model.lower() in self._by_label:
                return self._by_label[model.lower()]
            try:
                model = apps.get_model(model)
            except (LookupError, ValueError):
                return None
        return self._entries.get(model)

    def entries(self) -> list[ModelEntry]:
        """Every entry, in registration order."""
        return list(self._entries.values())

    def node_class(self, type_name: str) -> type[ModelNode] | None:
        """The node class of a type name (generating its model's classes on first use), or None."""
        found = self._types.get(type_name)
        if found is None:
            return None
        entry, op = found
        return entry.nodes[op]

    def node_type_names(self) -> list[str]:
        """Every node type name, in registration order."""
        return list(self._types)


_registry = Registry()


@overload
def register(
    model: M, *, name: str | None = ..., exclude_fields: Iterable[str] = ...,
    row_filter: RowFilter | None = ..., audit: bool | str | None = ...,
) -> M: ...
@overload
def register(
    model: None = ..., *, name: str | None = ..., exclude_fields: Iterable[str] = ...,
    row_filter: RowFilter | None = ..., audit: bool | str | None = ...,
) -> Callable[[M], M]: ...
def register(
    model: M | None = None, *, name: str | None = None, exclude_fields: Iterable[str] = (),
    row_filter: RowFilter | None = None, audit: bool | str | None = None,
) -> M | Callable[[M], M]:
    """Register a model for node generation; works as @register, @register(...) or a call.

    row_filter(user) -> Q limits every node of the model, for runs given that user, to the rows the
    Q selects (reads, updates, deletes, bulk writes, upsert conflicts, counts and aggregates).
    audit=True writes an AuditEntry per node write ("rows": one per row of bulk ops too; False: never,
    whatever DATAFLOW['AUDIT'] says); see docs/audit.md.
    """

    def decorate(cls: M) -> M:
        _registry.add(
            cls, name=name, exclude_fields=exclude_fields, row_filter=row_filter, audit=audit
        )
        return cls

    return decorate if model is None else decorate(model)


def unregister(model: type[models.Model]) -> None:
    """Remove a model and its node classes from the registry."""
    _registry.remove(model)


def get_node_class(type_name: str) -> type[ModelNode] | None:
    """The generated node class for a type name such as 'ProductCreateNode', or None."""
    return _registry.node_class(type_name)


def get_entry(model: type[models.Model] | str) -> ModelEntry | None:
    """The registry entry of a model class or 'app_label.Model' label, or None."""
    return _registry.entry(model)


def models_registered() -> list[type[models.Model]]:
    """Registered model classes, in registration order."""
    return [e.model for e in _registry.entries()]


def node_types(model: type[models.Model] | str | None = None) -> list[str]:
    """Node type names, of one model or of every registered model."""
    if model is None:
        return _registry.node_type_names()
    entry = _registry.entry(model)
    return [] if entry is None else list(entry.type_names())


def registry() -> Registry:
    """The process-wide registry object."""
    return _registry




def load_from_database(
    labels: Iterable[str] | None = None,
    *,
    using: str | None = None,
    application: str | None = None,
    names: dict[str, str] | None = None,
) -> LoadedModels:
    """Register, as unmanaged dynamic models with nodes, the registry table's models that this
    process has no code for (all, or those named by label or node name; names renames nodes)."""
    from django_dataflow.schema_registry.dynamic import load_registered

    return load_registered(labels, using=using, application=application, names=names)


def load_tables(
    patterns: str | Iterable[str], *, app_label: str = "legacy", using: str | None = None
) -> LoadedModels:
    """Register existing tables matching shell-style patterns ('legacy_*') as unmanaged dynamic
    models with nodes, introspected as inspectdb does."""
    from django_dataflow.schema_registry.dynamic import load_introspected

    return load_introspected(patterns, app_label=app_label, using=using)
