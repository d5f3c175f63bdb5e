"""Stamps the time its ready() runs (after django_dataflow's ready(), when installed)."""

import time

from django.apps import AppConfig


class BenchProbeConfig(AppConfig):
    """No models; only a timestamp."""

    name = "bench_probe"

    def ready(self) -> None:
        from bench_app.apps import READY_STAMPS

        READY_STAMPS["after"] = time.perf_counter()
