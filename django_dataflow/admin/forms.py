"""Admin forms: the workflow JSON editor and the run form generated from a definition's inputs."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from django_dataflow import tenancy
from django_dataflow.models import WorkflowDefinition
from django_dataflow.workflow.graph import Workflow

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

    class Meta:
        model = WorkflowDefinition
        fields = ["name", "description", "workflow"]

    def _post_clean(self) -> None:
        # Text that is not JSON has its own error; building "no workflow" would only add a second.
        if self.has_error("workflow"):
            return
        super()._post_clean()


class RunForm(forms.Form):
    """One field per '{{input}}' the definition's params use, and the tenant when tenants exist.

    Inputs are text, converted by each model field's to_python as forms do ("33" becomes 33 for an
    IntegerField); an input used whole as a bulk node's rows is a JSON list instead.
    """

    def __init__(self, workflow: Workflow, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workflow = workflow
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
        if tenancy.tenants_enabled():
            self.fields["tenant"] = forms.CharField(
                required=False, help_text="Schema name of the tenant to run in; empty: no tenant."
            )

    def clean(self) -> dict[str, Any]:
        """Row inputs must be lists, as the bulk nodes read them."""
        cleaned = super().clean()
        for name in self.workflow.row_inputs:
            value = cleaned.get(INPUT_PREFIX + name)
            if value is not None and not isinstance(value, list):
                self.add_error(INPUT_PREFIX + name, "Enter a JSON list of rows.")
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
