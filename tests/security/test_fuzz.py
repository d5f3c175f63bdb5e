"""Fuzzing: random workflow JSON thrown at Workflow.from_dict + LocalRuntime.

Whatever the document, the only exceptions allowed are DataflowError subclasses, and a rejected
workflow leaves every table byte-for-byte unchanged. The time is bounded by a Hypothesis settings
profile: DATAFLOW_FUZZ_PROFILE=ci (the default, a few hundred examples) or =long for a deep run.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_dataflow import LocalRuntime, Workflow
from django_dataflow.exceptions import DataflowError
from django_dataflow.registry import node_types
from tests.security.conftest import database_state, make_user

pytestmark = pytest.mark.django_db

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("dataflow-fuzz-ci", max_examples=300, **_COMMON)
settings.register_profile("dataflow-fuzz-long", max_examples=5_000, **_COMMON)
PROFILE = settings.get_profile(f"dataflow-fuzz-{os.environ.get('DATAFLOW_FUZZ_PROFILE', 'ci')}")

TYPES = [t for t in node_types() if t.startswith(("Product", "Customer", "Order", "Stock", "User"))]
NAMES = [
    # params of every operation
    "id",
    "conditions",
    "fields",
    "filter",
    "order_by",
    "limit",
    "offset",
    "with_total",
    "after",
    "required",
    "validate",
    "pipeline",
    "data",
    "batch_size",
    "all",
    "ids",
    "conflict_on",
    "update_fields",
    # fields, relations, JSON keys, hidden and smuggled names
    "name",
    "sku",
    "price",
    "stock",
    "active",
    "description",
    "email",
    "metadata",
    "metadata.tier",
    "quantity",
    "status",
    "reference",
    "customer",
    "customer_id",
    "customer.email",
    "product.sku",
    "orders.quantity",
    "username",
    "password",
    "password__startswith",
    "customer__password",
    "pk",
    "warehouse",
    "product_id",
]
OPERATORS = [
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$regex",
    "$iregex",
    "$like",
    "$contains",
    "$startswith",
    "$exists",
    "$isnull",
    "$between",
    "$and",
    "$or",
    "$nor",
    "$not",
    "$where",
    "$expr",
    "$match",
    "$group",
    "$sort",
    "$skip",
    "$limit",
    "$project",
    "$count",
    "$sum",
    "$avg",
    "$push",
    "$first",
]
HOSTILE_TEXT = [
    "'; DROP TABLE shop_product; --",
    "a\x00b",
    "caf\udce9",
    "{{x}}",
    "(a+)+$",
    "%_\\",
    "",
    "L-1",
    "ada@example.com",
    "2024-01-01T00:00:00Z",
    "19.99",
    "NaN",
    "Infinity",
    "$price",
    "$customer.email",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(NAMES), st.sampled_from(OPERATORS), st.text(max_size=6))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
params = st.dictionaries(st.sampled_from(NAMES), values, max_size=4)
node_ids = st.sampled_from(["a", "b", "c", "d"])


FIELDS = [
    "name",
    "sku",
    "price",
    "stock",
    "active",
    "description",
    "email",
    "metadata",
    "metadata.tier",
    "tier",
    "quantity",
    "status",
    "reference",
    "customer",
    "customer_id",
    "product_id",
    "placed_at",
    "notes",
    "warehouse",
    "username",
    "is_staff",
    "customer.email",
    "product.sku",
    "orders.quantity",
    "pk",
    "id",
    "password",
    "password__startswith",
    "customer__password",
    "created_at",
]
fields = st.sampled_from(FIELDS)
operand = st.one_of(scalars, st.lists(scalars, max_size=3))
condition = st.one_of(
    scalars, st.dictionaries(st.sampled_from(OPERATORS[:17]), operand, min_size=1, max_size=2)
)
filters = st.recursive(
    st.dictionaries(fields, condition, max_size=3),
    lambda inner: st.one_of(
        st.dictionaries(
            st.sampled_from(["$and", "$or", "$nor"]),
            st.lists(inner, min_size=1, max_size=3),
            min_size=1,
            max_size=1,
        ),
        st.dictionaries(st.just("$not"), inner, min_size=1, max_size=1),
    ),
    max_leaves=6,
)
references = st.sampled_from(["$" + f for f in FIELDS])
stages = st.one_of(
    st.builds(lambda f: {"$match": f}, filters),
    st.builds(
        lambda k, op, ref: {"$group": {"_id": k, "v": {op: ref}}},
        st.one_of(st.none(), references),
        st.sampled_from(["$sum", "$avg", "$min", "$max", "$push", "$count"]),
        st.one_of(references, st.just({}), st.integers()),
    ),
    st.builds(
        lambda f, d: {"$sort": {f: d}}, st.one_of(fields, st.just("v")), st.sampled_from([1, -1, 0, "asc"])
    ),
    st.builds(lambda n: {"$limit": n}, st.integers(min_value=-2, max_value=2**64)),
    st.builds(lambda n: {"$skip": n}, st.integers(min_value=-2, max_value=5)),
    st.builds(lambda f: {"$project": {f: 1}}, fields),
    st.builds(lambda n: {"$count": n}, st.sampled_from(["n", "1x", ""])),
)
numbers = st.one_of(st.integers(min_value=-3, max_value=2**64), st.sampled_from(["5", "-1", "²", "x"]))
rows = st.lists(st.dictionaries(fields, scalars, max_size=4), max_size=4)
PARAM_VALUES = {
    "filter": filters,
    "conditions": filters,
    "pipeline": st.lists(stages, max_size=3),
    "order_by": st.one_of(
        st.lists(st.builds(lambda sign, f: sign + f, st.sampled_from(["", "-", "+"]), fields), max_size=2),
        st.dictionaries(fields, st.sampled_from([1, -1]), max_size=2),
    ),
    "limit": numbers,
    "offset": numbers,
    "batch_size": numbers,
    "id": st.one_of(st.integers(0, 6), scalars),
    "ids": st.lists(st.one_of(st.integers(0, 6), scalars), max_size=3),
    "fields": st.one_of(st.dictionaries(fields, scalars, max_size=3), st.lists(fields, max_size=3)),
    "data": rows,
    "conflict_on": st.lists(fields, max_size=2),
    "update_fields": st.lists(fields, max_size=2),
}


#: Params an operation needs to build, so that most drawn workflows get as far as running.
CORE = {
    "Read": ["id"],
    "Update": ["conditions", "fields"],
    "Delete": ["id"],
    "Aggregate": ["pipeline"],
    "BulkCreate": ["data"],
    "BulkUpdate": ["filter", "fields"],
    "BulkDelete": ["filter"],
    "BulkUpsert": ["data", "conflict_on"],
}


def _core_params(cls: Any) -> list[str]:
    if cls.operation == "Create":
        return [f.attname for f in cls.schema().required_fields]
    return CORE.get(cls.operation, [])


def param_value(name: str) -> Any:
    """A value for a param: shaped like what the param takes, or anything at all."""
    shaped = PARAM_VALUES.get(name, scalars)
    return st.one_of(shaped, shaped, shaped, values, st.sampled_from(["{{x}}", "{{f}}", "{{n}}"]))


@st.composite
def workflows(draw: Any) -> Any:
    """A workflow document: mostly well-formed nodes with hostile params, sometimes garbage."""
    from django_dataflow.registry import get_node_class

    nodes = []
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        rare = draw(st.integers(0, 9)) == 9  # a malformed part now and then: most should build
        node_type = draw(st.text(max_size=8) if rare else st.sampled_from(TYPES))
        cls = get_node_class(node_type)
        accepted = list(cls.param_descriptions()) if cls is not None else NAMES
        pool = st.sampled_from(NAMES) if rare else st.sampled_from(accepted)
        core = [] if cls is None or rare else _core_params(cls)
        names = list(dict.fromkeys(core + draw(st.lists(pool, max_size=2, unique=True))))
        node: dict[str, Any] = {
            "id": draw(node_ids) if rare else f"n{index}",
            "type": node_type,
            "params": {name: draw(param_value(name)) for name in names},
        }
        nodes.append(node)
    ids = [node["id"] for node in nodes] or ["n0"]
    connections = (
        []
        if draw(st.integers(0, 3)) < 3
        else draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "source": st.sampled_from(ids),
                        "source_path": st.sampled_from(
                            ["id", "count", "records.0.id", "records", "created", "results", "x..y"]
                        ),
                        "target": st.sampled_from(ids),
                        "target_param": st.sampled_from(
                            ["filter.stock", "fields.name", "data", "id", "limit", "filter"]
                        ),
                    }
                ),
                max_size=1,
            )
        )
    )
    document: dict[str, Any] = {"nodes": nodes, "connections": connections}
    if draw(st.integers(0, 19)) == 19:
        document[draw(st.sampled_from(["version", "extra"]))] = draw(scalars)
    return draw(values) if draw(st.integers(0, 19)) == 19 else document


@settings(PROFILE)
@given(
    document=workflows(),
    inputs=st.dictionaries(st.sampled_from(["x", "n", "f"]), values, max_size=2),
    as_user=st.booleans(),
)
def test_random_workflow_json_only_raises_dataflow_errors(
    seeded: dict[str, Any], document: Any, inputs: dict[str, Any], as_user: bool
) -> None:
    with transaction.atomic():  # each example starts from the seeded rows
        user = make_user("view_product", "add_order", "view_order", username="fuzz") if as_user else None
        before = database_state()
        try:
            LocalRuntime().execute(Workflow.from_dict(document), inputs, user=user)
        except DataflowError:
            assert database_state() == before, "a rejected workflow changed the database"
        transaction.set_rollback(True)


@settings(PROFILE)
@given(text=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_random_workflow_text_only_raises_dataflow_errors(db: Any, text: Any) -> None:
    try:
        Workflow.from_json(text)
    except DataflowError as exc:
        assert str(exc)
    else:
        assert not math.isnan(0.0)  # a document that happens to be valid builds: nothing to check
