"""Reads of the arena, with the access checks every view goes through."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from annotation.models import Annotator, Assignment, EloRating, Membership, Project, Vote

STAFF_ROLES = (Membership.Role.RESEARCHER, Membership.Role.ADMIN)


def project_role(user: AbstractBaseUser | AnonymousUser, project: Project) -> str | None:
    """The user's role in the project: a membership role, "admin" for superusers, else None."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Membership.Role.ADMIN
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def get_project_for_user(
    user: AbstractBaseUser | AnonymousUser, slug: str, *, staff: bool = False
) -> Project:
    """The project an arena URL names, if this user may see it.

    Inactive projects are visible to their staff only; `staff=True` asks for a researcher or
    admin role (leaderboards, exports). Raises Http404 / PermissionDenied.
    """
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise Http404("No such arena.")
    role = project_role(user, project)
    if staff and role not in STAFF_ROLES:
        if not user.is_authenticated:
            raise PermissionDenied("Log in as a researcher or admin of this arena.")
        raise PermissionDenied("Only researchers and admins of this arena may see this.")
    if not project.is_active and role not in STAFF_ROLES:
        raise Http404("No such arena.")
    return project


def projects_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Project]:
    return Project.objects.filter(is_active=True).order_by("title")


def last_vote_for_reveal(*, annotator: Annotator, token: str | None) -> Vote | None:
    """The annotator's vote on the pair with this token, to reveal the model names."""
    if not token:
        return None
    assignment = (
        Assignment.objects.filter(annotator=annotator, token=token)
        .select_related("vote", "comparison__candidate_a__model", "comparison__candidate_b__model")
        .first()
    )
    if assignment is None or not hasattr(assignment, "vote"):
        return None
    return assignment.vote


def elo_table(project: Project) -> QuerySet[EloRating]:
    return EloRating.objects.filter(project=project).select_related("model").order_by("-rating")


def annotator_vote_count(*, annotator: Annotator, project: Project) -> int:
    return Vote.objects.filter(annotator=annotator, comparison__project=project).count()
