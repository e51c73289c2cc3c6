"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

A missing Chromium fails the tests with a message saying what to install; it never skips them,
so a machine without a browser cannot pass the suite silently.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    sync_playwright,
)
from pytest_django.fixtures import Settings

from annotation.models import Project
from prefarena.celery import app as celery_app

# Playwright's sync API keeps an asyncio loop running in this thread, and Django refuses ORM
# calls while a loop runs; the tests query the database between browser steps, so allow it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path(os.environ.get("PREFARENA_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Fail fast: a broken page should fail in seconds, not after Playwright's 30 s default.
TIMEOUT_MS = 10_000

DEMO_SLUG = "mt-bench-demo"
DEMO_ADMIN_PASSWORD = "demo-admin-pass-123"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's chromium "
            "(apt-get install chromium) or PREFARENA_CHROMIUM pointing at a Chromium binary",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors and uncaught exceptions of every page the test opened."""
    return []


@pytest.fixture
def open_page(
    browser: Browser, live_server: Any, console_errors: list[str]
) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh browser context (own cookies) on the live server.

    Keyword arguments go to `browser.new_context` (viewport, java_script_enabled, ...).
    """
    contexts: list[BrowserContext] = []

    def open_(**context_options: Any) -> Page:
        context = browser.new_context(base_url=live_server.url, **context_options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            # Chromium asks for /favicon.ico on its own; the app ships no favicon.
            if message.location.get("url", "").endswith("/favicon.ico"):
                return
            if message.type == "error":
                console_errors.append(f"console: {message.text} ({message.location})")

        def on_page_error(error: Error) -> None:
            console_errors.append(f"pageerror: {error.message}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    return open_page(viewport={"width": 1280, "height": 900})


@pytest.fixture
def demo_project(transactional_db: None) -> Project:
    """The bundled MT-Bench demo arena, with an `admin` superuser."""
    call_command("load_demo", admin_password=DEMO_ADMIN_PASSWORD, stdout=io.StringIO())
    return Project.objects.get(slug=DEMO_SLUG)


@pytest.fixture
def eager_tasks(settings: Settings) -> Iterator[None]:
    """Run tasks inside the request (the Elo refresh, a routing run) even where a broker is
    configured."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
