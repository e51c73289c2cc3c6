"""Celery tasks of the arena. Each takes primitive ids and calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from annotation import services
from annotation.models import Project


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=120,
    time_limit=150,
)
def elo_refresh_task(*, project_pk: int) -> str:
    """Rebuild a project's live Elo table. Safe to run more than once."""
    project = Project.objects.filter(pk=project_pk).first()
    if project is None:
        return "project gone"
    applied = services.elo_refresh(project=project)
    return f"applied {applied} votes"
