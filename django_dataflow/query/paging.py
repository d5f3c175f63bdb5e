"""Keyset paging for List: an opaque, signed cursor holding the last row's sort keys.

A page after the cursor is `WHERE (k1, k2, pk) > (v1, v2, vpk)` in the List's own order (NULL
largest), so deep pages cost the same as the first instead of an OFFSET scan.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from functools import lru_cache, reduce
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils.crypto import salted_hmac

from django_dataflow.exceptions import WorkflowValidationError
from django_dataflow.nodes.values import jsonable
from django_dataflow.query.paths import FieldPath

_SALT = "django_dataflow.list-cursor"
Key = tuple[FieldPath, bool]


def make_cursor(model: str, keys: Sequence[Key], values: Sequence[Any]) -> str:
    """The cursor for the row whose sort-key values are given (signed for this model only)."""
    payload = json.dumps({"k": _names(keys), "v": [jsonable(v) for v in values]}, separators=(",", ":"))
    body = _b64encode(payload.encode())
    return f"{body}.{_b64encode(_signature(_key(settings.SECRET_KEY, model), body))}"


def _unsign(model: str, cursor: str) -> Any:
    """The payload of a cursor signed for this model with SECRET_KEY or one of its fallbacks."""
    body, _, signature = cursor.rpartition(".")
    try:
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
        if not body or not any(
            hmac.compare_digest(given, _signature(_key(secret, model), body)) for secret in secrets
        ):
            return None
        return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        return None


# django.core.signing would derive the key again on every call (salted_hmac hashes the secret
# each time); a List page costs about a tenth of a millisecond less with the key derived once.
@lru_cache(maxsize=256)
def _key(secret: str, model: str) -> bytes:
    return salted_hmac(f"{_SALT}:{model}", b"", secret=secret, algorithm="sha256").digest()


def _signature(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode(), hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _names(keys: Sequence[Key]) -> list[str]:
    """The sort keys with their directions: a cursor for "price" must not page "-price"."""
    return [("-" if descending else "") + path.dotted for path, descending in keys]


def read_cursor(model: str, cursor: Any, keys: Sequence[Key]) -> list[Any]:
    """The sort-key values in a cursor this List made, converted by their fields."""
    if not isinstance(cursor, str):
        raise WorkflowValidationError(f"'after' must be a cursor string, not {type(cursor).__name__}")
    payload = _unsign(model, cursor)
    if not isinstance(payload, dict):
        raise WorkflowValidationError(f"'after' is not a cursor returned by a List node of {model}")
    names = _names(keys)
    if payload.get("k") != names or len(payload.get("v", ())) != len(names):
        raise WorkflowValidationError(
            f"'after' was made for order_by {payload.get('k')}, not {names}; keep order_by fixed"
        )
    return [None if v is None else path.convert(v) for (path, _), v in zip(keys, payload["v"], strict=True)]


def after(keys: Sequence[Key], values: Sequence[Any]) -> Q:
    """Rows strictly after the cursor row in the keys' order (NULL largest)."""
    alternatives = []
    for index, (path, descending) in enumerate(keys):
        beyond = _beyond(path.lookup, descending, values[index])
        if beyond is None:
            continue
        equal = [_equal(p.lookup, v) for (p, _), v in zip(keys[:index], values[:index], strict=True)]
        alternatives.append(reduce(lambda a, b: a & b, [*equal, beyond]))
    return reduce(lambda a, b: a | b, alternatives) if alternatives else Q(pk__in=[])


def _equal(lookup: str, value: Any) -> Q:
    return Q(**{f"{lookup}__isnull": True}) if value is None else Q(**{lookup: value})


def _beyond(lookup: str, descending: bool, value: Any) -> Q | None:
    # NULL sorts as the largest value (see ordering.sort_expression).
    if descending:
        return Q(**{f"{lookup}__isnull": False}) if value is None else Q(**{f"{lookup}__lt": value})
    if value is None:
        return None  # NULLs come last when ascending: nothing lies beyond them
    return Q(**{f"{lookup}__gt": value}) | Q(**{f"{lookup}__isnull": True})
