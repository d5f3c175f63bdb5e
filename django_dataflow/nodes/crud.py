"""Create, Read, Update and Delete: one mixin per operation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.core.exceptions import ValidationError

from django_dataflow.exceptions import RecordNotFound, WorkflowValidationError
from django_dataflow.nodes import scope
from django_dataflow.nodes.base import ModelNode, SingleRecordMixin
from django_dataflow.nodes.params import flag, static_problems, validation_message
from django_dataflow.nodes.values import InvalidValue, jsonable
from django_dataflow.runtime.context import RunContext

VALIDATE_HELP = "Run the model's full_clean() before saving (default true)."


def full_clean(node: type[ModelNode], obj: Any, *, only: set[str] | None = None) -> None:
    """Validate an instance with Django's own full_clean, naming the failing fields.

    Uniqueness and constraints are left to the database (one query fewer per unique field);
    a violation still fails the node and rolls the run back.
    """
    meta = node.model._meta
    exclude = set(node.schema().hidden_names)
    if only is not None:
        exclude |= {f.name for f in meta.concrete_fields if f.name not in only}
    try:
        obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise InvalidValue(validation_message(exc)) from None


def check_unvalidated_keys(
    node: type[ModelNode], values: Mapping[str, Any], validate: bool, using: str
) -> None:
    """Without full_clean nothing checked a foreign key given: check it now, so a bad key fails
    this node rather than the commit (where no node would be named)."""
    if validate:
        return
    meta = node.model._meta
    if any(f.is_relation and values.get(f.attname) is not None for f in meta.concrete_fields):
        from django_dataflow.nodes.rows import check_deferred_constraints

        check_deferred_constraints(node, using)


class CreateMixin:
    """Create one record from model field params; the result is the record."""

    operation: ClassVar[str] = "Create"
    permissions: ClassVar[tuple[str, ...]] = ("add",)
    writes: ClassVar[bool] = True

    @classmethod
    def param_descriptions(cls: Any) -> dict[str, str]:
        """Every writable field (FKs under both names) plus 'validate'."""
        described = {}
        for info in cls.schema().params:
            text = f"{info.type}{', required' if info.required else ''}: {info.description}"
            described[info.name] = text
            if info.field.name != info.name:
                described[info.field.name] = f"alias of {info.name}"
        described["validate"] = VALIDATE_HELP
        return described

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Report required fields given neither statically nor by a connection."""
        given = set(params) | connected
        problems = [
            f"missing required field '{f.attname if f.is_relation else f.name}' for {cls.type_name}"
            for f in cls.schema().required_fields
            if f.name not in given and f.attname not in given
        ]
        return problems + static_problems(params, {"validate": lambda p: flag(p, "validate", True)})

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Insert the record and return it."""
        validate = flag(params, "validate", True)
        values = cls.convert_fields({k: v for k, v in params.items() if k != "validate"})
        obj = cls.model(**values)
        if validate:
            # Like a ModelForm: validate the fields given; the rest keep their defaults.
            schema = cls.schema()
            full_clean(cls, obj, only={schema.field_for(attname).name for attname in values})
        obj.save(force_insert=True, using=ctx.using)
        check_unvalidated_keys(cls, values, validate, ctx.using)
        scope.check_written(cls, ctx, [obj.pk])
        return cls.record(obj)


class ReadMixin(SingleRecordMixin):
    """Read one record by id and/or conditions."""

    operation: ClassVar[str] = "Read"
    permissions: ClassVar[tuple[str, ...]] = ("view",)
    PARAMS: ClassVar[dict[str, str]] = {
        **SingleRecordMixin.PARAMS,
        "required": "Fail when no record matches (default true); false returns null.",
    }

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Require a lookup and a boolean 'required'."""
        return cls.check_lookup(params, connected) + static_problems(
            params, {"required": lambda p: flag(p, "required", True)}
        )

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, Any] | None:
        """The record, or None when it is missing and not required."""
        required = flag(params, "required", True)
        schema = cls.schema()
        # Model instances build faster than values(*names); a model with hidden fields uses
        # values() so that hidden columns are never even fetched.
        hidden = bool(cls.entry.exclude_fields)
        queryset = cls.queryset(ctx).values(*schema.record_names) if hidden else cls.queryset(ctx)
        try:
            row = cls.fetch_one(queryset, params)
        except RecordNotFound:
            if required:
                raise
            return None
        if hidden:
            return {name: jsonable(value) for name, value in row.items()}
        return cls.record(row)


class UpdateMixin(SingleRecordMixin):
    """Update the one record matched by id and/or conditions with 'fields'."""

    operation: ClassVar[str] = "Update"
    permissions: ClassVar[tuple[str, ...]] = ("change",)
    writes: ClassVar[bool] = True
    PARAMS: ClassVar[dict[str, str]] = {
        **SingleRecordMixin.PARAMS,
        "fields": "Field values to set.",
        "validate": VALIDATE_HELP,
    }

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Require a lookup and 'fields' naming writable fields."""
        problems = cls.check_lookup(params, connected)
        if "fields" in params:
            problems += cls.check_field_names(params["fields"], "fields")
        elif "fields" not in connected:
            problems.append(f"{cls.type_name} needs 'fields'")
        return problems + static_problems(params, {"validate": lambda p: flag(p, "validate", True)})

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Lock the record, set the fields, validate them and save only them."""
        validate = flag(params, "validate", True)
        values = cls.convert_fields(params.get("fields"), where="fields.")
        if not values:
            raise WorkflowValidationError("fields must name at least one field")
        obj = cls.fetch_one(cls.queryset(ctx).select_for_update(), params)
        for attname, value in values.items():
            setattr(obj, attname, value)
        schema = cls.schema()
        changed = {schema.field_for(attname).name for attname in values}
        if validate:
            full_clean(cls, obj, only=changed)
        update_fields = changed | {f.name for f in schema.auto_now_fields}
        obj.save(update_fields=sorted(update_fields), using=ctx.using)
        check_unvalidated_keys(cls, values, validate, ctx.using)
        scope.check_written(cls, ctx, [obj.pk])
        return cls.record(obj)


class DeleteMixin(SingleRecordMixin):
    """Delete the one record matched by id and/or conditions."""

    operation: ClassVar[str] = "Delete"
    permissions: ClassVar[tuple[str, ...]] = ("delete",)
    writes: ClassVar[bool] = True

    @classmethod
    def check_params(cls: Any, params: Mapping[str, Any], connected: set[str]) -> list[str]:
        """Require a lookup."""
        return cls.check_lookup(params, connected)

    @classmethod
    def run(cls: Any, params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        """Delete through Model.delete() so cascades and signals run as in Django."""
        obj = cls.fetch_one(cls.queryset(ctx), params)
        pk = obj.pk
        scope.check_cascade(cls, ctx, [obj])
        obj.delete(using=ctx.using)
        return {"deleted": 1, "id": jsonable(pk)}
