"""Who is calling: a bearer token (Authorization: Bearer <token>) or a Django session with CSRF.
The tenant django-tenants routed the request to is tenancy.request_tenant()."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from django_dataflow import conf
from django_dataflow.api.errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dataflow"'}


def unauthorized(message: str) -> ApiError:
    """401 with the Bearer challenge."""
    return ApiError(401, "NotAuthenticated", message, headers=CHALLENGE)


class _CsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, run on demand: the views are csrf_exempt because token requests
    carry no cookie, so session requests are checked here instead (as Django REST framework does)."""

    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def _csrf_failure(request: HttpRequest) -> str | None:
    # Never called: the middleware only checks. _reject returns the reason, not a response.
    check = _CsrfCheck(lambda request: None)  # type: ignore[arg-type]
    check.process_request(request)
    return check.process_view(request, lambda request: None, (), {})  # type: ignore[arg-type,return-value]


def authenticate(request: HttpRequest) -> Any:
    """The calling user; ApiError 401 (no or bad credentials) or 403 (CSRF) otherwise."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is not None:
        scheme, _, raw = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        from django_dataflow.api.tokens import TokenRefused
        from django_dataflow.api.tokens import authenticate as token_user

        try:
            token = token_user(raw.strip(), using=conf.database())
        except TokenRefused as exc:
            raise unauthorized(str(exc)) from None
        return token.user
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise unauthorized("authentication required: a session, or 'Authorization: Bearer <token>'")
    if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
        reason = _csrf_failure(request)
        if reason:
            raise ApiError(403, "CsrfFailed", f"CSRF check failed: {reason}")
    return user
