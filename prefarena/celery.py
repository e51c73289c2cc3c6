"""Celery application: configured from Django settings (CELERY_* names)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prefarena.settings")

app = Celery("prefarena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def enqueue_on_commit(task: Any, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Queue `task(**kwargs)` once the current transaction commits, as a side effect that must
    never fail what committed: a broker that is down, or (eager mode) the task itself failing,
    is logged, not raised into the request.

    Django logs a robust hook's failure by its `__qualname__`, which a `functools.partial`
    lacks (the log call would raise in its place), so the hook is a named function.
    """

    def send() -> None:
        task.apply_async(kwargs=kwargs, countdown=countdown)

    send.__qualname__ = f"enqueue_on_commit({task.name})"
    transaction.on_commit(send, robust=True)
