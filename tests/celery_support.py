"""Real Celery workers for the tests: a client app on the test Redis and worker subprocesses.

Redis: DATAFLOW_TEST_REDIS_URL, default redis://127.0.0.1:6379/5 (a database of its own, so the
tests never touch what a developer's testproject uses). Every test session consumes its own
queue names, so two sessions on one Redis cannot steal each other's runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("DATAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
# Low so that a killed worker's run comes back within seconds (production: above the longest run).
VISIBILITY_TIMEOUT = 8
TRANSPORT_OPTIONS = {
    "visibility_timeout": VISIBILITY_TIMEOUT,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}


def service_missing(message: str) -> None:
    """A missing service fails under CI=true (never a silent skip) and skips elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def require_celery_and_redis() -> None:
    """Fail (CI) or skip when Celery is not installed or Redis does not answer."""
    try:
        import celery  # noqa: F401
        import redis
    except ImportError as exc:
        service_missing(f"Celery is not installed ({exc}); pip install -e '.[test]'")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        service_missing(f"Redis is not reachable at {REDIS_URL}: {exc}")


def make_client_app() -> Any:
    """The app the test process sends through: the testproject's settings, the test Redis."""
    from celery import Celery

    app = Celery("dataflow-tests", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(
        broker_url=REDIS_URL, result_backend=REDIS_URL, broker_transport_options=TRANSPORT_OPTIONS
    )
    return app


class _LazyApp:
    """Created on first use, so importing this module needs neither Celery nor settings."""

    app: Any = None

    def __getattr__(self, name: str) -> Any:
        if _LazyApp.app is None:
            _LazyApp.app = make_client_app()
        return getattr(_LazyApp.app, name)


#: DATAFLOW["CELERY_APP"] of the worker tests points here.
client_app = _LazyApp()


def database_url(name: str) -> str:
    """The DATABASE_URL of this process with another database name (pytest-django's test_<NAME>)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


class WorkerProcess:
    """`celery -A testproject worker` in its own process group, on one queue of the test Redis."""

    def __init__(
        self, queue: str, db_name: str, log_dir: Path, *, concurrency: int = 4,
        settings: str = "testproject.settings",
        env: dict[str, str] | None = None,
    ) -> None:
        self.queue = queue
        self.settings = settings
        self.extra_env = dict(env or {})
        self.db_name = db_name
        self.concurrency = concurrency
        self.name = f"dataflow-test-{uuid.uuid4().hex[:8]}"
        self.hostname = f"{self.name}@tests"
        self.log_path = log_dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        """The environment of the worker process (and of a beat process beside it)."""
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": self.settings,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "testproject")]),
            # The worker must use pytest-django's test database, which holds the committed rows
            # of transaction=True tests.
            "DATABASE_URL": database_url(self.db_name),
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_RESULT_BACKEND": REDIS_URL,
            "CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps(TRANSPORT_OPTIONS),
            # Runs the worker starts itself (schedules, triggers, follow-ups) go to the same queue.
            "DATAFLOW_TEST_QUEUE": self.queue,
            **self.extra_env,
        }

    def start(self, timeout: float = 60) -> WorkerProcess:
        """Start the worker and return once it answers a ping."""
        env = self.environment()
        command = [
            sys.executable, "-m", "celery", "-A", "testproject", "worker",
            "-Q", self.queue, "-c", str(self.concurrency), "-P", "prefork", "-n", self.hostname,
            "--without-gossip", "--without-mingle", "-l", "info",
        ]
        with self.log_path.open("ab") as log:
            # A process group of its own: kill() must take the pool's children down too, or an
            # orphaned child would finish the run the test pretends was lost.
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if client_app.control.ping(destination=[self.hostname], timeout=0.5):
                return self
        self.stop()
        raise RuntimeError(f"worker did not answer a ping within {timeout}s:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """kill -9 the whole worker (main process and pool children) and reap it."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Warm shutdown (finish the current task), then SIGKILL if it takes too long."""
        if self.proc is None or self.proc.poll() is not None:
            return
        # To the main process only: it stops its pool children after their current task.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def log(self) -> str:
        """Everything the worker wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def sending_to(queue: str) -> Iterator[None]:
    """CeleryRuntime() sends through the test Redis to the given queue, never eagerly."""
    from django.conf import settings
    from django.test import override_settings

    dataflow = {
        **settings.DATAFLOW,
        "CELERY_APP": "tests.celery_support.client_app",
        "CELERY_QUEUE": queue,
        "CELERY_EAGER": False,
    }
    with override_settings(DATAFLOW=dataflow):
        yield
