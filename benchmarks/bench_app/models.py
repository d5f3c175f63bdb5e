"""BENCH_MODELS models built with type(), each with six fields including a FK and a JSONField.

With BENCH_DATAFLOW=1 and BENCH_REGISTER=decorator (the default) every model is passed to
django_dataflow.register here, as @register would; with BENCH_REGISTER=settings the settings
list them in DATAFLOW["MODELS"] instead. With BENCH_DATAFLOW=0 django_dataflow is never imported.
"""

import os
import time

from django.db import models

COUNT = int(os.environ.get("BENCH_MODELS", "20"))
ENABLED = os.environ.get("BENCH_DATAFLOW") == "1"
VIA_DECORATOR = os.environ.get("BENCH_REGISTER", "decorator") == "decorator"


def model_name(index: int) -> str:
    """The class name of the index-th generated model."""
    return f"Bench{index:03d}"


def _make(index: int, previous: type[models.Model] | None) -> type[models.Model]:
    attrs = {
        "__module__": __name__,
        "__qualname__": model_name(index),
        "name": models.CharField(max_length=100),
        "price": models.DecimalField(max_digits=10, decimal_places=2, default=0),
        "quantity": models.IntegerField(default=0),
        "data": models.JSONField(default=dict, blank=True),
        "created_at": models.DateTimeField(auto_now_add=True),
        "parent": models.ForeignKey(
            previous or "self", null=True, blank=True, on_delete=models.CASCADE
        ),
    }
    return type(model_name(index), (models.Model,), attrs)


MODELS: list[type[models.Model]] = []
for _index in range(COUNT):
    _model = _make(_index, MODELS[-1] if MODELS else None)
    globals()[_model.__name__] = _model
    MODELS.append(_model)

#: Milliseconds spent in register() (startup.py adds it to django_dataflow's share).
REGISTER_MS = 0.0
if ENABLED and VIA_DECORATOR:
    _started = time.perf_counter()
    import django_dataflow

    for _model in MODELS:
        django_dataflow.register(_model)
    REGISTER_MS = (time.perf_counter() - _started) * 1000
