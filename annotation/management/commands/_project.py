"""What the arena's commands share: finding the project a command names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.management.base import CommandError

from annotation.importers import ImportFailed
from annotation.models import Project

Report = TypeVar("Report")


def project_or_fail(slug: str) -> Project:
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"no project {slug!r}")
    return project


def import_or_fail(importer: Callable[..., Report], slug: str, **kwargs: Any) -> Report:
    """Run an importer on the named project; a malformed file is a CommandError listing every
    problem, and nothing was imported."""
    project = project_or_fail(slug)
    try:
        return importer(project=project, **kwargs)
    except ImportFailed as failed:
        raise CommandError(str(failed)) from failed
