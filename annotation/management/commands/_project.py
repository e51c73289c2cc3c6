"""What the arena's commands share: finding the project a command names."""

from __future__ import annotations

from django.core.management.base import CommandError

from annotation.models import Project


def project_or_fail(slug: str) -> Project:
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"no project {slug!r}")
    return project
