"""Unmanaged model classes built at run time from descriptions, registered with nodes.

Each load builds its models in an app registry of its own (as migrations render historical models),
so they never reach makemigrations, the admin or contenttypes, and never clash with this process's
own models; relations between the models of one load (and Django's delete cascades) work inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import AppConfig
from django.apps.registry import Apps
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.utils.module_loading import import_string

from django_dataflow import conf
from django_dataflow.exceptions import RegistryError
from django_dataflow.registry import ModelEntry, registry
from django_dataflow.schema_registry.description import ModelDescription

ON_DELETE = {
    name: getattr(models, name)
    for name in ("CASCADE", "PROTECT", "RESTRICT", "SET_NULL", "SET_DEFAULT", "DO_NOTHING")
}


@dataclass
class LoadedModels:
    """What a load registered, and what it left out (label or table, reason)."""

    entries: list[ModelEntry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def labels(self) -> list[str]:
        """'app_label.Model' of every registered entry."""
        return [entry.label for entry in self.entries]

    def node_types(self) -> list[str]:
        """Every node type name the load made available."""
        return [name for entry in self.entries for name in entry.type_names()]


class _LabelOnlyConfig(AppConfig):
    """An app config with a label and nothing else: the app of dynamic models has no module."""

    def __init__(self, label: str) -> None:
        self.name = self.label = self.verbose_name = label
        self.module = self.models_module = None
        self.path = ""
        self.apps = None
        self.models = {}

    def import_models(self) -> None:
        """Share the registry's dict, so models created later are this app's models."""
        assert self.apps is not None  # Apps.populate() sets it before it imports the models
        self.models = self.apps.all_models[self.label]


class DynamicApps(Apps):
    """An app registry holding one load's dynamic models."""

    def __init__(self, labels: Iterable[str]) -> None:
        super().__init__([_LabelOnlyConfig(label) for label in sorted(set(labels))])


def build_models(
    descriptions: list[ModelDescription], code_models: dict[str, type[models.Model]] | None = None
) -> dict[str, type[models.Model]]:
    """Unmanaged model classes for descriptions, keyed by table, in one new app registry.

    A relation points at the model of its table in this build, else at code_models' (this process's
    own model of that table), else it becomes its plain column (named after it).
    """
    own_apps = DynamicApps(d.app_label for d in descriptions)
    targets: dict[str, str | type[models.Model]] = {**(code_models or {})}
    targets |= {d.table: d.label for d in descriptions}
    built: dict[str, type[models.Model]] = {}
    for description in descriptions:
        meta = type(
            "Meta", (),
            {"app_label": description.app_label, "db_table": description.table, "managed": False,
             "apps": own_apps},
        )
        attrs: dict[str, Any] = {"__module__": __name__, "__qualname__": description.model_name, "Meta": meta}
        for item in description.fields:
            name, model_field = build_field(item, targets)
            attrs[name] = model_field
        model = type(description.model_name, (models.Model,), attrs)
        built[description.table] = model
    return built


def build_field(
    item: dict[str, Any], targets: dict[str, str | type[models.Model]]
) -> tuple[str, models.Field]:
    """(field name, field) for one field dict; targets maps a table to its model (or its label)."""
    relation = item.get("relation")
    kwargs: dict[str, Any] = {
        "null": bool(item.get("null")),
        "blank": bool(item.get("blank")),
        "db_column": item["column"],
        "primary_key": bool(item.get("primary_key")),
    }
    if item.get("unique") and not item.get("primary_key") and item.get("type") != "OneToOneField":
        kwargs["unique"] = True
    if item.get("db_index") and not kwargs.get("unique"):
        kwargs["db_index"] = True
    for attr in ("max_length", "max_digits", "decimal_places", "auto_now", "auto_now_add"):
        if item.get(attr) is not None:
            kwargs[attr] = item[attr]
    default = _default(item.get("default"))
    if relation and relation.get("table") in targets:
        cls = models.OneToOneField if item.get("type") == "OneToOneField" else models.ForeignKey
        for attr in ("max_length", "max_digits", "decimal_places"):
            kwargs.pop(attr, None)
        if default is not _NO_DEFAULT:
            kwargs["default"] = default
        return item["name"], cls(
            targets[relation["table"]],
            on_delete=ON_DELETE.get(relation.get("on_delete", ""), models.DO_NOTHING),
            to_field=relation.get("to_field"),
            related_name=relation.get("related_name"),
            db_constraint=False,  # unmanaged: the owner's migrations decide the constraint
            **kwargs,
        )
    if relation:  # nothing here maps the referenced table: keep the column, as a plain value
        kwargs.pop("max_length", None)
        column_type = relation.get("column_type", "BigIntegerField")
        if relation.get("column_max_length"):
            kwargs["max_length"] = relation["column_max_length"]
        return item["column"], _instantiate(None, column_type, kwargs, default)
    return item["name"], _instantiate(item.get("class"), item.get("type", "TextField"), kwargs, default)


_NO_DEFAULT = object()


def _default(spec: dict[str, Any] | None) -> Any:
    if not spec:
        return _NO_DEFAULT
    if "value" in spec:
        return spec["value"]
    if "callable" in spec:
        try:
            return import_string(spec["callable"])
        except ImportError:  # a lambda or a function this process does not have
            return _NO_DEFAULT
    return _NO_DEFAULT


def field_class(path: str | None, internal_type: str) -> type[models.Field]:
    """The recorded field class when this process can import it, else Django's class of the same
    internal type, else TextField."""
    for candidate in (path, f"django.db.models.{internal_type}"):
        if not candidate:
            continue
        try:
            cls = import_string(candidate)
        except ImportError:
            continue
        relation = isinstance(cls, type) and issubclass(cls, models.ForeignObject)
        if isinstance(cls, type) and issubclass(cls, models.Field) and not relation:
            return cls
    return models.TextField


def _instantiate(path: str | None, internal_type: str, kwargs: dict[str, Any], default: Any) -> models.Field:
    cls = field_class(path, internal_type)
    try:
        made = cls(**kwargs)
    except TypeError:  # a custom class wanting other arguments: its internal type's class
        made = field_class(None, internal_type)(**kwargs)
    if default is not _NO_DEFAULT:
        if not callable(default):
            try:  # JSON gave "0.00" for a Decimal, an ISO string for a date: the field's own type
                default = made.to_python(default)
            except ValidationError:
                pass
        made.default = default
    return made


def register_built(
    descriptions: list[ModelDescription],
    support: list[ModelDescription],
    names: dict[str, str] | None = None,
) -> LoadedModels:
    """Build descriptions (and support: relation targets, not registered) and register them,
    replacing dynamic entries of the same labels from an earlier load. Relations to tables this
    process has code for point at its own models."""
    from django_dataflow.schema_registry.store import models_with_code

    built = build_models([*descriptions, *support], models_with_code())
    loaded = LoadedModels()
    names = {k.lower(): v for k, v in (names or {}).items()}
    replaced: list[ModelEntry] = []
    try:
        for description in descriptions:
            old = registry().entry(description.label)
            if old is not None and not old.dynamic:
                raise RegistryError(
                    f"Cannot load {description.label} (table {description.table}): this process's own "
                    f"{old.label} (table {old.model._meta.db_table}) has that label."
                )
            if old is not None:
                registry().remove(old.model)
                replaced.append(old)
            try:
                entry = registry().add(
                    built[description.table],
                    name=names.get(description.label.lower(), description.node_name),
                    exclude_fields=description.hidden_fields,
                    dynamic=True,
                )
            except ImproperlyConfigured as exc:
                raise RegistryError(
                    f"Cannot load {description.label} (table {description.table}): {exc} Pass "
                    f"names={{{description.label!r}: '...'}} to give its nodes another name."
                ) from None
            loaded.entries.append(entry)
    except RegistryError:
        # All or nothing: the registry is left as it was before this load.
        for entry in loaded.entries:
            registry().remove(entry.model)
        for old in replaced:
            registry().add(old.model, name=old.name, exclude_fields=old.exclude_fields, dynamic=True)
        raise
    return loaded


def load_registered(
    labels: Iterable[str] | None = None,
    *,
    using: str | None = None,
    application: str | None = None,
    names: dict[str, str] | None = None,
) -> LoadedModels:
    """load_from_database(): the registry table's models this process has no code for."""
    from django_dataflow.schema_registry.description import describe_row
    from django_dataflow.schema_registry.store import discoverable

    found = discoverable(using or conf.database(), application=application, labels=labels)
    descriptions = [describe_row(row) for row in found.candidates.values()]
    known = {table: describe_row(row) for table, row in found.without_code.items()}
    loaded = register_built(descriptions, _relation_targets(descriptions, known), names)
    if labels is None:
        loaded.skipped = [
            (row.label, "this process has code for its table")
            for table, row in found.owners.items() if table not in found.without_code
        ]
    return loaded


def _relation_targets(
    descriptions: list[ModelDescription], known: dict[str, ModelDescription]
) -> list[ModelDescription]:
    """Descriptions of the tables the descriptions reference, transitively, that are not loaded."""
    have = {d.table for d in descriptions}
    labels = {d.label for d in descriptions}
    pending = list(descriptions)
    support: list[ModelDescription] = []
    while pending:
        for item in pending.pop().fields:
            table = (item.get("relation") or {}).get("table")
            if not table:
                continue
            target = known.get(table)
            if target is None or table in have or target.label in labels:
                continue
            have.add(table)
            labels.add(target.label)
            support.append(target)
            pending.append(target)
    return support


def load_introspected(
    patterns: str | Iterable[str], *, app_label: str = "legacy", using: str | None = None
) -> LoadedModels:
    """load_tables(): existing tables matching patterns, introspected, registered with nodes."""
    from django_dataflow.schema_registry.introspection import describe_tables

    found = describe_tables(patterns, app_label=app_label, using=using or conf.database())
    if not found.descriptions and not found.skipped:
        raise RegistryError(f"No table matches {found.patterns}.")
    loaded = register_built(found.descriptions, [])
    loaded.skipped = found.skipped
    return loaded
