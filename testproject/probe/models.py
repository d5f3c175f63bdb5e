"""Probe rows: the database fills in the schema and search_path it inserted them under, so a test
can check inside a task which schema the worker's connection was really in."""

from django.db import models
from django.db.models.functions import Cast

import django_dataflow


@django_dataflow.register
class Probe(models.Model):
    """One row per probing run; schema and search_path are the database's, not the caller's."""

    label = models.CharField(max_length=100)
    schema = models.TextField(db_default=models.Func(function="current_schema"), editable=False)
    search_path = models.TextField(
        db_default=Cast(
            models.Func(models.Value("search_path"), function="current_setting"),
            output_field=models.TextField(),
        ),
        editable=False,
    )

    def __str__(self) -> str:
        return f"{self.label} ({self.schema})"
