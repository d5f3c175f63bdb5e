"""The API's one error shape, {"error": {"type", "message", "node_id", "details"}}, and the status
code each error gets."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from django_dataflow import exceptions


class ApiError(Exception):
    """An error response: status, type, message and optional node id and details."""

    def __init__(
        self, status: int, type: str, message: str, *, node_id: str | None = None,
        details: Any = None, headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.message = message
        self.node_id = node_id
        self.details = details
        self.headers = headers or {}
        super().__init__(message)

    def response(self) -> JsonResponse:
        """The JSON response."""
        response = JsonResponse(error_body(self.type, self.message, self.node_id, self.details),
                                status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def error_body(type: str, message: str, node_id: str | None = None, details: Any = None) -> dict[str, Any]:
    """The stable error object (also used inside a failed run's representation)."""
    return {"error": {"type": type, "message": message, "node_id": node_id, "details": details}}


def from_dataflow(exc: exceptions.DataflowError) -> ApiError:
    """The ApiError for an error the library raised before a run started (validation, permission)."""
    from django_dataflow.tenancy import TenantError

    node_id = getattr(exc, "node_id", None)
    if isinstance(exc, exceptions.PermissionDenied):
        return ApiError(403, "PermissionDenied", str(exc), node_id=node_id,
                        details={"permission": exc.permission or None})
    if isinstance(exc, exceptions.WorkflowValidationError):
        return ApiError(400, "WorkflowValidationError", str(exc), node_id=node_id,
                        details={"errors": exc.errors})
    if isinstance(exc, TenantError):
        return ApiError(400, "TenantError", str(exc))
    return ApiError(400, type(exc).__name__, str(exc), node_id=node_id)


def not_found(message: str = "not found") -> ApiError:
    """404 in the API's shape."""
    return ApiError(404, "NotFound", message)
