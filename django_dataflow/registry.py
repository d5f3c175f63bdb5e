"""The registry of models turned into nodes, and of the node classes generated for them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar, overload

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models

if TYPE_CHECKING:
    from django_dataflow.conf import ModelSetting
    from django_dataflow.nodes.base import ModelNode
    from django_dataflow.nodes.schema import ModelSchema

__all__ = [
    "ModelEntry",
    "get_entry",
    "get_node_class",
    "models_registered",
    "node_types",
    "register",
    "unregister",
]

M = TypeVar("M", bound=type[models.Model])


@dataclass(eq=False)
class ModelEntry:
    """A registered model: its node name, hidden fields and generated node classes."""

    model: type[models.Model]
    name: str
    exclude_fields: frozenset[str] = frozenset()
    nodes: dict[str, type[ModelNode]] = field(default_factory=dict)

    @cached_property
    def schema(self) -> ModelSchema:
        """Field metadata for nodes, computed on first use (never during django.setup())."""
        from django_dataflow.nodes.schema import ModelSchema

        return ModelSchema(self)

    @property
    def label(self) -> str:
        """The model's 'app_label.ModelName'."""
        return self.model._meta.label

    def same_options(self, name: str, exclude_fields: frozenset[str]) -> bool:
        """Whether a second registration asks for exactly this entry."""
        return self.name == name and self.exclude_fields == exclude_fields


class Registry:
    """Holds model entries and node classes; refuses duplicate node names."""

    def __init__(self) -> None:
        self._entries: dict[type[models.Model], ModelEntry] = {}
        self._by_name: dict[str, ModelEntry] = {}
        self._node_classes: dict[str, type[ModelNode]] = {}
        self._ready = False
        # Entries registered before the app registry was ready get their node classes on first
        # lookup, not in ready(): django.setup() stays cheap in processes that never run a node.
        self._pending = False
        self._lock = threading.RLock()
        self.listeners: list[Callable[[], None]] = []

    def add(
        self, model: type[models.Model], *, name: str | None, exclude_fields: Iterable[str]
    ) -> ModelEntry:
        """Register a model; generate its nodes now if the app registry is ready."""
        if not (isinstance(model, type) and issubclass(model, models.Model)):
            raise ImproperlyConfigured(f"register() takes a Django model class, not {model!r}.")
        if model._meta.abstract:
            raise ImproperlyConfigured(f"{model.__name__} is abstract and cannot be registered.")
        node_name = name or model.__name__
        if not node_name.isidentifier():
            raise ImproperlyConfigured(f"Node name {node_name!r} for {model.__name__} is not an identifier.")
        excluded = frozenset(exclude_fields)
        with self._lock:
            existing = self._entries.get(model)
            if existing is not None:
                if existing.same_options(node_name, excluded):
                    return existing
                raise ImproperlyConfigured(
                    f"{model._meta.label} is registered twice with different options "
                    f"(name {existing.name!r} vs {node_name!r}, exclude_fields "
                    f"{sorted(existing.exclude_fields)} vs {sorted(excluded)})."
                )
            clash = self._by_name.get(node_name)
            if clash is not None:
                raise ImproperlyConfigured(
                    f"Models {clash.label} and {model._meta.label} both register the node name "
                    f"{node_name!r}; pass register(..., name=...) to one of them."
                )
            entry = ModelEntry(model=model, name=node_name, exclude_fields=excluded)
            self._entries[model] = entry
            self._by_name[node_name] = entry
            if self._ready:
                try:
                    self._generate(entry)
                except Exception:
                    # A refused registration leaves nothing behind, so it can be retried.
                    self.remove(model)
                    raise
        return entry

    def _generate(self, entry: ModelEntry) -> None:
        self._check_options(entry)
        self._build(entry)
        self._changed()

    @staticmethod
    def _check_options(entry: ModelEntry) -> None:
        for excluded in entry.exclude_fields:
            try:
                entry.model._meta.get_field(excluded)
            except FieldDoesNotExist:
                raise ImproperlyConfigured(
                    f"exclude_fields of {entry.label} names {excluded!r}, which is not a field."
                ) from None

    def _build(self, entry: ModelEntry) -> None:
        from django_dataflow.nodes.factory import build_node_classes

        entry.nodes = build_node_classes(entry)
        for cls in entry.nodes.values():
            self._node_classes[cls.type_name] = cls

    def _build_pending(self) -> None:
        with self._lock:
            if self._pending:
                for entry in list(self._entries.values()):
                    if not entry.nodes:
                        self._build(entry)
                self._pending = False

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def remove(self, model: type[models.Model]) -> None:
        """Forget a model and its node classes (for tests and dynamic models)."""
        with self._lock:
            entry = self._entries.pop(model, None)
            if entry is None:
                return
            del self._by_name[entry.name]
            for cls in entry.nodes.values():
                self._node_classes.pop(cls.type_name, None)
            self._changed()

    def populate(self, configured: Iterable[ModelSetting]) -> None:
        """Register models named in settings and check every entry's options; node classes
        are generated on first lookup (get_node_class, node_types, get_entry)."""
        for item in configured:
            try:
                model = apps.get_model(item.label)
            except (LookupError, ValueError) as exc:
                raise ImproperlyConfigured(
                    f"[django_dataflow.E004] DATAFLOW['MODELS'] names {item.label!r}: {exc}"
                ) from None
            self.add(model, name=item.name, exclude_fields=item.exclude_fields)
        with self._lock:
            self._ready = True
            for entry in self._entries.values():
                if not entry.nodes:
                    self._check_options(entry)  # bad options still fail django.setup()
                    self._pending = True
            self._changed()

    def entry(self, model: type[models.Model] | str) -> ModelEntry | None:
        """The entry of a model class or label, or None."""
        if self._pending:
            self._build_pending()
        if isinstance(model, str):
            try:
                model = apps.get_model(model)
            except (LookupError, ValueError):
                return None
        return self._entries.get(model)

    def entries(self) -> list[ModelEntry]:
        """Every entry, in registration order."""
        if self._pending:
            self._build_pending()
        return list(self._entries.values())

    def node_class(self, type_name: str) -> type[ModelNode] | None:
        """The node class of a type name, or None."""
        if self._pending:
            self._build_pending()
        return self._node_classes.get(type_name)

    def node_type_names(self) -> list[str]:
        """Every generated node type name."""
        if self._pending:
            self._build_pending()
        return list(self._node_classes)


_registry = Registry()


@overload
def register(model: M, *, name: str | None = ..., exclude_fields: Iterable[str] = ...) -> M: ...
@overload
def register(
    model: None = ..., *, name: str | None = ..., exclude_fields: Iterable[str] = ...
) -> Callable[[M], M]: ...
def register(
    model: M | None = None, *, name: str | None = None, exclude_fields: Iterable[str] = ()
) -> M | Callable[[M], M]:
    """Register a model for node generation; works as @register, @register(...) or a call."""

    def decorate(cls: M) -> M:
        _registry.add(cls, name=name, exclude_fields=exclude_fields)
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
    return [] if entry is None else [cls.type_name for cls in entry.nodes.values()]


def registry() -> Registry:
    """The process-wide registry object."""
    return _registry


