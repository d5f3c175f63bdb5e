"""Which of django_dataflow's tables a django-tenants project gets in which schema.

The registry (RegisteredModel, ModelSchemaVersion) and the definitions (WorkflowDefinition)
describe code and workflows every tenant shares, so they live in the public schema only (tenants
read them through the public schema on their search_path); so do the schedules (DefinitionSchedule),
which beat fires from the public schema and which name their tenant(s) themselves, and the stored
model-change triggers (ModelTriggerRule), whose runs take the tenant of the connection that changed
the row. WorkflowRun lives in every tenant's schema, beside the rows its runs wrote, and in the
public schema for runs without tenant.
"""

from __future__ import annotations

from typing import Any

#: django_dataflow models whose tables exist only in the public schema.
PUBLIC_ONLY = frozenset({
    "registeredmodel", "modelschemaversion", "workflowdefinition", "definitionschedule", "modeltriggerrule",
})


class DataflowTenantRouter:
    """Put before django-tenants' TenantSyncRouter in DATABASE_ROUTERS (docs/tenants.md)."""

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        """False for the public-only tables in a tenant schema; otherwise the next router decides."""
        if app_label != "django_dataflow" or model_name is None or model_name.lower() not in PUBLIC_ONLY:
            return None
        from django.db import connections
        from django_tenants.utils import get_public_schema_name

        tenant_db: Any = connections[db]  # django-tenants' DatabaseWrapper (untyped) has schema_name
        return None if tenant_db.schema_name == get_public_schema_name() else False
