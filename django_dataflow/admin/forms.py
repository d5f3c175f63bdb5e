"""Admin forms: the workflow JSON editor and the run form generated from a definition's inputs."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from django_dataflow import tenancy
from django_dataflow.models import DefinitionSchedule, WorkflowDefinition
from django_dataflow.workflow.graph import Workflow

#: The definition fields naming follow-up definitions (docs/triggers.md, chained runs).
FOLLOW_UP_FIELDS = ("on_success", "on_failure")
#: Prefix of the run form's input fields, so an input called 'tenant' cannot clash with the tenant.
INPUT_PREFIX = "input__"


class PrettyJSONField(forms.JSONField):
    """A JSON textarea that shows the stored value indented, one key per line."""

    def prepare_value(self, value: Any) -> Any:
        """Indent what the database holds; text the user typed (an invalid value) is kept as typed."""
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


class WorkflowDefinitionForm(forms.ModelForm):
    """The definition form; WorkflowDefinition.clean() validates the workflow exactly as the
    runtimes build it (Workflow.from_dict), so an invalid workflow is refused naming its node."""

    workflow = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "class": "vLargeTextField dataflow-json-editor",
                                     "spellcheck": "false"}),
        help_text="The workflow's JSON form: {\"nodes\": [{\"id\", \"type\", \"params\"}], "
        "\"connections\": [...]}. Validated on save.",
    )

    on_success = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"size": 80}),
        help_text="Definitions started when a run of this one succeeds: names separated by commas.",
    )
    on_failure = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"size": 80}),
        help_text="Definitions started when a run of this one fails: names separated by commas.",
    )

    class Meta:
        model = WorkflowDefinition
        fields = ["name", "description", "enabled", "workflow", "on_success", "on_failure"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in FOLLOW_UP_FIELDS:
            value = self.initial.get(field)
            if isinstance(value, list):
                self.initial[field] = ", ".join(str(name) for name in value)

    def _follow_ups(self, field: str) -> list[str]:
        # Names must exist now: a typo would otherwise only surface as a refused follow-up later.
        names = [n.strip() for n in (self.cleaned_data.get(field) or "").split(",") if n.strip()]
        known = set(WorkflowDefinition.objects.filter(name__in=names).values_list("name", flat=True))
        known.add(self.cleaned_data.get("name") or "")  # a definition may follow itself (on_failure)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise forms.ValidationError(
                "unknown workflow definition(s): %(names)s", params={"names": ", ".join(map(repr, unknown))},
            )
        return list(dict.fromkeys(names))

    def clean_on_success(self) -> list[str]:
        """Comma-separated names -> list; each must be an existing definition."""
        return self._follow_ups("on_success")

    def clean_on_failure(self) -> list[str]:
        """Comma-separated names -> list; each must be an existing definition."""
        return self._follow_ups("on_failure")

    def _post_clean(self) -> None:
        # Text that is not JSON has its own error; building "no workflow" would only add a second.
        if self.has_error("workflow"):
            return
        super()._post_clean()  # type: ignore[misc]  # BaseModelForm._post_clean is not in django-stubs


def other_tenant_refusal(form: forms.BaseForm, pinned: str) -> str | None:
    """Why a POST made on tenant `pinned`'s host is refused (it names another tenant, or all
    tenants), or None. Read from the raw data: on that host the tenant is not a field to fill."""
    tenant = form.data.get(form.add_prefix("tenant"))
    host = f"on the host of tenant {pinned!r}, schedules and runs are that tenant's only"
    if tenant not in (None, "", pinned):
        return f"tenant {tenant!r} refused: {host} (choose other tenants on the public host)"
    if forms.CheckboxInput().value_from_datadict(form.data, form.files, form.add_prefix("all_tenants")):
        return f"all_tenants refused: {host} (choose other tenants on the public host)"
    return None


class ScheduleForm(forms.ModelForm):
    """A schedule row in the definition's inline; DefinitionSchedule.clean() validates it (crontab
    parsed by Celery, exactly one of crontab and interval, tenant or all tenants)."""

    #: The tenant of the host the page is on (admin/tenant_scope.py): rows are saved for it only.
    pinned_tenant: str | None = None

    inputs = PrettyJSONField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 40, "spellcheck": "false"}),
        help_text="JSON object: the inputs of every run it starts.",
    )

    class Meta:
        model = DefinitionSchedule
        fields = ["crontab", "interval_seconds", "inputs", "tenant", "all_tenants", "overlap", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.pinned_tenant is not None:
            # Shown read-only and saved as the host's tenant, whatever the POST says (clean refuses it).
            self.instance.tenant, self.instance.all_tenants = self.pinned_tenant, False

    def clean(self) -> dict[str, Any]:
        """On a tenant's host, a row naming another tenant or all tenants is refused."""
        cleaned = super().clean() or self.cleaned_data  # a clean() returning None keeps cleaned_data
        if self.pinned_tenant is None:
            return cleaned
        refused = other_tenant_refusal(self, self.pinned_tenant)
        # A row id outside the host's rows (the formset found no instance for it) is another
        # tenant's schedule, or an all-tenants one: Django would silently skip it.
        forged_pk = self.data.get(self.add_prefix(self._meta.model._meta.pk.name))
        if not refused and forged_pk and self.instance.pk is None:
            refused = (f"schedule {forged_pk} refused: it is not one of the schedules of tenant "
                       f"{self.pinned_tenant!r} (on this host, schedules and runs are that tenant's only)")
        if refused:
            raise forms.ValidationError(refused)
        return cleaned

    def clean_inputs(self) -> Any:
        """Empty means no inputs; anything else must be a JSON object."""
        value = self.cleaned_data.get("inputs")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("inputs must be a JSON object, not %(kind)s",
                                        params={"kind": type(value).__name__})
        return value


class RunForm(forms.Form):
    """One field per '{{input}}' the definition's params use, and the tenant when tenants exist.

    Inputs are text, converted by each model field's to_python as forms do ("33" becomes 33 for an
    IntegerField); an input used whole as a bulk node's rows is a JSON list instead.
    """

    def __init__(
        self, workflow: Workflow, *args: Any, pinned_tenant: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.workflow = workflow
        self.pinned_tenant = pinned_tenant
        for name in sorted(workflow.input_names):
            if name in workflow.row_inputs:
                field: forms.Field = forms.JSONField(
                    label=name, widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
                    help_text="JSON list of rows (records as objects).",
                )
            else:
                # Not required: an empty box is the empty string, a value like any other.
                field = forms.CharField(label=name, required=False, strip=False)
            self.fields[INPUT_PREFIX + name] = field
        if pinned_tenant is not None:
            # On a tenant's host (admin/tenant_scope.py) the run is that tenant's: shown, not chosen.
            self.fields["tenant"] = forms.CharField(
                required=False, disabled=True, initial=pinned_tenant,
                help_text="The tenant of this host: runs started here run in it.",
            )
        elif tenancy.tenants_enabled():
            self.fields["tenant"] = forms.CharField(
                required=False, help_text="Schema name of the tenant to run in; empty: no tenant."
            )

    def clean(self) -> dict[str, Any]:
        """Row inputs must be lists, as the bulk nodes read them; a tenant's host runs in it only."""
        cleaned = super().clean() or self.cleaned_data  # a clean() returning None keeps cleaned_data
        for name in self.workflow.row_inputs:
            value = cleaned.get(INPUT_PREFIX + name)
            if value is not None and not isinstance(value, list):
                self.add_error(INPUT_PREFIX + name, "Enter a JSON list of rows.")
        refused = self.pinned_tenant and other_tenant_refusal(self, self.pinned_tenant)
        if refused:
            self.add_error("tenant", refused)
        return cleaned

    def inputs(self) -> dict[str, Any]:
        """The run's inputs, by placeholder name."""
        return {
            key[len(INPUT_PREFIX):]: value
            for key, value in self.cleaned_data.items()
            if key.startswith(INPUT_PREFIX)
        }

    def tenant(self) -> str | None:
        """The tenant chosen, None for none."""
        return self.cleaned_data.get("tenant") or None
