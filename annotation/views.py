"""HTML views of the arena: thin interfaces over services and selectors."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget
from django_htmx.middleware import HtmxDetails

from annotation import charts, ratings, selectors, services
from annotation.forms import LeaderboardFilterForm
from annotation.models import Annotator, Project, Vote


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _annotator(request: HttpRequest, project: Project, *, create: bool = True) -> Annotator | None:
    return services.annotator_get_or_create(
        user=request.user,
        session=request.session,
        project=project,
        fingerprint=services.ClientFingerprint.from_request(request),
        create=create,
    )


def _token_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def _arena_context(
    request: HttpRequest, project: Project, annotator: Annotator, last_vote: Vote | None
) -> dict[str, object]:
    try:
        assignment = services.assignment_next(project=project, annotator=annotator)
        refused = ""
    except (services.AnnotatorBanned, services.NetworkBusy) as refusal:
        assignment, refused = None, str(refusal)
    return {
        "project": project,
        "annotator": annotator,
        "assignment": assignment,
        "refused": refused,
        "last_vote": last_vote,
        "votes_cast": selectors.annotator_vote_count(annotator=annotator, project=project),
        "can_see_leaderboard": selectors.project_role(request.user, project)
        in selectors.STAFF_ROLES,
    }


@require_GET
def project_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "annotation/project_list.html",
        {"projects": selectors.projects_visible_to(request.user)},
    )


@require_GET
@never_cache  # Back after a vote must not show the voted pair from the browser's cache
def arena(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    project = selectors.get_project_for_user(request.user, slug)
    template = "annotation/arena.html"
    if request.htmx:
        template += "#pair"
    try:
        annotator = _annotator(request, project, create=False)
    except services.NewVisitor:
        fingerprint = services.ClientFingerprint.from_request(request)
        if services.network_is_full(project=project, ip_hash=fingerprint.ip_hash):
            # Refused before a profile or a session exists: a script that drops the cookie
            # leaves no rows behind, however often it asks.
            return _network_busy(request, project, template)
        annotator = _annotator(request, project)
    if annotator is None:
        return redirect_to_login(request.get_full_path())
    last_vote = selectors.last_vote_for_reveal(
        annotator=annotator, token=_token_or_none(request.GET.get("after"))
    )
    return render(request, template, _arena_context(request, project, annotator, last_vote))


def _network_busy(request: HtmxHttpRequest, project: Project, template: str) -> HttpResponse:
    context = {"project": project, "refused": str(services.NetworkBusy()), "votes_cast": 0}
    # htmx swaps no 4xx answer; a page load says 429 to scripts, and when to come back.
    response = render(request, template, context, status=200 if request.htmx else 429)
    response["Retry-After"] = str(settings.ARENA_ASSIGNMENT_TTL_SECONDS // 3)
    return response


@require_POST
def arena_vote(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    project = selectors.get_project_for_user(request.user, slug)
    try:
        annotator = _annotator(request, project, create=False)
    except services.NewVisitor:
        # No pair was served to a visitor without a profile: refuse it without making one.
        return _vote_rejected(request, project, services.PairNotServed())
    if annotator is None:
        return redirect_to_login(reverse("annotation:arena", args=[project.slug]))
    try:
        vote = services.vote_submit(
            annotator=annotator,
            token=request.POST.get("assignment"),
            choice=request.POST.get("choice"),
            fingerprint=services.ClientFingerprint.from_request(request),
            project=project,
        )
    except services.VoteRejected as rejected:
        return _vote_rejected(request, project, rejected)
    if not request.htmx:
        query = urlencode({"after": str(vote.assignment.token)})
        return HttpResponseRedirect(f"{reverse('annotation:arena', args=[project.slug])}?{query}")
    return render(
        request, "annotation/arena.html#pair", _arena_context(request, project, annotator, vote)
    )


def _vote_rejected(
    request: HtmxHttpRequest, project: Project, rejected: services.VoteRejected
) -> HttpResponse:
    context = {"project": project, "message": rejected.message}
    if request.htmx:
        response = render(request, "annotation/_vote_error.html", context, status=rejected.status)
        response = reswap(retarget(response, "#arena-error"), "innerHTML")
    else:
        response = render(request, "annotation/vote_error.html", context, status=rejected.status)
    if isinstance(rejected, services.RateLimited):
        response["Retry-After"] = str(rejected.retry_after)
    return response


@require_GET
def guidelines(request: HttpRequest, slug: str) -> HttpResponse:
    project = selectors.get_project_for_user(request.user, slug)
    return render(request, "annotation/guidelines.html", {"project": project})


@require_GET
def leaderboard(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    project = selectors.get_project_for_user(request.user, slug, staff=True)
    form = LeaderboardFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        if request.htmx:  # the filters' errors in place of the board, not a page in the page
            return render(request, "annotation/_board_invalid.html", {"form": form}, status=400)
        # The page with the errors, keeping every filter as typed (the category too).
        context = {
            "project": project,
            "form": form,
            "categories": selectors.project_categories(project),
            "filters": {"category": form.data.get("category", "")},
            "is_admin": selectors.project_role(request.user, project) == "admin",
        }
        return render(request, "annotation/leaderboard.html", context, status=400)
    filters = form.filters() if form.is_bound else selectors.LeaderboardFilters()
    template = "annotation/leaderboard.html"
    if request.htmx:
        template += "#board"
    context = _leaderboard_context(project, form, filters)
    context["is_admin"] = selectors.project_role(request.user, project) == "admin"
    return render(request, template, context)


@require_POST
def leaderboard_refresh(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    project = selectors.get_project_for_user(request.user, slug, staff=True)
    services.leaderboard_snapshot_create(project=project)
    # The board comes back with the filters it was showing (they travel in the query string).
    form = LeaderboardFilterForm(request.GET or None)
    valid = form.is_bound and form.is_valid()
    if not request.htmx:
        page = reverse("annotation:leaderboard", args=[project.slug])
        return HttpResponseRedirect(f"{page}?{request.GET.urlencode()}" if valid else page)
    if not valid:
        form = LeaderboardFilterForm()
    filters = form.filters() if valid else selectors.LeaderboardFilters()
    context = _leaderboard_context(project, form, filters)
    return render(request, "annotation/leaderboard.html#board", context)


def _leaderboard_context(
    project: Project, form: LeaderboardFilterForm, filters: selectors.LeaderboardFilters
) -> dict[str, object]:
    """The stored snapshot for default filters (computed now if none exists yet); any other
    filter is computed on the fly from the SQL aggregation."""
    board = services.leaderboard_board(project=project, filters=filters)
    excluded = 0 if board.rows else selectors.excluded_vote_count(project, filters)
    return {
        "excluded_votes": excluded,
        "groups": board.groups,  # once, not once per table row
        "provisional_votes": ratings.PROVISIONAL_VOTES,
        "project": project,
        "form": form,
        "filters": filters,
        "board": board,
        "whiskers": charts.ci_whiskers(board.rows),
        "heatmap": charts.win_rate_heatmap(board.models, board.win_rates),
        "history": charts.rating_history(selectors.rating_history(project)),
        "elo": selectors.elo_table(project),
        "categories": selectors.project_categories(project),
        "query": form.data.urlencode() if form.is_bound else "",
    }
