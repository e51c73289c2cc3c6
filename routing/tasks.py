"""Celery tasks of the router. Each takes primitive ids and calls one service."""

from __future__ import annotations

from celery import shared_task

from annotation.models import Project
from annotation.tasks import RETRYING_DB_TASK
from routing import services
from routing.models import RoutingPolicy


@shared_task(**RETRYING_DB_TASK, soft_time_limit=300, time_limit=330)
def router_run_task(*, project_pk: int, force: bool = False, queue_judge: bool = False) -> str:
    """Refit the project's disagreement model when due, then route its judged pending pairs
    (`force`: even a batch below the policy's minimum). Safe to run more than once: a
    comparison is routed once."""
    project = Project.objects.filter(pk=project_pk).first()
    if project is None:
        return "project gone"
    return services.router_run(project=project, force=force, queue_judge=queue_judge)


@shared_task(**RETRYING_DB_TASK, soft_time_limit=60, time_limit=90)
def router_run_all_task() -> str:
    """Beat: one routing run per project with an enabled policy, queueing its judge."""
    pks = list(RoutingPolicy.objects.filter(enabled=True).values_list("project_id", flat=True))
    for pk in pks:
        router_run_task.delay(project_pk=pk, queue_judge=True)
    return f"queued {len(pks)} projects"
