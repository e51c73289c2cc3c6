"""Celery application: configured from Django settings (CELERY_* names), and the ways the app
queues tasks without letting a broker outage fail a request or strand a job."""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from celery import Celery
from django.db import models, transaction
from django.dispatch import Signal
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prefarena.settings")

app = Celery("prefarena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)

# What sending a task raises when the broker cannot be reached (kombu wraps most of it).
BROKER_ERRORS = (KombuOperationalError, OSError)
QUEUE_DOWN = "the task queue (broker) could not be reached"


# A key kept beside the queues in a Redis broker: when it is gone, so is every message the
# broker held (Redis restarted without persistence, or flushed).
BROKER_MARK_KEY = "prefarena:broker-mark"
# Sent when the broker lost its messages; each app's receiver sends its queued jobs' tasks
# again and returns the jobs it sent.
queued_jobs_lost = Signal()


class QueueUnavailable(Exception):
    """A task could not be sent; the message says so to a person."""


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


def enqueue_job_on_commit(task: Any, job: models.Model) -> None:
    """Queue `task(job_pk=job.pk)` once the job row has committed. A broker that cannot be
    reached fails the job at once, saying why, instead of leaving it "queued" with nothing to
    run it (and the request that made it answers as usual: the job's row shows the failure).
    Works for any job model with `status`, `error` and `finished_at`."""
    job_class, pk = type(job), job.pk

    def send() -> None:
        if app.conf.task_always_eager:  # runs here and now: its failures are the job's own
            task.apply_async(kwargs={"job_pk": pk})
            return
        try:
            task.apply_async(kwargs={"job_pk": pk})
        except BROKER_ERRORS as exc:
            logger.warning("%s %s not queued: %s", job_class.__name__, pk, exc)
            job_class.objects.filter(pk=pk, status="queued").update(
                status="failed",
                error=f"Not started: {QUEUE_DOWN} ({exc}). Start it again once it is back.",
                finished_at=timezone.now(),
            )

    send.__qualname__ = f"enqueue_job_on_commit({task.name})"
    transaction.on_commit(send, robust=True)


def send_now(task: Any, **kwargs: Any) -> Any:
    """Send `task(**kwargs)` now (its AsyncResult); QueueUnavailable when the broker is down."""
    if app.conf.task_always_eager:
        return task.apply_async(kwargs=kwargs)
    try:
        return task.apply_async(kwargs=kwargs)
    except BROKER_ERRORS as exc:
        raise QueueUnavailable(f"Nothing was started: {QUEUE_DOWN} ({exc}).") from exc


def resend_lost_jobs() -> list[models.Model]:
    """Send again every queued job's task when a Redis broker lost its messages (restarted
    without persistence, or flushed): its mark key is gone with its queues. The mark is set
    again only once every app has sent its jobs, so a failure (the database down too after a
    reboot) is retried at the next look rather than forgotten. Returns the jobs sent.

    Nothing to do in eager mode or on another transport (RabbitMQ keeps Celery's persistent
    messages in durable queues). On the first look ever there is no mark yet either, which
    reads as a loss: the jobs still queued then are sent twice, which their tasks allow (a
    second delivery of a generation or judging job finds it running or done; one of an export
    takes it over and starts again)."""
    if app.conf.task_always_eager:
        return []
    with app.connection_for_write() as conn:
        if conn.transport.driver_type != "redis":
            return []
        client = conn.default_channel.client
        if client.exists(BROKER_MARK_KEY):
            return []
        logger.warning("The broker lost the messages it held: queued jobs are sent again.")
        resent = [job for _, jobs in queued_jobs_lost.send(sender=app) for job in jobs]
        client.set(BROKER_MARK_KEY, "1")
    return resent


def resend_receiver(path: str) -> Any:
    """A `queued_jobs_lost` receiver that imports `module.function` when called (an app's
    services load after the app registry)."""
    module, name = path.rsplit(".", 1)

    def receiver(**kwargs: Any) -> list[models.Model]:
        return getattr(importlib.import_module(module), name)(**kwargs)

    return receiver


@app.task(ignore_result=True, soft_time_limit=60, time_limit=90)
def broker_check_task() -> int:
    """Beat: a job queued before the broker lost its messages would stay queued for good."""
    return len(resend_lost_jobs())
