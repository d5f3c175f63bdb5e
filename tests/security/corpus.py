"""The hostile and malformed inputs of the security corpus, one row each.

A row says which surface the input arrives through, what it is, which error class it must raise
(None: it runs, harmlessly) and words the message must hold. tests/security/test_corpus.py runs
every row against a seeded database and checks that every table is byte-for-byte unchanged.

Surfaces: "python" (WorkflowBuilder + LocalRuntime), "json" (Workflow.from_dict / from_json, what
Celery, WorkflowDefinition and files carry), "inputs" (values arriving through {{placeholders}}),
"user" (runs given a user), "command" (management commands), "definition" (WorkflowDefinition and
django_dataflow.run). There is no HTTP API in this version (it belongs to the surfaces issue).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from django_dataflow import LocalRuntime, Workflow, WorkflowBuilder
from django_dataflow.exceptions import (
    NodeExecutionError,
    PermissionDenied,
    RecordNotFound,
    WorkflowValidationError,
)

WVE = WorkflowValidationError
NEE = NodeExecutionError
TEN_MB = "x" * (10 * 1024 * 1024)
SQL = "'; DROP TABLE shop_product; --"
SQL2 = '" OR 1=1; DELETE FROM auth_user; --'
SURROGATE = "caf\udce9"  # what surrogateescape makes of the invalid UTF-8 byte 0xE9


@dataclass(frozen=True)
class Case:
    """One hostile input: how it arrives, the error it must raise, words of the message."""

    id: str
    surface: str
    act: Callable[[dict[str, Any]], Any]
    error: type[BaseException] | tuple[type[BaseException], ...] | None
    match: str = ""
    section: str = ""


CASES: list[Case] = []
SECTION = ""


def add(id: str, surface: str, act: Callable[[dict[str, Any]], Any], error: Any, match: str = "") -> None:
    """Append a row (ids are unique)."""
    assert all(c.id != id for c in CASES), id
    CASES.append(Case(id, surface, act, error, match, SECTION))


def execute(workflow: Any, inputs: dict[str, Any] | None = None, user: Any = None) -> Any:
    return LocalRuntime().execute(workflow, inputs or {}, user=user)


def python_nodes(nodes: list[tuple], connections: list[tuple] = ()) -> Callable[[dict[str, Any]], Any]:
    def act(seed: dict[str, Any]) -> Any:
        builder = WorkflowBuilder()
        for node in nodes:
            builder.add_node(*node)
        for connection in connections:
            builder.add_connection(*connection)
        return execute(builder.build())

    return act


def as_dict(nodes: list[tuple], connections: list[tuple] = ()) -> dict[str, Any]:
    return {
        "nodes": [{"id": i, "type": t, "params": p} for t, i, p in nodes],
        "connections": [
            {"source": s, "source_path": sp, "target": t, "target_param": tp} for s, sp, t, tp in connections
        ],
    }


def json_text(text: str | bytes) -> Callable[[dict[str, Any]], Any]:
    return lambda seed: execute(Workflow.from_json(text))


def json_dict(data: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda seed: execute(Workflow.from_dict(data))


def both(id: str, node_type: str, params: dict[str, Any], error: Any, match: str = "") -> None:
    """The same node through the Python API and through workflow JSON text."""
    nodes = [(node_type, "n", params)]
    add(f"python-{id}", "python", python_nodes(nodes), error, match)
    try:
        text = json.dumps(as_dict(nodes), allow_nan=False)
    except ValueError:  # NaN and Infinity have no JSON form: the JSON surface refuses them itself
        text = None
    if text is not None:
        add(f"json-{id}", "json", json_text(text), error, match)


def templated(
    id: str, node_type: str, params: dict[str, Any], inputs: dict[str, Any], error: Any, match: str = ""
) -> None:
    """A node whose params hold placeholders, run with hostile inputs."""
    add(
        f"inputs-{id}",
        "inputs",
        lambda seed: execute(python_nodes_workflow(node_type, params), inputs),
        error,
        match,
    )


def python_nodes_workflow(node_type: str, params: dict[str, Any]) -> Workflow:
    builder = WorkflowBuilder()
    builder.add_node(node_type, "n", params)
    return builder.build()


# 1. SQL in values: bound parameters, never SQL. Reads match nothing; nothing is written. -----------

SECTION = "SQL in values"

for name, value in (("quote", SQL), ("or", SQL2), ("comment", "x' /*"), ("semicolon", "1; SELECT 1")):
    both(f"sql-value-filter-{name}", "ProductListNode", {"filter": {"name": value}}, None)
    both(f"sql-value-like-{name}", "ProductCountNode", {"filter": {"sku": {"$like": f"%{value}%"}}}, None)
both("sql-value-in", "ProductListNode", {"filter": {"sku": {"$in": [SQL, SQL2]}}}, None)
both("sql-value-json-key-value", "CustomerListNode", {"filter": {"metadata.tier": SQL}}, None)
both("sql-value-regex", "ProductListNode", {"filter": {"name": {"$regex": "'; DROP"}}}, None)
both("sql-value-read", "ProductReadNode", {"conditions": {"sku": SQL}}, RecordNotFound, "no Product matches")
both(
    "sql-value-update-conditions",
    "ProductUpdateNode",
    {"conditions": {"sku": SQL}, "fields": {"stock": 1}},
    RecordNotFound,
)
both("sql-value-delete-conditions", "ProductDeleteNode", {"conditions": {"sku": SQL2}}, RecordNotFound)
both("sql-value-bulk-delete", "ProductBulkDeleteNode", {"filter": {"name": SQL}}, None)
both(
    "sql-value-bulk-update", "ProductBulkUpdateNode", {"filter": {"sku": SQL}, "fields": {"name": SQL}}, None
)
both("sql-value-match", "OrderAggregateNode", {"pipeline": [{"$match": {"status": SQL}}]}, None)
both("sql-value-id", "ProductReadNode", {"id": "1 OR 1=1"}, NEE, "field 'id'")
both("sql-value-ids", "ProductBulkDeleteNode", {"ids": ["1) OR (1=1"]}, NEE, "ids: id")
both("sql-value-limit", "ProductListNode", {"limit": "10; DROP TABLE x"}, WVE, "'limit' must be an integer")

# 2. SQL in field names, order_by, JSON keys, operators, output names. --------------------------------

SECTION = "SQL in names, order_by, JSON keys, operators"

for name, field in (
    ("quote", "name'--"),
    ("drop", "name; DROP TABLE shop_product"),
    ("paren", "(SELECT 1)"),
    ("space", "name OR 1=1"),
    ("star", "*"),
):
    both(f"sql-field-filter-{name}", "ProductListNode", {"filter": {field: 1}}, WVE, "unknown field")
    both(f"sql-field-order-{name}", "ProductListNode", {"order_by": [f"-{field}"]}, WVE, "unknown field")
both(
    "sql-field-order-dict",
    "ProductListNode",
    {"order_by": {"name DESC, (SELECT 1)": 1}},
    WVE,
    "unknown field",
)
both("sql-field-order-direction", "ProductListNode", {"order_by": {"name": "DESC; DROP"}}, WVE, "direction")
both(
    "sql-field-projection",
    "ProductListNode",
    {"fields": ["name, (SELECT password FROM auth_user)"]},
    WVE,
    "unknown field",
)
both(
    "sql-field-create",
    "ProductCreateNode",
    {"name": "A", "sku": "A", "price": "1", "sku); DROP": 1},
    WVE,
    "unknown param",
)
both("sql-field-update", "ProductUpdateNode", {"id": 1, "fields": {"stock = 0 --": 1}}, WVE, "unknown field")
both("sql-field-bulk-row", "ProductBulkCreateNode", {"data": [{"name; --": "x"}]}, WVE, "unknown field")
both(
    "sql-field-conflict",
    "ProductBulkUpsertNode",
    {"data": [{"sku": "S"}], "conflict_on": ["sku) DO NOTHING; --"]},
    WVE,
    "unknown field",
)
both(
    "sql-field-update-fields",
    "ProductBulkUpsertNode",
    {
        "data": [{"sku": "S", "name": "n", "price": "1"}],
        "conflict_on": ["sku"],
        "update_fields": ["name = 1"],
    },
    WVE,
    "unknown field",
)
both(
    "sql-field-group",
    "OrderAggregateNode",
    {"pipeline": [{"$group": {"_id": "$status; DROP"}}]},
    WVE,
    "unknown field",
)
both(
    "sql-field-output-name",
    "OrderAggregateNode",
    {"pipeline": [{"$group": {"_id": "$status", "n; DROP": {"$count": {}}}}]},
    WVE,
    "output name",
)
both(
    "sql-field-sort-stage",
    "OrderAggregateNode",
    {"pipeline": [{"$sort": {"quantity, 1": 1}}]},
    WVE,
    "unknown field",
)
both(
    "sql-field-project",
    "OrderAggregateNode",
    {"pipeline": [{"$project": {"1; DROP": 1}}]},
    WVE,
    "unknown field",
)
both("sql-json-key-quote", "CustomerListNode", {"filter": {"metadata.tier') OR ('1": "x"}}, None)
both("sql-json-key-path", "CustomerListNode", {"filter": {'metadata.$."a"': 1}}, None)
both("sql-json-key-order", "CustomerListNode", {"order_by": ["metadata.x'); DROP"]}, None)
both(
    "sql-operator", "ProductListNode", {"filter": {"name": {"$eq; DROP TABLE x": 1}}}, WVE, "unknown operator"
)
both("sql-operator-top", "ProductListNode", {"filter": {"$or; --": [{"name": "x"}]}}, WVE, "unknown operator")

# 3. '__' lookups smuggled through names. --------------------------------------------------------------

SECTION = "'__' lookups smuggled through names"

for name, field in (
    ("startswith", "name__startswith"),
    ("regex", "sku__regex"),
    ("pk-in", "pk__in"),
    ("relation", "customer__email"),
    ("relation-password", "customer__password"),
    ("json", "metadata__tier"),
    ("dotted-lookup", "customer.email__startswith"),
    ("json-key", "metadata.tier__contains"),
    ("isnull", "description__isnull"),
):
    node_type = (
        "OrderListNode"
        if field.startswith("customer")
        else ("CustomerListNode" if field.startswith("metadata") else "ProductListNode")
    )
    both(f"dunder-filter-{name}", node_type, {"filter": {field: "x"}}, WVE, "")
both("dunder-password", "UserListNode", {"filter": {"password__startswith": "pbkdf2"}}, WVE, "unknown field")
both("dunder-order", "OrderListNode", {"order_by": ["customer__email"]}, WVE, "unknown field")
both("dunder-projection", "OrderListNode", {"fields": ["customer__email"]}, WVE, "unknown field")
both(
    "dunder-group",
    "OrderAggregateNode",
    {"pipeline": [{"$group": {"_id": "$customer__email"}}]},
    WVE,
    "unknown field",
)
both(
    "dunder-conflict",
    "ProductBulkUpsertNode",
    {"data": [{"sku": "S"}], "conflict_on": ["sku__iexact"]},
    WVE,
    "unknown field",
)
both("dunder-update-field", "ProductUpdateNode", {"id": 1, "fields": {"name__x": "a"}}, WVE, "unknown field")
both("dunder-create-field", "OrderCreateNode", {"product__name": "x", "quantity": 1}, WVE, "unknown param")
both("dunder-conditions", "ProductReadNode", {"conditions": {"id__gt": 0}}, WVE, "unknown field")
both(
    "dunder-contains-key",
    "CustomerListNode",
    {"filter": {"metadata": {"$contains": {"a__b": 1}}}},
    WVE,
    "not allowed",
)
both("dunder-json-empty-key", "CustomerListNode", {"filter": {"metadata..x": 1}}, WVE, "not allowed")
both("dunder-trailing-underscore", "CustomerListNode", {"filter": {"metadata.a_": 1}}, WVE, "not allowed")

# 4. Unknown operators and stages. -------------------------------------------------------------------

SECTION = "unknown operators and stages"

for op in ("$where", "$expr", "$function", "$text", "$elemMatch", "$size", "$all", "$mod", "$regexp", "$raw"):
    both(
        f"operator-{op[1:]}",
        "ProductListNode",
        {"filter": {"name": {op: "1"}}},
        WVE,
        f"unknown operator '{op}'",
    )
for op in ("$where", "$comment", "$sql", "$expr"):
    both(f"operator-top-{op[1:]}", "ProductListNode", {"filter": {op: "1"}}, WVE, f"unknown operator '{op}'")
for stage in ("$lookup", "$out", "$merge", "$unionWith", "$facet"):
    both(f"stage-{stage[1:]}", "OrderAggregateNode", {"pipeline": [{stage: {}}]}, WVE, "unknown stage")
both(
    "accumulator-function",
    "OrderAggregateNode",
    {"pipeline": [{"$group": {"_id": None, "x": {"$function": "return 1"}}}]},
    WVE,
    "unknown accumulator",
)
both(
    "having-regex",
    "OrderAggregateNode",
    {"pipeline": [{"$group": {"_id": "$status", "n": {"$count": {}}}}, {"$match": {"n": {"$regex": "1"}}}]},
    WVE,
    "operator '$regex'",
)
both("operator-mixed-keys", "ProductListNode", {"filter": {"name": {"$eq": "x", "plain": 1}}}, WVE, "mixes")
both("operator-not-empty", "ProductListNode", {"filter": {"name": {"$not": {}}}}, WVE, "$not")
both("operator-or-empty", "ProductListNode", {"filter": {"$or": []}}, WVE, "non-empty list")

# 5. Type confusion. ---------------------------------------------------------------------------------

SECTION = "type confusion, NaN/Infinity, huge numbers, 10 MB text, NUL, invalid UTF-8"

both(
    "type-list-for-name",
    "ProductCreateNode",
    {"name": ["a"], "sku": "S", "price": "1"},
    NEE,
    "expects a single value",
)
both("type-dict-for-id", "ProductReadNode", {"id": {"$gt": 0}}, NEE, "expects a single value")
both("type-list-for-id", "ProductDeleteNode", {"id": [1, 2]}, NEE, "expects a single value")
both("type-dict-for-ids", "ProductBulkDeleteNode", {"ids": [{"$gt": 0}]}, NEE, "expects a single value")
both("type-ids-string", "ProductBulkDeleteNode", {"ids": "1,2"}, NEE, "'ids' must be a list")
both("type-conditions-string", "ProductReadNode", {"conditions": "sku = 'x'"}, WVE, "must be an object")
both("type-filter-list", "ProductListNode", {"filter": [{"name": "x"}]}, WVE, "must be an object")
both("type-fields-list", "ProductUpdateNode", {"id": 1, "fields": ["stock"]}, WVE, "must be an object")
both("type-data-dict", "ProductBulkCreateNode", {"data": {"name": "x"}}, NEE, "must be a list")
both("type-data-string", "ProductBulkCreateNode", {"data": "rows"}, NEE, "must be a list")
both("type-data-row-list", "ProductBulkCreateNode", {"data": [["name", "x"]]}, WVE, "must be an object")
both(
    "type-bool-for-int",
    "ProductCreateNode",
    {"name": "A", "sku": "S", "price": "1", "stock": True},
    NEE,
    "takes a number",
)
both("type-bool-for-decimal", "ProductListNode", {"filter": {"price": {"$gt": False}}}, NEE, "takes a number")
both("type-string-for-bool", "ProductListNode", {"filter": {"active": "maybe"}}, NEE, "field 'active'")
both(
    "type-nan-price",
    "ProductCreateNode",
    {"name": "A", "sku": "S", "price": float("nan")},
    NEE,
    "not a valid value",
)
both(
    "type-nan-string-price",
    "ProductCreateNode",
    {"name": "A", "sku": "S", "price": "NaN"},
    NEE,
    "field 'price'",
)
both(
    "type-infinity-filter",
    "ProductListNode",
    {"filter": {"stock": {"$gt": float("inf")}}},
    NEE,
    "not a valid value",
)
both(
    "type-infinity-string",
    "ProductListNode",
    {"filter": {"price": {"$lt": "Infinity"}}},
    NEE,
    "$lt on field 'price'",
)
both(
    "type-infinity-float-string",
    "ProductListNode",
    {"filter": {"stock": {"$lt": "inf"}}},
    NEE,
    "$lt on field 'stock'",
)
both(
    "type-nan-in-json",
    "CustomerCreateNode",
    {"name": "A", "email": "a@x.io", "metadata": {"a": float("nan")}},
    NEE,
    "not a JSON number",
)
add(
    "json-type-nan-literal",
    "json",
    json_text('{"nodes": [{"id": "n", "type": "ProductListNode", "params": {"filter": {"stock": NaN}}}]}'),
    WVE,
    "NaN is not a JSON value",
)
add(
    "json-type-infinity-literal",
    "json",
    json_text(
        '{"nodes": [{"id": "n", "type": "ProductListNode", "params": {"filter": {"stock": -Infinity}}}]}'
    ),
    WVE,
    "Infinity is not a JSON value",
)
both(
    "type-huge-int-create",
    "ProductCreateNode",
    {"name": "A", "sku": "S", "price": "1", "stock": 10**30},
    NEE,
    "out of range",
)
both(
    "type-huge-int-bulk",
    "ProductBulkCreateNode",
    {"data": [{"name": "A", "sku": "S", "price": "1", "stock": -(2**70)}]},
    NEE,
    "out of range",
)
both("type-huge-int-filter", "ProductListNode", {"filter": {"stock": {"$gt": 10**30}}}, None)
both("type-huge-int-id", "ProductReadNode", {"id": 10**30}, RecordNotFound)
both("type-huge-decimal", "ProductCreateNode", {"name": "A", "sku": "S", "price": "1e400"}, NEE, "price")
both("type-huge-limit", "ProductListNode", {"limit": 10**30}, WVE, "MAX_LIMIT")
both("type-huge-offset", "ProductListNode", {"offset": 10**30}, WVE, "largest offset")
both("type-huge-skip", "OrderAggregateNode", {"pipeline": [{"$skip": 10**30}]}, WVE, "$skip")
both("type-negative-limit", "ProductListNode", {"limit": -1}, WVE, "at least 0")
both("type-negative-offset", "ProductListNode", {"offset": -5}, WVE, "at least 0")
both("type-negative-skip", "OrderAggregateNode", {"pipeline": [{"$limit": -1}]}, WVE, "non-negative")
both("type-float-limit", "ProductListNode", {"limit": 1.5}, WVE, "must be an integer")
both("type-unicode-digit-limit", "ProductListNode", {"limit": "²"}, WVE, "must be an integer")
both("type-list-limit", "ProductListNode", {"limit": [10]}, WVE, "must be an integer")
both("type-batch-zero", "ProductBulkCreateNode", {"data": [], "batch_size": 0}, WVE, "at least 1")
both("type-batch-huge", "ProductBulkCreateNode", {"data": [], "batch_size": 10**9}, WVE, "batch_size")
both("type-flag-string", "ProductListNode", {"with_total": "yes"}, WVE, "true or false")
both("type-order-by-int", "ProductListNode", {"order_by": 5}, WVE, "order_by takes")
both("type-order-by-bool-direction", "ProductListNode", {"order_by": {"name": True}}, WVE, "direction")
both("type-pipeline-dict", "OrderAggregateNode", {"pipeline": {"$match": {}}}, WVE, "must be a list")
both("type-cursor-forged", "ProductListNode", {"after": "eyJrIjpbXX0:forged:sig"}, WVE, "not a cursor")
both("type-cursor-int", "ProductListNode", {"after": 5}, WVE, "cursor string")
both("type-regex-int", "ProductListNode", {"filter": {"name": {"$regex": 5}}}, WVE, "takes a string")
both("type-in-scalar", "ProductListNode", {"filter": {"sku": {"$in": "S"}}}, WVE, "takes a list")
both("type-between-three", "ProductListNode", {"filter": {"stock": {"$between": [1, 2, 3]}}}, WVE, "$between")
both("type-date-garbage", "OrderListNode", {"filter": {"placed_at": {"$gt": "yesterday"}}}, NEE, "placed_at")
both("type-email-garbage", "CustomerCreateNode", {"name": "A", "email": "not an email"}, NEE, "email")
both(
    "type-choice-garbage",
    "OrderUpdateNode",
    {"conditions": {"reference": "R-1"}, "fields": {"status": "x"}},
    NEE,
    "status",
)
both("type-fk-missing", "OrderCreateNode", {"product_id": 999999, "quantity": 1}, NEE, "product")
both("type-negative-positive-int", "OrderCreateNode", {"product_id": 1, "quantity": -1}, NEE, "quantity")
both("text-ten-mb-filter", "ProductListNode", {"filter": {"name": TEN_MB}}, WVE, "MAX_PARAMS_BYTES")
both(
    "text-ten-mb-create",
    "ProductCreateNode",
    {"name": TEN_MB, "sku": "S", "price": "1"},
    WVE,
    "MAX_PARAMS_BYTES",
)
add(
    "python-text-ten-mb-bulk-char",
    "python",
    python_nodes([("ProductBulkCreateNode", "n", {"data": [{"name": TEN_MB, "sku": "S", "price": "1"}]})]),
    NEE,
    "row 0 (chunk 1): field 'name'",
)
both(
    "text-too-long-bulk",
    "ProductBulkCreateNode",
    {"data": [{"name": "n" * 201, "sku": "S", "price": "1"}]},
    NEE,
    "at most 200 characters",
)
add(
    "python-text-ten-mb-bulk-text",
    "python",
    python_nodes(
        [
            (
                "ProductBulkCreateNode",
                "n",
                {"data": [{"name": "A", "sku": "S", "price": "1", "description": TEN_MB}]},
            )
        ]
    ),
    NEE,
    "MAX_PARAMS_BYTES",
)
both(
    "text-too-long-create",
    "ProductCreateNode",
    {"name": "A", "sku": "S" * 65, "price": "1", "validate": False},
    NEE,
    "at most 64 characters",
)
both("text-nul-filter", "ProductListNode", {"filter": {"name": "a\x00b"}}, WVE, "NUL")
both("text-nul-create", "ProductCreateNode", {"name": "a\x00", "sku": "S", "price": "1"}, WVE, "NUL")
both(
    "text-nul-json-key",
    "CustomerCreateNode",
    {"name": "A", "email": "a@x.io", "metadata": {"k\x00": 1}},
    WVE,
    "NUL",
)
both("text-nul-field-name", "ProductListNode", {"filter": {"name\x00": "x"}}, WVE, "NUL")
both("text-surrogate-filter", "ProductListNode", {"filter": {"name": SURROGATE}}, WVE, "lone surrogate")
both(
    "text-surrogate-create",
    "CustomerCreateNode",
    {"name": SURROGATE, "email": "a@x.io"},
    WVE,
    "lone surrogate",
)
add(
    "python-text-nul-bulk-row",
    "python",
    python_nodes([("ProductBulkCreateNode", "n", {"data": [{"name": "a\x00", "sku": "S", "price": "1"}]})]),
    NEE,
    "NUL",
)
add(
    "python-text-surrogate-bulk-row",
    "python",
    python_nodes([("ProductBulkCreateNode", "n", {"data": [{"name": SURROGATE, "sku": "S", "price": "1"}]})]),
    NEE,
    "lone surrogate",
)
add(
    "json-text-invalid-utf8",
    "json",
    json_text(
        b'{"nodes": [{"id": "n", "type": "ProductListNode", "params": {"filter": {"name": "caf\xe9"}}}]}'
    ),
    WVE,
    "workflow JSON is not valid",
)
add(
    "json-text-invalid-utf8-key",
    "json",
    json_text(b'{"nodes": [{"id": "\xff\xfe", "type": "x"}]}'),
    WVE,
    "not valid",
)
add("json-text-not-json", "json", json_text("nodes: [DROP TABLE]"), WVE, "not valid")
add("json-text-truncated", "json", json_text('{"nodes": [{"id": "n"'), WVE, "not valid")

# 6. Deep nesting, long $or lists, catastrophic regexes. ---------------------------------------------

SECTION = "deep nesting, long $or lists, catastrophic regexes"


def _deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def nested(op: str, depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "x"}
    for _ in range(depth):
        spec = {op: [spec]} if op != "$not" else {"$not": spec}
    return spec


both("nesting-and-13", "ProductListNode", {"filter": nested("$and", 13)}, WVE, "MAX_FILTER_DEPTH")
both("nesting-or-50", "ProductListNode", {"filter": nested("$or", 50)}, WVE, "MAX_FILTER_DEPTH")
both("nesting-not-40", "ProductListNode", {"filter": nested("$not", 40)}, WVE, "MAX_FILTER_DEPTH")
both(
    "nesting-field-not-40",
    "ProductListNode",
    {"filter": {"name": eval("{'$not': " * 40 + "{'$eq': 'x'}" + "}" * 40)}},
    WVE,
    "MAX_FILTER_DEPTH",
)
both(
    "nesting-match-13",
    "OrderAggregateNode",
    {"pipeline": [{"$match": nested("$nor", 13)}]},
    WVE,
    "MAX_FILTER_DEPTH",
)
both(
    "nesting-json-value-100",
    "CustomerCreateNode",
    {"name": "A", "email": "a@x.io", "metadata": eval("{'a': " * 100 + "1" + "}" * 100)},
    WVE,
    "nested deeper",
)
add(
    "python-nesting-params-100k",
    "python",
    lambda seed: execute(python_nodes_workflow("CustomerCountNode", {"filter": _deep_list(100_000)})),
    WVE,
    "nested deeper",
)
add(
    "json-nesting-params-100k",
    "json",
    json_text(
        '{"nodes": [{"id": "n", "type": "CustomerCountNode", "params": {"filter": '
        + "[" * 100_000
        + "]" * 100_000
        + "}}]}"
    ),
    WVE,
    "nested",
)
both(
    "long-or-1001",
    "ProductListNode",
    {"filter": {"$or": [{"stock": i} for i in range(1001)]}},
    WVE,
    "MAX_FILTER_TERMS",
)
both(
    "long-or-20000",
    "ProductCountNode",
    {"filter": {"$or": [{"sku": str(i)} for i in range(20_000)]}},
    WVE,
    "MAX_FILTER_TERMS",
)
both(
    "long-and-operators",
    "ProductCountNode",
    {"filter": {"$and": [{"stock": {"$ne": i}} for i in range(1001)]}},
    WVE,
    "MAX_FILTER_TERMS",
)
both("long-pipeline", "OrderAggregateNode", {"pipeline": [{"$match": {}}] * 33}, WVE, "at most 32")
for name, pattern in (
    ("nested-plus", "(a+)+$"),
    ("alternation", "(a|aa)+$"),
    ("nested-star", "((a*)*)*b"),
    ("words", r"^(\w+\s?)*$"),
    ("counted", "(a{2,}){2,}"),
    ("group-star", "(x+x+)+y"),
):
    both(f"regex-{name}", "ProductListNode", {"filter": {"name": {"$regex": pattern}}}, WVE, "regex")
both(
    "regex-too-long", "ProductListNode", {"filter": {"name": {"$regex": "a" * 1001}}}, WVE, "MAX_REGEX_LENGTH"
)
both("regex-invalid", "ProductListNode", {"filter": {"name": {"$iregex": "(unclosed"}}}, WVE, "$iregex")
both(
    "regex-python-only", "ProductListNode", {"filter": {"name": {"$regex": "(?P<x>a)"}}}, WVE, "named groups"
)
both(
    "like-lone-backslash", "ProductListNode", {"filter": {"name": {"$like": "abc\\"}}}, WVE, "lone backslash"
)

# 7. Graph abuse: cycles, self-connections, sizes, ids. ----------------------------------------------

SECTION = "graph abuse: cycles, self-connections, 100k nodes, ids"

COUNT = ("ProductCountNode", "a", {})
add(
    "python-graph-self-connection",
    "python",
    python_nodes([COUNT], [("a", "count", "a", "filter.stock")]),
    WVE,
    "cycle: a -> a",
)
add(
    "json-graph-self-connection",
    "json",
    json_dict(as_dict([COUNT], [("a", "count", "a", "filter.stock")])),
    WVE,
    "cycle",
)
add(
    "python-graph-two-cycle",
    "python",
    python_nodes(
        [COUNT, ("ProductCountNode", "b", {})],
        [("a", "count", "b", "filter.stock"), ("b", "count", "a", "filter.stock")],
    ),
    WVE,
    "cycle",
)
add(
    "json-graph-three-cycle",
    "json",
    json_dict(
        as_dict(
            [COUNT, ("ProductCountNode", "b", {}), ("ProductCountNode", "c", {})],
            [
                ("a", "count", "b", "filter.stock"),
                ("b", "count", "c", "filter.stock"),
                ("c", "count", "a", "filter.stock"),
            ],
        )
    ),
    WVE,
    "cycle",
)
add(
    "json-graph-100k-nodes",
    "json",
    json_dict({"nodes": [{"id": f"n{i}", "type": "ProductCountNode"} for i in range(100_000)]}),
    WVE,
    "MAX_NODES",
)
add(
    "python-graph-100k-nodes",
    "python",
    python_nodes([("ProductCountNode", f"n{i}", {}) for i in range(100_000)]),
    WVE,
    "MAX_NODES",
)
add(
    "json-graph-100k-connections",
    "json",
    json_dict(
        as_dict(
            [COUNT, ("ProductCountNode", "b", {})],
            [("a", "count", "b", f"filter.k{i}") for i in range(100_000)],
        )
    ),
    WVE,
    "MAX_CONNECTIONS",
)
add(
    "json-graph-missing-node",
    "json",
    json_dict(as_dict([COUNT], [("a", "count", "ghost", "filter")])),
    WVE,
    "no node 'ghost'",
)
add(
    "json-graph-unknown-target-param",
    "json",
    json_dict(as_dict([COUNT, ("ProductCountNode", "b", {})], [("a", "count", "b", "where")])),
    WVE,
    "unknown param 'where'",
)
add(
    "json-graph-unknown-result-key",
    "json",
    json_dict(as_dict([COUNT, ("ProductCountNode", "b", {})], [("a", "password", "b", "filter.stock")])),
    WVE,
    "have no 'password'",
)
add(
    "json-graph-double-target",
    "json",
    json_dict(
        as_dict(
            [COUNT, ("ProductCountNode", "b", {})],
            [("a", "count", "b", "filter"), ("a", "count", "b", "filter")],
        )
    ),
    WVE,
    "already connected",
)
add(
    "json-graph-empty-segment",
    "json",
    json_dict(as_dict([COUNT, ("ProductCountNode", "b", {})], [("a", "count..x", "b", "filter")])),
    WVE,
    "empty segments",
)
add(
    "json-graph-nul-in-path",
    "json",
    json_dict(as_dict([COUNT, ("ProductCountNode", "b", {})], [("a", "count\x00", "b", "filter")])),
    WVE,
    "printable",
)
add(
    "json-graph-connection-not-strings",
    "json",
    json_dict(
        as_dict([COUNT])
        | {"connections": [{"source": ["a"], "source_path": 1, "target": None, "target_param": {}}]}
    ),
    WVE,
    "non-empty strings",
)
add("json-graph-duplicate-ids", "json", json_dict(as_dict([COUNT, COUNT])), WVE, "duplicate node id")
add("json-graph-id-nul", "json", json_dict(as_dict([("ProductCountNode", "a\x00", {})])), WVE, "node ids")
add(
    "json-graph-id-ten-mb", "json", json_dict(as_dict([("ProductCountNode", TEN_MB, {})])), WVE, "characters)"
)
add("json-graph-type-ten-mb", "json", json_dict(as_dict([(TEN_MB, "a", {})])), WVE, "unknown node type")
add(
    "json-graph-type-none",
    "json",
    json_dict({"nodes": [{"id": "a", "type": None}]}),
    WVE,
    "unknown node type",
)
add(
    "json-graph-type-sql",
    "json",
    json_dict(as_dict([("ProductCountNode; DROP TABLE x", "a", {})])),
    WVE,
    "unknown node type",
)
add(
    "json-graph-params-list",
    "json",
    json_dict({"nodes": [{"id": "a", "type": "ProductCountNode", "params": ["filter"]}]}),
    WVE,
    "must be an object",
)
add(
    "json-graph-extra-node-key",
    "json",
    json_dict({"nodes": [{"id": "a", "type": "ProductCountNode", "sql": "DROP"}]}),
    WVE,
    "unknown ['sql']",
)
add(
    "json-graph-extra-key", "json", json_dict({"nodes": [], "exec": "rm -rf /"}), WVE, "unknown workflow keys"
)
add("json-graph-version", "json", json_dict({"version": 99, "nodes": []}), WVE, "version 99")
add("json-graph-not-object", "json", json_dict([{"id": "a"}]), WVE, "must be an object")
add(
    "json-graph-nodes-not-list", "json", json_dict({"nodes": {"a": "ProductCountNode"}}), WVE, "must be lists"
)
add(
    "json-graph-node-not-object", "json", json_dict({"nodes": ["ProductCountNode"]}), WVE, "must be an object"
)
add(
    "json-graph-connection-into-password",
    "json",
    json_dict(
        as_dict(
            [("UserListNode", "a", {}), ("UserUpdateNode", "b", {"id": 1})],
            [("a", "count", "b", "fields.password")],
        )
    ),
    NEE,
    "unknown field 'password'",
)

# 8. Templating: placeholders are replaced once, never re-scanned; inputs are bounded. -----------------

SECTION = "templating and hostile inputs"

templated(
    "recursive-placeholder",
    "ProductListNode",
    {"filter": {"name": "pre-{{a}}"}},
    {"a": "{{b}}", "b": "secret"},
    None,
)
templated(
    "placeholder-in-input-key",
    "ProductListNode",
    {"filter": "{{f}}"},
    {"f": {"{{x}}": 1}},
    NEE,
    "unknown field '{{x}}'",
)
templated(
    "operator-injection",
    "ProductListNode",
    {"filter": {"name": "{{n}}"}},
    {"n": {"$where": "1"}},
    NEE,
    "unknown operator '$where'",
)
templated(
    "regex-injection",
    "ProductListNode",
    {"filter": {"name": "{{n}}"}},
    {"n": {"$regex": "(a+)+$"}},
    NEE,
    "regex",
)
templated(
    "field-injection",
    "UserListNode",
    {"filter": "{{f}}"},
    {"f": {"password": {"$startswith": "p"}}},
    NEE,
    "unknown field 'password'",
)
templated("order-injection", "UserListNode", {"order_by": "{{o}}"}, {"o": ["password"]}, NEE, "unknown field")
templated(
    "fields-injection",
    "UserUpdateNode",
    {"id": 1, "fields": "{{f}}"},
    {"f": {"password": "x"}},
    NEE,
    "unknown field 'password'",
)
templated(
    "limit-injection", "ProductListNode", {"limit": "{{l}}"}, {"l": "5 OR 1=1"}, NEE, "must be an integer"
)
templated(
    "pipeline-injection",
    "OrderAggregateNode",
    {"pipeline": "{{p}}"},
    {"p": [{"$out": "x"}]},
    NEE,
    "unknown stage",
)
templated("missing-input", "ProductListNode", {"filter": {"name": "{{nope}}"}}, {}, WVE, "missing input")
templated(
    "dunder-input-name",
    "ProductListNode",
    {"filter": {"name": "{{__class__}}"}},
    {},
    WVE,
    "missing input(s) __class__",
)
templated(
    "inputs-not-dict", "ProductListNode", {"filter": {"name": "{{a}}"}}, ["a"], WVE, "inputs must be a dict"
)
templated("input-nul", "ProductListNode", {"filter": {"name": "{{a}}"}}, {"a": "x\x00"}, WVE, "NUL")
templated(
    "input-surrogate",
    "ProductListNode",
    {"filter": {"name": "{{a}}"}},
    {"a": SURROGATE},
    WVE,
    "lone surrogate",
)
templated(
    "input-ten-mb", "ProductListNode", {"filter": {"name": "{{a}}"}}, {"a": TEN_MB}, WVE, "MAX_PARAMS_BYTES"
)
templated(
    "input-deep",
    "ProductListNode",
    {"filter": "{{f}}"},
    {"f": eval("{'$and': [" * 70 + "{}" + "]}" * 70)},
    WVE,
    "nested deeper",
)
templated(
    "input-nan",
    "ProductListNode",
    {"filter": {"stock": "{{a}}"}},
    {"a": float("nan")},
    NEE,
    "not a valid value",
)
templated(
    "input-huge-int",
    "ProductCreateNode",
    {"name": "A", "sku": "S", "price": "1", "stock": "{{a}}"},
    {"a": 10**40},
    NEE,
    "out of range",
)
templated(
    "input-list-for-scalar",
    "ProductCreateNode",
    {"name": "{{a}}", "sku": "S", "price": "1"},
    {"a": ["x"]},
    NEE,
    "expects a single value",
)
templated(
    "input-bulk-rows",
    "ProductBulkCreateNode",
    {"data": "{{rows}}"},
    {"rows": [{"name": "A", "sku": "S", "price": "1", "stock": "many"}]},
    NEE,
    "stock",
)
templated("input-unused-surrogate-key", "ProductCountNode", {}, {SURROGATE: 1}, WVE, "lone surrogate")
templated(
    "expansion-bomb-text",
    "ProductListNode",
    {"filter": {"name": "{{a}}" * 100_000}},
    {"a": "x" * 1000},
    NEE,
    "param 'filter' grows by more than DATAFLOW['MAX_PARAMS_BYTES']",
)
templated(
    "expansion-bomb-list",
    "ProductCountNode",
    {"filter": {"sku": {"$in": ["{{a}}"] * 100_000}}},
    {"a": "x" * 100},
    NEE,
    "grows by more than",
)
templated(
    "expansion-bomb-rows",
    "ProductBulkCreateNode",
    {"data": [{"name": "{{n}}", "sku": "S", "price": "1"}] * 100_000},
    {"n": "n" * 150},
    NEE,
    "param 'data' grows by more than",
)
templated(
    "expansion-bomb-json",
    "CustomerCreateNode",
    {"name": "A", "email": "a@x.io", "metadata": {"k": "{{a}}{{a}}{{a}}{{a}}"}},
    {"a": "y" * 400_000},
    NEE,
    "param 'metadata' grows",
)


# 9. Runs given a user: permissions, related models, row filters. -------------------------------------

SECTION = "permissions, related models"


def as_user(
    codenames: tuple[str, ...], nodes: list[tuple], inputs: dict[str, Any] | None = None
) -> Callable[[dict[str, Any]], Any]:
    def act(seed: dict[str, Any]) -> Any:
        user = seed["users"][codenames]
        builder = WorkflowBuilder()
        for node in nodes:
            builder.add_node(*node)
        return execute(builder.build(), inputs, user=user)

    return act


#: Permission sets of the users the corpus needs (created by the test before the snapshot).
USERS: tuple[tuple[str, ...], ...] = (
    (),
    ("view_order",),
    ("view_product", "add_product"),
    ("add_order", "view_order"),
    ("add_customer", "view_order"),
)

for op, params in (
    ("Create", {"name": "A", "sku": "S", "price": "1"}),
    ("Read", {"id": 1}),
    ("List", {}),
    ("Count", {}),
    ("Update", {"id": 1, "fields": {"stock": 0}}),
    ("Delete", {"id": 1}),
    ("Aggregate", {"pipeline": []}),
    ("BulkCreate", {"data": []}),
    ("BulkUpdate", {"all": True, "fields": {"stock": 0}}),
    ("BulkDelete", {"all": True}),
    ("BulkUpsert", {"data": [], "conflict_on": ["sku"]}),
):
    add(
        f"user-no-permission-{op.lower()}",
        "user",
        as_user((), [(f"Product{op}Node", "n", params)]),
        PermissionDenied,
        f"node 'n' (Product{op}Node) needs permission",
    )
add(
    "user-upsert-needs-change",
    "user",
    as_user(
        ("view_product", "add_product"),
        [("ProductBulkUpsertNode", "n", {"data": [], "conflict_on": ["sku"]})],
    ),
    PermissionDenied,
    "shop.change_product",
)
add(
    "user-related-filter",
    "user",
    as_user(("view_order",), [("OrderListNode", "n", {"filter": {"customer.email": "ada@example.com"}})]),
    PermissionDenied,
    "shop.view_customer",
)
add(
    "user-related-order-by",
    "user",
    as_user(("view_order",), [("OrderListNode", "n", {"order_by": ["product.price"]})]),
    PermissionDenied,
    "shop.view_product",
)
add(
    "user-related-group",
    "user",
    as_user(
        ("view_order",), [("OrderAggregateNode", "n", {"pipeline": [{"$group": {"_id": "$customer.email"}}]})]
    ),
    PermissionDenied,
    "shop.view_customer",
)
add(
    "user-related-from-input",
    "user",
    as_user(
        ("add_customer", "view_order"),
        [
            ("CustomerCreateNode", "c", {"name": "Zed", "email": "zed@example.com"}),
            ("OrderListNode", "n", {"filter": "{{f}}"}),
        ],
        {"f": {"product.sku": "L-1"}},
    ),
    PermissionDenied,
    "shop.view_product",
)
add(
    "user-later-node-denied",
    "user",
    as_user(
        ("add_order", "view_order"),
        [("OrderCreateNode", "c", {"product_id": 1, "quantity": 1}), ("ProductDeleteNode", "d", {"id": 1})],
    ),
    PermissionDenied,
    "shop.delete_product",
)

# 10. Management commands and stored definitions. -----------------------------------------------------

SECTION = "management commands and stored definitions"

for name, value in (
    ("sql", SQL),
    ("nul", "shop.Product\x00"),
    ("ten-mb", TEN_MB),
    ("dunder", "shop__Product"),
    ("glob", "*"),
):
    add(
        f"command-nodes-model-{name}",
        "command",
        lambda seed, value=value: call_command("dataflow_nodes", "--model", value),
        CommandError,
        "No registered model",
    )
add(
    "command-nodes-unknown-option",
    "command",
    lambda seed: call_command("dataflow_nodes", "--sql", "DROP TABLE x"),
    CommandError,
    "unrecognized arguments",
)
add(
    "command-unknown",
    "command",
    lambda seed: call_command("dataflow_nodes; rm -rf /"),
    CommandError,
    "Unknown command",
)


def save_definition(workflow: Any, name: str = "nightly") -> Callable[[dict[str, Any]], Any]:
    def act(seed: dict[str, Any]) -> Any:
        from django_dataflow.models import WorkflowDefinition

        return WorkflowDefinition.objects.create(name=name, workflow=workflow)

    return act


def clean_definition(workflow: Any) -> Callable[[dict[str, Any]], Any]:
    def act(seed: dict[str, Any]) -> Any:
        from django_dataflow.models import WorkflowDefinition

        WorkflowDefinition(name="nightly", workflow=workflow).full_clean()

    return act


add(
    "definition-save-cycle",
    "definition",
    save_definition(as_dict([COUNT], [("a", "count", "a", "filter.x")])),
    WVE,
    "cycle",
)
add(
    "definition-save-password",
    "definition",
    save_definition(as_dict([("UserListNode", "a", {"filter": {"password__startswith": "p"}})])),
    WVE,
    "unknown field",
)
add(
    "definition-save-100k",
    "definition",
    save_definition({"nodes": [{"id": f"n{i}", "type": "ProductCountNode"} for i in range(100_000)]}),
    WVE,
    "MAX_NODES",
)
add(
    "definition-save-not-json",
    "definition",
    save_definition("DROP TABLE shop_product"),
    WVE,
    "must be an object",
)
add(
    "definition-clean-operator",
    "definition",
    clean_definition(as_dict([("ProductListNode", "a", {"filter": {"$where": "1"}})])),
    ValidationError,
    "unknown operator",
)
add(
    "definition-run-unknown-name",
    "definition",
    lambda seed: __import__("django_dataflow").run(SQL),
    WVE,
    "no workflow definition named",
)
add(
    "definition-run-async-unknown-name",
    "definition",
    lambda seed: __import__("django_dataflow").run("x\x00", async_=True),
    WVE,
    "no workflow definition named",
)
