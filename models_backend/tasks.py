"""GPU tasks (routed to the `gpu` queue): each takes a job id and calls one service.

Idempotent and safe to redeliver (acks_late, reject_on_worker_lost): the services skip what
exists. Transient backend errors are retried with backoff; anything else, or running out of
retries or time, leaves a visible error on the job.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, OperationalError

from models_backend import services
from models_backend.errors import BackendError, BackendUnavailable
from models_backend.heartbeat import Heartbeat
from models_backend.models import GenerationJob, Job, JudgeJob

logger = logging.getLogger(__name__)

TASK_OPTIONS = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": 4,
    "soft_time_limit": 3300,
    "time_limit": 3400,
}


def _run_beating(task, job_class: type[Job], job_pk: int, run) -> str:
    """Run the job, stamping its heartbeat from a worker (in-process, the request or command
    running it is its sign of life). A worker's task runs for JOB_TASK_SECONDS at most, then
    queues the rest of the job as a new task."""
    try:
        if task.request.is_eager:
            return run(job_pk=job_pk)
        with Heartbeat(job_class, job_pk):
            result = run(job_pk=job_pk, until=time.monotonic() + settings.JOB_TASK_SECONDS)
        if result.startswith(services.PAUSED):
            _continue(task, job_pk, countdown=0)
        return result
    except services.JobBusy:
        if task.request.is_eager:
            return "running elsewhere"
        # A second delivery of a job a live worker runs: look again once that worker could
        # have gone silent; by then the job has finished, or its worker is gone and this takes it.
        wait = settings.JOB_STALE_SECONDS + settings.JOB_HEARTBEAT_SECONDS
        _continue(task, job_pk, countdown=wait)
        return f"running elsewhere; looking again in {wait:.0f} s"


def _continue(task, job_pk: int, *, countdown: float) -> None:
    """The job again as a new task: its retries count from zero."""
    task.apply_async(kwargs={"job_pk": job_pk}, countdown=countdown)


def _completed(job_class: type[Job], job_pk: int) -> int | None:
    try:
        return job_class.objects.filter(pk=job_pk).values_list("completed", flat=True).first()
    except DatabaseError:
        return None


def _backoff(exc: Exception, retries: int) -> float:
    """Doubling from JOB_RETRY_BASE_SECONDS, at most 60 s, or what the server asked for."""
    pause = min(60.0, 2**retries * settings.JOB_RETRY_BASE_SECONDS)
    retry_after = getattr(exc, "retry_after", None)
    return min(max(pause, retry_after or 0.0), 600.0)


def _retry_later(
    task, job_class: type[Job], job_pk: int, exc: Exception, before: int | None
) -> str:
    """A backend or database that is down for now: try the job again after a pause, up to
    the task's retries (counted from zero again while the job gets on); then fail it."""
    if task.request.is_eager:
        # In-process (demo) mode has no worker to retry later: fail visibly now.
        services.job_fail(job_class=job_class, pk=job_pk, error=str(exc))
        return "failed"
    after = _completed(job_class, job_pk)
    if before is not None and after is not None and after > before:
        # It got on since the last try: a few 503s spread over a long job do not fail it.
        services.job_release(job_class=job_class, pk=job_pk)
        _continue(task, job_pk, countdown=_backoff(exc, 0))
        return f"retrying after {after - before} done: {exc}"
    if task.request.retries >= task.max_retries:
        # Asked for one more, `retry(exc=...)` re-raises `exc`, not MaxRetriesExceededError:
        # the job must fail here, or it stays "running" with no error for good.
        services.job_fail(job_class=job_class, pk=job_pk, error=f"gave up after retries: {exc}")
        return "failed"
    # The job goes back to the queue meanwhile: the retry, on any worker, claims it as new.
    services.job_release(job_class=job_class, pk=job_pk)
    raise task.retry(exc=exc, countdown=_backoff(exc, task.request.retries)) from exc


def _run(task, job_class: type[Job], job_pk: int, run) -> str:
    before = _completed(job_class, job_pk)
    try:
        return _run_beating(task, job_class, job_pk, run)
    except (BackendUnavailable, OperationalError) as exc:
        return _retry_later(task, job_class, job_pk, exc, before)
    except SoftTimeLimitExceeded:
        services.job_fail(
            job_class=job_class,
            pk=job_pk,
            error=f"one batch ran past the task's time limit ({task.soft_time_limit} s)",
        )
        return "failed"
    except BackendError as exc:
        services.job_fail(job_class=job_class, pk=job_pk, error=str(exc))
        return "failed"
    except Exception as exc:
        services.job_fail(job_class=job_class, pk=job_pk, error=f"{type(exc).__name__}: {exc}")
        if task.request.is_eager:
            # In-process, the job ran inside a page's request or a command: the failed job row
            # says what went wrong; a traceback in the log, not a 500 for the page.
            logger.exception("%s %s failed", job_class.__name__, job_pk)
            return "failed"
        raise


@shared_task(**TASK_OPTIONS)
def generation_job_task(self, *, job_pk: int) -> str:
    return _run(self, GenerationJob, job_pk, services.generation_job_run)


@shared_task(**TASK_OPTIONS)
def judge_job_task(self, *, job_pk: int) -> str:
    return _run(self, JudgeJob, job_pk, services.judge_job_run)


@shared_task(ignore_result=True)
def jobs_requeue_lost_task() -> int:
    """Beat: queue again the jobs whose worker died (see `services.jobs_requeue_lost`)."""
    return len(services.jobs_requeue_lost())
