"""Reading a request's JSON body: bounded in size (413), JSON objects only (400)."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from django.http import HttpRequest

from django_dataflow import conf
from django_dataflow.api.errors import ApiError
from django_dataflow.bounds import MAX_DEPTH


def _too_big(limit: int) -> ApiError:
    return ApiError(
        413, "PayloadTooLarge",
        f"the request body is larger than DATAFLOW['API_MAX_BODY_BYTES'] ({limit} bytes)",
        details={"limit": limit},
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def read_json(
    request: HttpRequest, *, allowed: Collection[str], required: Collection[str] = ()
) -> dict[str, Any]:
    """The body as a JSON object holding only allowed keys (an empty body is {})."""
    limit = conf.api_max_body_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "BadRequest", "the Content-Length header is not a number") from None
    if declared > limit:
        raise _too_big(limit)
    # Read from the stream, not request.body: Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) would
    # cap bulk loads, and this API has its own bound.
    raw = request.body if hasattr(request, "_body") else request.read(limit + 1)
    if len(raw) > limit:
        raise _too_big(limit)
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw, parse_constant=_refuse_constant)
        except RecursionError:
            raise ApiError(
                400, "BadRequest", f"the JSON body is nested deeper than {MAX_DEPTH} levels"
            ) from None
        except ValueError as exc:  # UnicodeDecodeError too
            raise ApiError(400, "BadRequest", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(
            400, "BadRequest", f"the request body must be a JSON object, not {type(data).__name__}"
        )
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ApiError(400, "BadRequest", f"unknown body keys {unknown}; valid: {', '.join(sorted(allowed))}",
                       details={"unknown": unknown})
    missing = sorted(set(required) - set(data))
    if missing:
        raise ApiError(400, "BadRequest", f"the body needs {missing}", details={"missing": missing})
    return data


def object_field(data: dict[str, Any], key: str) -> dict[str, Any]:
    """data[key] as an object ({} when absent); 400 naming the key otherwise."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ApiError(400, "BadRequest", f"'{key}' must be a JSON object, not {type(value).__name__}",
                       details={"field": key})
    return value
