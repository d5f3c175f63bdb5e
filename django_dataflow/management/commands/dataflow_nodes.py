"""manage.py dataflow_nodes: every registered model's node types with their params."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_dataflow.registry import registry


class Command(BaseCommand):
    """Print the node catalog, as text or JSON."""

    help = "List every registered model's node types and the params each accepts."

    def add_arguments(self, parser: CommandParser) -> None:
        """--model to narrow the list, --json for machine-readable output."""
        parser.add_argument("--model", help="Only this model ('app_label.Model' or node name).")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Render the catalog."""
        entries = registry().entries()
        wanted = options.get("model")
        if wanted:
            entries = [e for e in entries if wanted in (e.label, e.name, e.label.lower())]
            if not entries:
                raise CommandError(f"No registered model {wanted!r}.")
        catalog: list[dict[str, Any]] = [
            {
                "model": entry.label,
                "name": entry.name,
                "nodes": [
                    {"type": cls.type_name, "operation": op, "params": cls.param_descriptions()}
                    for op, cls in entry.nodes.items()
                ],
            }
            for entry in entries
        ]
        if options["json"]:
            self.stdout.write(json.dumps(catalog, indent=2))
            return
        if not catalog:
            self.stdout.write("No models are registered with django_dataflow.")
            return
        for model in catalog:
            self.stdout.write(self.style.MIGRATE_HEADING(f"{model['model']} (name: {model['name']})"))
            for node in model["nodes"]:
                self.stdout.write(f"  {node['type']}")
                for param, description in node["params"].items():
                    self.stdout.write(f"      {param:<18} {description}")
