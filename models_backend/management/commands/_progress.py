"""Shared by the job commands: run a job inline (eager mode) or follow it on the broker."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from django.conf import settings
from django.core.management.base import CommandError, OutputWrapper

from models_backend import services
from models_backend.errors import BackendError
from models_backend.models import Job

# The largest batch a job stores (a PositiveSmallIntegerField) and far more than any GPU fits.
MAX_BATCH_SIZE = 1024


def count_argument(largest: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to `largest`, else a usage error (not a
    traceback from deep inside the job)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1 or (largest is not None and value > largest):
            bound = f"from 1 to {largest}" if largest else "of 1 or more"
            raise argparse.ArgumentTypeError(f"must be a whole number {bound}, not {text!r}")
        return value

    return parse


def progress_bar(stdout: OutputWrapper) -> Callable[[int, int], None]:
    def draw(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
        stdout.flush()

    return draw


def run_or_follow(
    job: Job, run: Callable[..., str], *, stdout: OutputWrapper, wait: bool, poll_s: float = 1.0
) -> Job:
    """In eager mode run the job here; with a broker (the job was queued when it was
    created), follow its progress row until it ends."""
    draw = progress_bar(stdout)
    draw(job.completed, job.total)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            run(job_pk=job.pk, progress=draw)
        except Exception as exc:
            # A model that cannot load (a folder without one, no network for a hub id) raises
            # no BackendError: the job must still end failed, not stay "running" for good.
            error = str(exc) if isinstance(exc, BackendError) else f"{type(exc).__name__}: {exc}"
            services.job_fail(job_class=type(job), pk=job.pk, error=error)
    else:
        while wait:
            job.refresh_from_db()
            draw(job.completed, job.total)
            if job.is_finished:
                break
            time.sleep(poll_s)
    stdout.write("")
    job.refresh_from_db()
    if job.status in (Job.Status.FAILED, Job.Status.CANCELLED):
        raise CommandError(f"job {job.pk} {job.status}: {job.error}")
    return job
