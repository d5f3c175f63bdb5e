"""Workflows: the builder, the validated graph, its JSON form and input templating."""

from django_dataflow.workflow.graph import Connection, NodeSpec, Workflow

__all__ = ["Connection", "NodeSpec", "Workflow"]
