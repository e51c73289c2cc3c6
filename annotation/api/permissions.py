"""Per-project roles for API views: who may see identities, write data, export."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request

from annotation import selectors
from annotation.models import Project

STAFF = "staff"  # researchers and admins: identities, votes, judgments, leaderboards, exports
ADMIN = "admin"  # admins: write prompts, candidates, models
VOTER = "voter"  # anyone who may vote in the project


def project_for(request: Request, slug: str, need: str = VOTER) -> Project:
    """The project the URL names, if the request's user has the role ``need`` asks for."""
    try:
        project = selectors.get_project_for_user(
            request.user, slug, staff=need == STAFF, admin=need == ADMIN
        )
    except Http404 as exc:
        raise NotFound("No such arena.") from exc
    except DjangoPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from exc
    return project


def is_staff(request: Request, project: Project) -> bool:
    return selectors.project_role(request.user, project) in selectors.STAFF_ROLES
