"""App config of the startup benchmark's generated models."""

import time

from django.apps import AppConfig

#: perf_counter() stamps: "before" when this app's ready() runs (just before django_dataflow's,
#: which is listed after it), "after" when bench_probe's ready() runs (listed last).
READY_STAMPS: dict[str, float] = {}


class BenchAppConfig(AppConfig):
    """Holds BENCH_MODELS generated models; never migrated, never queried."""

    name = "bench_app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        READY_STAMPS["before"] = time.perf_counter()
