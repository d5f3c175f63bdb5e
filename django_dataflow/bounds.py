"""Resource bounds on what a workflow carries from outside: node and connection counts, the size
and nesting of params and inputs, and text a database could not store.

Every check here runs before any SQL; the settings behind them are described in docs/security.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django_dataflow import conf
from django_dataflow.exceptions import WorkflowValidationError

#: Deepest nesting of lists and objects inside one node's params or a run's inputs. Deeper
#: documents would exhaust Python's recursion limit in json, templating and the ORM.
MAX_DEPTH = 64
#: Params of bulk nodes that hold rows or keys: bounded by MAX_BULK_ROWS (and each value by its
#: field) rather than by size, so that a legitimate bulk load is not measured value by value.
ROW_PARAMS = frozenset({"data", "ids"})


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored as text (NUL, lone surrogates), or None when it can."""
    if "\x00" in text:
        return "holds a NUL character (\\x00), which PostgreSQL text cannot store"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode (it holds a lone surrogate, e.g. from invalid UTF-8)"
    return None


def _label(where: str, path: tuple[Any, ...] | None) -> str:
    keys: list[str] = []
    while path is not None:  # (parent path, key) pairs: cheap to build, flattened only on error
        path, key = path
        keys.append(str(key))
    return ".".join([where, *reversed(keys)])


def measure(value: Any, *, where: str, limit: int, setting: str = "MAX_PARAMS_BYTES") -> int:
    """The approximate JSON size of value, refusing it past limit bytes, past MAX_DEPTH levels or
    with text no database column could hold. Iterative, so hostile nesting cannot overflow the stack.
    """
    size = 0
    stack: list[tuple[Any, int, Any]] = [(value, 0, None)]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
            if "\x00" in item or not item.isascii():
                problem = text_problem(item)
                if problem:
                    raise WorkflowValidationError(f"{_label(where, path)}: the text {problem}")
        elif isinstance(item, Mapping):
            if depth >= MAX_DEPTH:
                raise WorkflowValidationError(
                    f"{_label(where, path)}: nested deeper than {MAX_DEPTH} levels"
                )
            size += 2
            for key, nested in item.items():
                if isinstance(key, str):
                    size += len(key) + 4
                    problem = text_problem(key) if "\x00" in key or not key.isascii() else None
                    if problem:
                        raise WorkflowValidationError(f"{_label(where, path)}: a key {problem}")
                else:
                    size += 8
                stack.append((nested, depth + 1, (path, key)))
        elif isinstance(item, (list, tuple)):
            if depth >= MAX_DEPTH:
                raise WorkflowValidationError(
                    f"{_label(where, path)}: nested deeper than {MAX_DEPTH} levels"
                )
            size += 2 + len(item)
            stack.extend((nested, depth + 1, (path, i)) for i, nested in enumerate(item))
        else:
            size += 8  # numbers, booleans, null, dates: small; iterables are streamed, not sized
        if size > limit:
            raise WorkflowValidationError(
                f"{where} is larger than DATAFLOW[{setting!r}] ({limit} bytes of JSON)"
            )
    return size


def check_params(node_id: str, params: Mapping[str, Any], rows: Iterable[str] = ()) -> list[str]:
    """Build-time bounds of one node's params; the row params named in rows only have their length
    checked (a bulk node's 'data' and 'ids')."""
    limit = conf.max_params_bytes()
    streamed = ROW_PARAMS & set(rows)
    sized = {k: v for k, v in params.items() if k not in streamed}
    problems = []
    try:
        measure(sized, where=f"node '{node_id}': params", limit=limit)
        for name in streamed & set(params):
            rows = params[name]
            if isinstance(rows, (list, tuple)):
                check_row_count(len(rows), where=f"node '{node_id}': '{name}'")
    except WorkflowValidationError as exc:
        problems += exc.errors
    return problems


def check_inputs(inputs: Mapping[str, Any], rows: Iterable[str] = ()) -> None:
    """A run's inputs: bounded like params, since a '{{name}}' can carry them into any param;
    those named in rows (used only as a bulk node's 'data' or 'ids') by their row count."""
    streamed = set(rows) & inputs.keys()
    sized = {k: v for k, v in inputs.items() if k not in streamed} if streamed else inputs
    measure(sized, where="inputs", limit=conf.max_params_bytes())
    for name in streamed:
        if isinstance(inputs[name], (list, tuple)):
            check_row_count(len(inputs[name]), where=f"input '{name}'")


def check_row_count(count: int, *, where: str) -> None:
    """Refuse more rows (or list values) than DATAFLOW['MAX_BULK_ROWS']."""
    limit = conf.max_bulk_rows()
    if count > limit:
        raise WorkflowValidationError(
            f"{where} holds more than DATAFLOW['MAX_BULK_ROWS'] ({limit}) rows or values"
        )


def check_workflow_size(nodes: int, connections: int) -> None:
    """Refuse workflows with more nodes or connections than the settings allow (before any check)."""
    problems = []
    if nodes > conf.max_nodes():
        problems.append(
            f"the workflow has {nodes} nodes, more than DATAFLOW['MAX_NODES'] ({conf.max_nodes()})"
        )
    if connections > conf.max_connections():
        problems.append(
            f"the workflow has {connections} connections, more than DATAFLOW['MAX_CONNECTIONS'] "
            f"({conf.max_connections()})"
        )
    if problems:
        raise WorkflowValidationError(problems)
