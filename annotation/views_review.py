"""Admin review of annotators: the queue, one annotator's evidence, and the decisions."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation import charts, moderation, review, selectors
from annotation.models import Annotator
from annotation.tasks import fraud_detect_task
from prefarena.celery import QueueUnavailable, app, send_now

DECISIONS = {
    # action: (state, default reason)
    "approve": (Annotator.State.ACTIVE, "Approved after review."),
    "ban": (Annotator.State.BANNED, "Banned after review."),
    "flag": (Annotator.State.FLAGGED, "Flagged by a reviewer."),
}


@require_GET
def review_queue(request: HttpRequest, slug: str) -> HttpResponse:
    project = selectors.get_project_for_user(request.user, slug, admin=True)
    return render(
        request,
        "annotation/review_queue.html",
        {"project": project, "queue": review.review_queue(project)},
    )


@require_GET
def review_annotator(request: HttpRequest, slug: str, annotator_id: int) -> HttpResponse:
    project = selectors.get_project_for_user(request.user, slug, admin=True)
    annotator = get_object_or_404(Annotator.objects.voted_in(project), pk=annotator_id)
    evidence = review.annotator_evidence(project, annotator)
    return render(
        request,
        "annotation/review_annotator.html",
        {
            "project": project,
            "evidence": evidence,
            "timeline": charts.vote_timeline(evidence.timeline),
            "decisions": DECISIONS,
        },
    )


@require_POST
def review_decide(request: HttpRequest, slug: str, annotator_id: int) -> HttpResponse:
    project = selectors.get_project_for_user(request.user, slug, admin=True)
    # Only annotators who voted in this arena: an admin of one arena reviews no one else.
    annotator = get_object_or_404(Annotator.objects.voted_in(project), pk=annotator_id)
    # From the queue, back to the queue (the next annotator); else to the annotator's page.
    if request.POST.get("back") == "queue":
        back = reverse("annotation:review", args=[project.slug])
    else:
        back = reverse("annotation:review-annotator", args=[project.slug, annotator.pk])
    decision = DECISIONS.get(request.POST.get("action", ""))
    if decision is None:
        return HttpResponse("Unknown action; use approve, ban or flag.", status=400)
    state, default_reason = decision
    reason = request.POST.get("reason", "").strip()[:2000] or default_reason
    change = moderation.annotator_set_state(
        annotator=annotator, state=state, actor=request.user, reason=reason, project=project
    )
    if change is None:
        messages.info(request, f"{annotator} already was {state}; noted as reviewed.")
    else:
        messages.success(request, f"{annotator}: {change.from_state} → {change.to_state}.")
    return HttpResponseRedirect(back)


@require_POST
def review_run(request: HttpRequest, slug: str) -> HttpResponse:
    project = selectors.get_project_for_user(request.user, slug, admin=True)
    try:
        result = send_now(fraud_detect_task, project_pk=project.pk)
    except QueueUnavailable as exc:
        messages.error(request, f"{exc} Try again once it is back.")
        return HttpResponseRedirect(reverse("annotation:review", args=[project.slug]))
    if app.conf.task_always_eager:  # it ran inside this request; a worker's result is not kept
        messages.success(request, f"Detection ran: {result.get()}")
    else:
        messages.info(request, "Detection queued; this page shows its verdicts when it is done.")
    return HttpResponseRedirect(reverse("annotation:review", args=[project.slug]))
