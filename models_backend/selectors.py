from __future__ import annotations

from annotation.models import Project
from models_backend.models import GenerationJob, Job, JudgeJob


def jobs_for_project(project: Project, *, limit: int = 20) -> list[Job]:
    """The project's newest generation and judging jobs, newest first."""
    generation = list(GenerationJob.objects.filter(project=project).select_related("model")[:limit])
    judging = list(JudgeJob.objects.filter(project=project)[:limit])
    return sorted(generation + judging, key=lambda job: job.created_at, reverse=True)[:limit]
