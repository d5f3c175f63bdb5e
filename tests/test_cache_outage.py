"""Redis down: reads fall back to the database, writes still commit, one warning a minute, a metric.

The cache points at a redis-server this test starts on its own port and then kills.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from django_dataflow import cache, cache_store
from tests.cache_support import cache_count, dataflow_settings, redis_alias
from tests.celery_support import service_missing
from tests.conftest import run

pytestmark = pytest.mark.django_db(transaction=True)

LIST = ("ProductListNode", "l", {"order_by": ["sku"], "fields": ["sku", "name"]})


def _free_port(preferred: int = 6391) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A redis-server of this test's own (killed by the test, reaped here)."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server is not installed")
    port = _free_port()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    major = int(version.split("v=", 1)[1].split(".", 1)[0]) if "v=" in version else 0
    # DEBUG SLEEP (the slow-Redis test) needs this switch from Redis 7 on; older servers refuse it.
    debug = ["--enable-debug-command", "yes"] if major >= 7 else []
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *debug],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("the test's redis-server did not start")
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def errors() -> float:
    return sum(
        REGISTRY.get_sample_value("dataflow_cache_errors_total", {"operation": op}) or 0.0
        for op in ("lookup", "set", "bump")
    )


def names() -> list[str]:
    return [r["name"] for r in run([LIST])["l"]["records"]]


def test_reads_and_writes_survive_redis_dying(
    own_redis: tuple[subprocess.Popen[bytes], int], caplog: pytest.LogCaptureFixture
) -> None:
    from shop.models import Product

    process, port = own_redis
    Product.objects.create(name="before", sku="A", price=Decimal(1))
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "results": redis_alias(f"redis://127.0.0.1:{port}/0"),
    }
    cache.forget()
    with override_settings(CACHES=caches, DATAFLOW=dataflow_settings(CACHE={"ALIAS": "results"})):
        hits = cache_count("hit")
        for _ in range(3):
            assert names() == ["before"]
        assert cache_count("hit") == hits + 2, "Redis answered: the second and third reads were hits"

        process.kill()
        process.wait(timeout=10)
        failures = errors()
        caplog.set_level(logging.WARNING, logger="django_dataflow.cache")
        assert names() == ["before"]  # from the database
        # A write commits although its generation bump cannot reach Redis.
        run([("ProductUpdateNode", "u", {"conditions": {"sku": "A"}, "fields": {"name": "after"}})])
        for _ in range(3):
            assert names() == ["after"]
        assert errors() > failures
        warnings = [r for r in caplog.records if r.name == "django_dataflow.cache"]
        assert len(warnings) == 1, "one warning per minute, however many reads fail"
        assert "reading from the database" in warnings[0].getMessage()
        assert cache_store._state.unbumped, "the lost bump is kept for when Redis is back"
    cache.forget()


def test_bump_lost_during_an_outage_is_replayed_before_the_next_read(
    own_redis: tuple[subprocess.Popen[bytes], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis comes back with its old entries (a network cut, not a restart): the generation the
    outage kept from being bumped is bumped before any entry is read."""
    from shop.models import Product

    _process, port = own_redis
    Product.objects.create(name="before", sku="A", price=Decimal(1))
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "results": redis_alias(f"redis://127.0.0.1:{port}/0"),
    }
    cache.forget()
    with override_settings(CACHES=caches, DATAFLOW=dataflow_settings(CACHE={"ALIAS": "results"})):
        for _ in range(3):
            names()

        def cut(*args: object, **kwargs: object) -> None:
            raise ConnectionError("network cut")

        monkeypatch.setattr(type(cache_store._cache("results")), "set_many", cut)
        Product.objects.filter(sku="A").update(name="after")  # the bump fails
        monkeypatch.undo()
        assert cache_store._state.unbumped["results"]
        cache_store._state.down_until = 0.0  # the back-off is over
        assert names() == ["after"]
        assert not cache_store._state.unbumped["results"], "replayed"
    cache.forget()


def test_a_slow_redis_is_a_timeout_then_the_database(own_redis: tuple[subprocess.Popen[bytes], int]) -> None:
    """Redis stalls (DEBUG SLEEP) longer than the cache's SOCKET_TIMEOUT: the read gives up after
    the timeout and answers from the database."""
    import threading

    import redis

    from shop.models import Product

    _process, port = own_redis
    Product.objects.create(name="before", sku="A", price=Decimal(1))
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "results": redis_alias(f"redis://127.0.0.1:{port}/0"),
    }
    cache.forget()
    with override_settings(CACHES=caches, DATAFLOW=dataflow_settings(CACHE={"ALIAS": "results"})):
        for _ in range(2):
            names()
        Product.objects.filter(sku="A").update(name="after")
        stall = threading.Thread(
            target=lambda: redis.Redis(port=port).execute_command("DEBUG", "SLEEP", 3), daemon=True
        )
        stall.start()
        time.sleep(0.3)  # the server is now asleep
        failures = errors()
        started = time.monotonic()
        assert names() == ["after"]
        assert time.monotonic() - started < 2.5, "waited for Redis instead of its socket timeout"
        assert errors() == failures + 1
        stall.join(timeout=10)
    cache.forget()
