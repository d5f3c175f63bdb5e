"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (no `playwright install`).

A missing Chromium or Playwright skips these tests locally and fails them in CI (CI=true): a missing
service is never a skip there. They run in the SQLite pass (docs/admin.md says why).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: The system browser (apt-get install chromium); DATAFLOW_CHROMIUM names another binary.
CHROMIUM = os.environ.get("DATAFLOW_CHROMIUM", "/usr/bin/chromium")
#: Headless flags for a root user in a container: no sandbox, no GPU, no /dev/shm reliance.
HEADLESS_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("DATAFLOW_ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "artifacts"))


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing browser is a failure, never a skip)")
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a browser test."""
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (closed, and the environment restored, after it)."""
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("browser tests run in the SQLite pass")
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[browser]')")
    # Playwright's sync API keeps an event loop in this thread, which makes Django refuse the test's
    # own (synchronous) ORM calls between browser steps; allowed for these modules only.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=HEADLESS_ARGS)
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class ConsoleLog:
    """Console errors and uncaught page errors seen by a page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))


@pytest.fixture
def admin_page(browser: Any, live_server: Any, django_user_model: Any, settings: Any) -> Iterator[Any]:
    """A page logged in to the admin as a superuser (through the login form), with a console log."""
    settings.DATAFLOW = {**settings.DATAFLOW, "CELERY_EAGER": True}
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw-for-browser")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # The browser asks for /favicon.ico on its own (no page links one); the test project has none,
    # and its 404 would be logged as a console error that no page of the admin caused.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    page = context.new_page()
    page.console_log = ConsoleLog(page)
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-for-browser")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield page
    context.close()
