"""Prometheus metrics (scraped from the view and parsed), slow-node logs, the health check and view."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

import django_dataflow
from django_dataflow.exceptions import NodeExecutionError
from tests.cache_support import caching, dataflow_settings
from tests.conftest import run

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789"


def scrape(client: Client, **headers: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The metrics view's samples: (name, sorted labels) -> value."""
    with override_settings(DATAFLOW=dataflow_settings(METRICS_TOKEN=TOKEN)):
        response = client.get("/dataflow/metrics/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_nodes_runs_rows_and_cache(client: Client) -> None:
    before = scrape(client)
    run(
        [
            (
                "ProductBulkCreateNode",
                "b",
                {"data": [{"name": f"n{i}", "sku": f"S{i}", "price": "1"} for i in range(3)]},
            )
        ]
    )
    with pytest.raises(NodeExecutionError):
        run([("ProductReadNode", "r", {"id": 12345})])
    with caching():
        for _ in range(3):
            run([("ProductCountNode", "c", {})])
    after = scrape(client)

    def grew(name: str, by: float, **labels: str) -> None:
        assert value(after, name, **labels) - value(before, name, **labels) == by, (name, labels)

    ok = {"node_type": "ProductBulkCreateNode", "operation": "BulkCreate", "outcome": "ok", "tenant": ""}
    grew("dataflow_node_executions_total", 1, **ok)
    grew("dataflow_node_duration_seconds_count", 1, **ok)
    failed = {"node_type": "ProductReadNode", "operation": "Read", "outcome": "error", "tenant": ""}
    grew("dataflow_node_executions_total", 1, **failed)
    grew("dataflow_workflow_runs_total", 4, status="succeeded", tenant="")
    grew("dataflow_workflow_runs_total", 1, status="failed", tenant="")
    grew("dataflow_rows_written_total", 3, operation="BulkCreate", model="shop.Product", tenant="")
    grew("dataflow_cache_requests_total", 2, result="hit", tenant="")
    grew("dataflow_cache_requests_total", 1, result="miss", tenant="")
    grew("dataflow_cache_requests_total", 0, result="bypass", tenant="")
    assert any(name == "dataflow_node_duration_seconds_bucket" for name, _ in after)


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({}, TOKEN),
        ({"Authorization": "Bearer wrong-token-000000000"}, TOKEN),
        ({"Authorization": f"Bearer {TOKEN}"}, None),
    ],
    ids=["no-token", "wrong-token", "token-not-configured"],
)
def test_metrics_refused_without_token_or_staff(
    client: Client, headers: dict[str, str], token: str | None
) -> None:
    with override_settings(DATAFLOW=dataflow_settings(METRICS_TOKEN=token)):
        response = client.get("/dataflow/metrics/", headers=headers)
    assert response.status_code == 403
    assert b"dataflow_" not in response.content


def test_metrics_open_to_staff_session(client: Client, admin_user: Any) -> None:
    client.force_login(admin_user)
    response = client.get("/dataflow/metrics/")
    assert response.status_code == 200
    assert b"dataflow_node_duration_seconds" in response.content


def test_metrics_refuse_a_non_staff_user(client: Client, django_user_model: Any) -> None:
    client.force_login(django_user_model.objects.create_user("plain", password="x"))
    assert client.get("/dataflow/metrics/").status_code == 403


def test_slow_node_is_counted_and_logged_without_secrets(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataflow_settings(SLOW_NODE_SECONDS=1e-9, AUDIT_REDACT=["email"])
    before = scrape(client)
    with (
        override_settings(DATAFLOW=settings),
        caplog.at_level(logging.WARNING, logger="django_dataflow.slow"),
    ):
        run([("CustomerCreateNode", "c", {"name": "Ada", "email": "ada@secret.example"})])
        run([("ProductBulkCreateNode", "b", {"data": [{"name": "n", "sku": "S", "price": "1"}]})])
    messages = [r.getMessage() for r in caplog.records if r.name == "django_dataflow.slow"]
    assert len(messages) == 2
    assert "'c' (CustomerCreateNode)" in messages[0]
    assert "ada@secret.example" not in messages[0]
    assert "[redacted]" in messages[0]
    assert "<1 rows>" in messages[1]
    after = scrape(client)
    assert (
        value(after, "dataflow_slow_nodes_total", node_type="CustomerCreateNode", tenant="")
        - value(before, "dataflow_slow_nodes_total", node_type="CustomerCreateNode", tenant="")
        == 1
    )


def test_no_slow_node_log_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="django_dataflow.slow"):
        run([("ProductCountNode", "c", {})])
    assert not [r for r in caplog.records if r.name == "django_dataflow.slow"]


@pytest.fixture
def eager() -> Any:
    """Runs in process, as without a broker (REDIS_URL in the environment would configure one)."""
    with override_settings(DATAFLOW=dataflow_settings(CELERY_EAGER=True)):
        yield


def test_health_reports_every_check(eager: None) -> None:
    report = django_dataflow.health()
    assert report["ok"] is True
    assert set(report["checks"]) == {"database", "cache", "celery", "migrations"}
    assert report["checks"]["migrations"]["detail"] == "none pending"
    assert report["checks"]["cache"]["detail"] == "not configured"


def test_health_view_is_json_and_503_when_the_cache_is_down(client: Client, eager: None) -> None:
    response = client.get("/dataflow/health/")
    assert response.status_code == 200
    assert response.json()["ok"] is True
    from tests.cache_support import redis_alias

    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "results": redis_alias("redis://127.0.0.1:1/0"),
    }
    settings = dataflow_settings(CACHE={"ALIAS": "results"}, CELERY_EAGER=True)
    with override_settings(CACHES=caches, DATAFLOW=settings):
        response = client.get("/dataflow/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["checks"]["cache"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_health_reports_pending_migrations(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db.migrations.executor import MigrationExecutor

    monkeypatch.setattr(
        MigrationExecutor,
        "migration_plan",
        lambda self, targets: [(type("M", (), {"app_label": "shop", "name": "0099_x"}), False)],
    )
    report = django_dataflow.health()
    assert report["ok"] is False
    assert "shop.0099_x" in report["checks"]["migrations"]["detail"]


def test_health_celery_check_fails_when_no_worker_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from django_dataflow.runtime import broker

    class App:
        class control:  # mimics celery's app.control
            @staticmethod
            def ping(timeout: float) -> list[Any]:
                return []

    monkeypatch.setattr(broker, "resolve_app", lambda app=None: App())
    monkeypatch.setattr(broker, "is_eager", lambda app=None: False)
    report = django_dataflow.health()
    assert report["checks"]["celery"]["ok"] is False
    assert "no Celery worker answered" in report["checks"]["celery"]["detail"]
    monkeypatch.setattr(App.control, "ping", staticmethod(lambda timeout: [{"w1": {"ok": "pong"}}]))
    assert django_dataflow.health()["checks"]["celery"]["detail"] == "1 worker(s) answered"


def test_health_database_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from django_dataflow import monitoring

    def broken() -> str:
        raise RuntimeError("connection refused")

    monkeypatch.setattr(monitoring, "_database", broken)
    report = django_dataflow.health()
    assert report["ok"] is False
    assert report["checks"]["database"] == {
        "ok": False,
        "detail": "RuntimeError: connection refused",
        "seconds": report["checks"]["database"]["seconds"],
    }


def test_cache_hit_rate_counts_hits_and_misses_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client import CollectorRegistry, Counter

    from django_dataflow import metrics

    fresh = Counter("dataflow_cache_requests", "test", ["result", "tenant"], registry=CollectorRegistry())
    monkeypatch.setattr(metrics, "CACHE_REQUESTS", fresh)
    assert metrics.cache_hit_rate() is None  # nothing counted yet
    for result in ("hit", "hit", "hit", "miss", "bypass", "error"):
        metrics.cache_request(result, "")
    metrics.cache_request("miss", "acme")
    assert metrics.cache_hit_rate() == pytest.approx(3 / 5)
