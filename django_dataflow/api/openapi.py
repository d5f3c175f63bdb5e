"""The OpenAPI 3.1 document of the HTTP API, served at schema/ and rendered into
docs/reference/api.md. Tests validate every response the API gives against it."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

import django_dataflow
from django_dataflow.api.listing import DEFAULT_LIMIT, MAX_LIMIT
from django_dataflow.models import RunStatus

_NULLABLE_STRING = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


_ERROR_OBJECT = _object({
    "type": {"type": "string", "description": "The error's class, e.g. WorkflowValidationError."},
    "message": {"type": "string"},
    "node_id": {**_NULLABLE_STRING, "description": "The node the error is about, if any."},
    "details": {"description": "Extra facts: 'errors' (every validation problem), 'permission', ..."},
})

#: The properties of a run in GET runs/; GET runs/<id> adds its inputs and results.
_RUN_SUMMARY: dict[str, Any] = {
    "run_id": {"type": "string", "format": "uuid"},
    "status": {"type": "string", "enum": list(RunStatus.values)},
    "definition": {**_NULLABLE_STRING, "description": "The WorkflowDefinition's name, for its runs."},
    "definition_version": {"type": ["integer", "null"]},
    "tenant": _NULLABLE_STRING,
    "runtime": {"type": "string", "description": "celery, or celery-eager without a broker."},
    "error": _ref("RunError"),
    "node_stats": {
        "type": "object",
        "additionalProperties": _object({"seconds": {"type": "number"}, "rows": {"type": "integer"}}),
    },
    "attempts": {"type": "integer", "minimum": 0},
    "created_at": _TIME,
    "started_at": _TIME,
    "finished_at": _TIME,
    "duration": {"type": ["number", "null"], "description": "Seconds from start to finish."},
    "links": _object({name: {"type": "string"} for name in ("self", "events", "cancel")}),
}

SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": _ERROR_OBJECT}),
    "RunError": {"oneOf": [{"type": "null"}, _ERROR_OBJECT]},
    "RunSummary": _object(_RUN_SUMMARY),
    "Run": _object({
        **_RUN_SUMMARY,
        "inputs": {"type": "object"},
        "results": {"type": ["object", "null"], "description": "Results by node id, once succeeded."},
    }),
    "RunList": _object({
        "runs": {"type": "array", "items": _ref("RunSummary"), "description": "Newest first."},
        "next": {**_NULLABLE_STRING, "description": "The next page's URL (same filters, a cursor), "
                 "or null on the last page."},
    }),
    "RunEvents": _object({
        "run_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": list(RunStatus.values)},
        "finished": {"type": "boolean"},
        "progress": {
            "oneOf": [
                {"type": "null"},
                {"type": "object", "properties": {
                    "node": {"type": "string"}, "done": {"type": "integer"},
                    "total": {"type": ["integer", "null"]},
                }},
            ],
            "description": "A running bulk node's rows done (null when nothing reports progress).",
        },
        "events": {"type": "array", "items": _ref("RunEvent")},
    }),
    "RunEvent": {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": [
                "created", "started", "node_finished", "succeeded", "failed", "cancelled",
            ]},
            "at": _TIME,
            "attempt": {"type": "integer"},
            "node_id": {"type": "string"},
            "seconds": {"type": ["number", "null"]},
            "rows": {"type": ["integer", "null"]},
            "error": _ref("RunError"),
        },
        "additionalProperties": False,
    },
    "NodeCatalog": _object({
        "models": {"type": "array", "items": _object({
            "model": {"type": "string", "description": "app_label.ModelName"},
            "name": {"type": "string", "description": "Prefix of the node types."},
            "nodes": {"type": "array", "items": _object({
                "type": {"type": "string"},
                "operation": {"type": "string"},
                "permissions": {"type": "array", "items": {"type": "string"}},
                "writes": {"type": "boolean"},
                "result_keys": {"type": ["array", "null"], "items": {"type": "string"}},
                "params_schema": {"type": "object", "description": "JSON Schema (2020-12) of the params."},
            })},
        })},
    }),
    "Workflow": {
        "type": "object",
        "description": "A workflow's to_dict() form (what WorkflowDefinition rows store).",
        "required": ["nodes"],
        "properties": {
            "version": {"type": "integer"},
            "nodes": {"type": "array", "items": _object(
                {"id": {"type": "string"}, "type": {"type": "string"}, "params": {"type": "object"}},
                required=["id", "type"],
            )},
            "connections": {"type": "array", "items": _object({
                "source": {"type": "string"}, "source_path": {"type": "string"},
                "target": {"type": "string"}, "target_param": {"type": "string"},
            })},
        },
        "additionalProperties": False,
    },
    "DefinitionRunRequest": _object(
        {"inputs": {"type": "object", "description": "Values of the definition's {{placeholders}}."}},
        required=[],
    ),
    "AdhocRunRequest": _object(
        {"workflow": _ref("Workflow"), "inputs": {"type": "object"}}, required=["workflow"]
    ),
}


def _json(schema: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description, "content": {"application/json": {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = headers
    return response


_HEADER = {"schema": {"type": "string"}}
_ERRORS: dict[str, dict[str, Any]] = {
    "400": _json("Error", "Invalid request: bad JSON, unknown key, invalid workflow or inputs; "
                 "a bad or unknown query parameter (details.param names it)."),
    "401": _json("Error", "No credentials, or a token that is unknown, revoked or expired.",
                 {"WWW-Authenticate": _HEADER}),
    "403": _json("Error", "A permission is missing (named in the message and details), or CSRF failed."),
    "404": _json("Error", "No such definition or run (or not one of the caller's runs)."),
    "405": _json("Error", "Method not allowed.", {"Allow": _HEADER}),
    "413": _json("Error", "The body is larger than DATAFLOW['API_MAX_BODY_BYTES']."),
    "429": _json("Error", "Over DATAFLOW['API_RATE_LIMIT'].", {"Retry-After": _HEADER}),
    "500": _json("Error", "Unexpected server error (logged)."),
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _ERRORS[code] for code in ("401", "405", "429", "500", *codes)}


_WAIT = {
    "name": "wait", "in": "query", "required": False,
    "schema": {"type": "string", "enum": ["0", "1", "true", "false", "yes", "no"]},
    "description": "1: wait up to DATAFLOW['API_MAX_WAIT_SECONDS'] for the run to finish.",
}
_LIST_PARAMETERS = [
    {
        "name": "status", "in": "query", "required": False, "style": "form", "explode": True,
        "schema": {"type": "array", "items": {"type": "string", "enum": list(RunStatus.values)}},
        "description": "Only runs in these statuses: repeat it (?status=failed&status=cancelled) or "
        "separate them by commas (?status=failed,cancelled).",
    },
    {"name": "definition", "in": "query", "required": False, "schema": {"type": "string", "minLength": 1},
     "description": "Only runs of the WorkflowDefinition of this name."},
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
     "description": f"Runs per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})."},
    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Opaque: where the next page starts. Take it from the previous page's 'next'."},
]
_RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
_SUBMITTED = {
    "200": _json("Run", "?wait=1 and the run finished (succeeded, failed or cancelled): see status.",
                 {"Location": _HEADER}),
    "202": _json("Run", "The run is recorded and queued (or still running after ?wait=1).",
                 {"Location": _HEADER}),
}


def _paths() -> dict[str, Any]:
    return {
        "/nodes/": {"get": {
            "operationId": "listNodes",
            "summary": "The node catalog, with a JSON Schema of each node's params.",
            "responses": {"200": _json("NodeCatalog", "Every registered model's node types."), **_errors()},
        }},
        "/workflows/{name}/runs": {"post": {
            "operationId": "runDefinition", "summary": "Run a WorkflowDefinition by name.",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}, _WAIT,
            ],
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": _ref("DefinitionRunRequest")}}},
            "responses": {**_SUBMITTED, **_errors("400", "403", "404", "413")},
        }},
        "/runs/": {"get": {
            "operationId": "listRuns",
            "summary": "The runs the caller may see (their own, or the tenant's all with "
            "django_dataflow.view_workflowrun), newest first, a page at a time.",
            "parameters": _LIST_PARAMETERS,
            "responses": {
                "200": _json("RunList", "A page of runs, without their inputs and results."),
                **_errors("400"),
            },
        }, "post": {
            "operationId": "runWorkflow",
            "summary": "Run the workflow in the body (permission django_dataflow.run_adhoc_workflow).",
            "parameters": [_WAIT],
            "requestBody": {
                "required": True, "content": {"application/json": {"schema": _ref("AdhocRunRequest")}},
            },
            "responses": {**_SUBMITTED, **_errors("400", "403", "413")},
        }},
        "/runs/{run_id}": {"get": {
            "operationId": "getRun", "summary": "A run: status, results or error, timings.",
            "parameters": [_RUN_ID],
            "responses": {"200": _json("Run", "The run."), **_errors("404")},
        }},
        "/runs/{run_id}/events": {"get": {
            "operationId": "getRunEvents", "summary": "A run's events so far and its live progress.",
            "parameters": [_RUN_ID],
            "responses": {"200": _json("RunEvents", "Events and progress."), **_errors("404")},
        }},
        "/runs/{run_id}/cancel": {"post": {
            "operationId": "cancelRun", "summary": "Cancel a run no worker has started.",
            "parameters": [_RUN_ID],
            "responses": {
                "200": _json("Run", "The cancelled run."),
                "409": _json("Error", "The run already started or finished (details.status)."),
                **_errors("403", "404"),
            },
        }},
        "/schema/": {"get": {
            "operationId": "getSchema", "summary": "This OpenAPI document.", "security": [],
            "responses": {"200": {"description": "The OpenAPI 3.1 document.",
                                  "content": {"application/json": {"schema": {"type": "object"}}}},
                          "405": _ERRORS["405"], "500": _ERRORS["500"]},
        }},
    }


def base_path() -> str:
    """Where the API is mounted in this project (e.g. '/dataflow'), from the URLconf."""
    return reverse("django_dataflow_api:schema").removesuffix("/").removesuffix("/schema")


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    paths = _paths()
    for operations in paths.values():
        for operation in operations.values():
            operation["responses"] = dict(sorted(operation["responses"].items()))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "django-dataflow HTTP API",
            "version": django_dataflow.__version__,
            "description": "Run workflows of registered Django models over HTTP. Errors share one "
            'shape: {"error": {"type", "message", "node_id", "details"}}.',
        },
        "servers": [{"url": base_path() or "/"}],
        "security": [{"bearerAuth": []}, {"sessionAuth": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "An ApiToken (manage.py dataflow_token create USER)."},
                "sessionAuth": {"type": "apiKey", "in": "cookie", "name": "sessionid",
                                "description": "A Django session; unsafe methods need the CSRF token."},
            },
        },
    }
