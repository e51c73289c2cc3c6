"""GPU tasks (routed to the `gpu` queue): each takes a job id and calls one service.

Idempotent and safe to redeliver (acks_late, reject_on_worker_lost): the services skip what
exists. Transient backend errors are retried with backoff; anything else, or running out of
retries or time, leaves a visible error on the job.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError

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
    running it is its sign of life)."""
    try:
        if task.request.is_eager:
            return run(job_pk=job_pk)
        with Heartbeat(job_class, job_pk):
            return run(job_pk=job_pk)
    except services.JobBusy:
        if task.request.is_eager:
            return "running elsewhere"
        # A second delivery of a job a live worker runs: look again once that worker could
        # have gone silent; by then the job has finished, or its worker is gone and this takes it.
        wait = settings.JOB_STALE_SECONDS + settings.JOB_HEARTBEAT_SECONDS
        task.apply_async(kwargs={"job_pk": job_pk}, countdown=wait)
        return f"running elsewhere; looking again in {wait:.0f} s"


def _run(task, job_class: type[Job], job_pk: int, run) -> str:
    try:
        return _run_beating(task, job_class, job_pk, run)
    except (BackendUnavailable, OperationalError) as exc:
        if task.request.is_eager:
            # In-process (demo) mode has no worker to retry later: fail visibly now.
            services.job_fail(job_class=job_class, pk=job_pk, error=str(exc))
            return "failed"
        if task.request.retries >= task.max_retries:
            # Asked for one more, `retry(exc=...)` re-raises `exc`, not MaxRetriesExceededError:
            # the job must fail here, or it stays "running" with no error for good.
            services.job_fail(job_class=job_class, pk=job_pk, error=f"gave up after retries: {exc}")
            return "failed"
        # Exponential backoff, far below the broker's visibility timeout. The job goes back to
        # the queue meanwhile: the retry, on any worker, claims it as new.
        services.job_release(job_class=job_class, pk=job_pk)
        base = settings.JOB_RETRY_BASE_SECONDS
        raise task.retry(exc=exc, countdown=min(60, 2**task.request.retries * base)) from exc
    except SoftTimeLimitExceeded:
        services.job_fail(job_class=job_class, pk=job_pk, error="ran past its time limit")
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
