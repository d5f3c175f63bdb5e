"""The request pipeline every API view goes through: method, authentication, rate limit, and
every error turned into the API's JSON error shape (never an HTML error page)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from django_dataflow import conf
from django_dataflow.api import ratelimit
from django_dataflow.api.auth import authenticate
from django_dataflow.api.errors import ApiError, from_dataflow
from django_dataflow.exceptions import DataflowError

logger = logging.getLogger("django_dataflow.api")

View = Callable[..., HttpResponse]


def endpoint(*methods: str, auth: bool = True) -> Callable[[View], View]:
    """Wrap a view(request, user, **kwargs): allowed methods, auth and errors as JSON."""

    def decorate(view: View) -> View:
        @csrf_exempt  # session requests are CSRF-checked in auth.authenticate, token ones need none
        @wraps(view)
        def handler(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        405, "MethodNotAllowed", f"{request.method} is not allowed here; allowed: "
                        f"{', '.join(methods)}", headers={"Allow": ", ".join(methods)},
                    )
                user = authenticate(request) if auth else None
                if user is not None:
                    ratelimit.check(user)
                return view(request, user, *args, **kwargs)
            except ApiError as exc:
                return exc.response()
            except RequestDataTooBig:
                limit = conf.api_max_body_bytes()
                return ApiError(
                    413, "PayloadTooLarge", "the request body is too large", details={"limit": limit}
                ).response()
            except DataflowError as exc:
                return from_dataflow(exc).response()
            except Exception:
                logger.exception("HTTP API: unexpected error in %s %s", request.method, request.path)
                return ApiError(500, "InternalError", "internal error; see the server log").response()

        # Never inside ATOMIC_REQUESTS' transaction: a run is sent when its row commits, so ?wait=1
        # could only time out, and a worker must find the row the response names.
        return transaction.non_atomic_requests(handler)

    return decorate
