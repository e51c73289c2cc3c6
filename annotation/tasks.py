"""Celery tasks of the arena. Each takes primitive ids and calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from annotation import moderation, services
from annotation.models import ExportJob, Project

# Idempotent database work: redelivery is safe, a lost database connection is retried.
RETRYING_DB_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": 2,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(**RETRYING_DB_TASK, soft_time_limit=120, time_limit=150)
def elo_refresh_task(*, project_pk: int) -> str:
    """Rebuild a project's live Elo table. Safe to run more than once."""
    project = Project.objects.filter(pk=project_pk).first()
    if project is None:
        return "project gone"
    applied = services.elo_refresh(project=project)
    return f"applied {applied} votes"


@shared_task(**RETRYING_DB_TASK, soft_time_limit=300, time_limit=330)
def leaderboard_snapshot_task(*, project_pk: int) -> str:
    """Store a fresh default leaderboard for one project. Safe to run more than once."""
    project = Project.objects.filter(pk=project_pk).first()
    if project is None:
        return "project gone"
    snapshot = services.leaderboard_snapshot_create(project=project)
    return f"snapshot {snapshot.pk}: {snapshot.vote_count} votes"


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def leaderboard_snapshot_all_task() -> str:
    """Beat entry point: queue a snapshot for every active project with new votes."""
    queued = 0
    for project in services.projects_needing_snapshot():
        leaderboard_snapshot_task.delay(project_pk=project.pk)
        queued += 1
    return f"queued {queued}"


@shared_task(**RETRYING_DB_TASK, soft_time_limit=600, time_limit=660)
def fraud_detect_task(*, project_pk: int) -> str:
    """Assess a project's annotators and flag the suspicious. Safe to run more than once."""
    project = Project.objects.filter(pk=project_pk).first()
    if project is None:
        return "project gone"
    return moderation.fraud_detect(project=project).summary()


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=90)
def fraud_detect_all_task() -> str:
    """Beat entry point: queue fraud detection for every active project that has votes."""
    projects = Project.objects.filter(is_active=True, comparisons__votes__isnull=False).distinct()
    queued = 0
    for project in projects:
        fraud_detect_task.delay(project_pk=project.pk)
        queued += 1
    return f"queued {queued}"


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3660)
def export_run_task(*, job_pk: int) -> str:
    """Write one export job's files. A redelivered job starts over from a clean folder."""
    from annotation.exports.service import export_job_run  # noqa: PLC0415 - heavy imports

    job = ExportJob.objects.filter(pk=job_pk).first()
    if job is None:
        return "job gone"
    job = export_job_run(job)
    return f"export {job.pk}: {job.status}, {job.rows} rows"
