"""The router page of a project (admins): policy, figures, pairs waiting for humans, and why
each comparison went where it did."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Comparison, Project
from annotation.selectors import get_project_for_user
from prefarena.celery import QueueUnavailable, app, send_now
from routing import selectors, services
from routing.forms import RoutingPolicyForm
from routing.models import RouteDecision, RoutingPolicy
from routing.tasks import router_run_task

# Pairs listed under "Waiting for humans", the most valuable first.
WAITING_SHOWN = 50


def _page(request: HttpRequest, project: Project, form: RoutingPolicyForm | None = None):
    policy = selectors.policy_for(project)
    context: dict[str, object] = {
        "project": project,
        "policy": policy,
        "form": form or RoutingPolicyForm(instance=policy or selectors.policy_draft(project)),
        # No Celery beat beside an in-process (eager) demo: nothing routes or refits by itself.
        "in_process": settings.CELERY_TASK_ALWAYS_EAGER,
    }
    if policy is not None:
        context["overview"] = selectors.router_overview(project, policy)
        waiting = selectors.waiting_for_humans(project)
        context["waiting"] = waiting[:WAITING_SHOWN]
        context["waiting_total"] = waiting.count()
    status = 400 if form is not None and form.errors else 200
    template = "routing/router.html"
    if getattr(request, "htmx", False) and policy is not None:
        template += "#overview"
    return render(request, template, context, status=status)


@require_GET
def router_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request.user, slug, admin=True)
    return _page(request, project)


@require_POST
def router_policy(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request.user, slug, admin=True)
    instance = selectors.policy_for(project) or RoutingPolicy(project=project)
    previous_judge = instance.judge if instance.pk else None
    form = RoutingPolicyForm(request.POST, instance=instance)
    if not form.is_valid():
        return _page(request, project, form)
    policy = services.routing_policy_set(project=project, **form.cleaned_data)
    messages.success(request, "Routing policy saved.")
    kept = selectors.judge_routed_count(project, previous_judge) if previous_judge else 0
    if previous_judge != policy.judge and kept:
        messages.info(
            request,
            f"{kept} pairs already routed on the verdicts of “{previous_judge}” keep them as their "
            f"final labels until people vote on them; pairs routed from now on get the verdicts "
            f"of “{policy.judge}”.",
        )
    if policy.enabled and not selectors.judge_has_verdicts(project, policy.judge):
        messages.warning(
            request,
            f"No comparison of this arena has a verdict from “{policy.judge}” yet: nothing is "
            "routed until that judge has labelled the pending pairs (see the jobs page), and "
            "pairs already judge-labelled by another name do not count.",
        )
    if policy.audit_exceeds_budget:
        messages.warning(
            request,
            "The audit share is larger than the human share: only part of the audit is drawn, "
            "and no human label is left for the pairs the router ranks riskiest.",
        )
    return HttpResponseRedirect(reverse("routing:router", args=[project.slug]))


@require_POST
def router_run(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request.user, slug, admin=True)
    policy = selectors.policy_for(project)
    if policy is None or not policy.enabled:
        messages.error(request, "Routing is off: tick “routing on” and save the policy first.")
        return HttpResponseRedirect(reverse("routing:router", args=[project.slug]))
    try:
        result = send_now(router_run_task, project_pk=project.pk, force=True)
    except QueueUnavailable as exc:
        messages.error(request, f"{exc} Try again once it is back.")
    else:
        if app.conf.task_always_eager:  # it ran inside this request (the demo)
            messages.success(request, f"Routing ran: {result.get()}")
        else:
            messages.success(request, "Routing queued: refresh in a moment.")
    return HttpResponseRedirect(reverse("routing:router", args=[project.slug]))


@require_GET
def router_decision(request: HttpRequest, slug: str, comparison_pk: int) -> HttpResponse:
    project = get_project_for_user(request.user, slug, admin=True)
    decision = (
        RouteDecision.objects.select_related(
            "comparison__prompt",
            "comparison__candidate_a__model",
            "comparison__candidate_b__model",
            "fit",
        )
        .filter(comparison__project=project, comparison_id=comparison_pk)
        .first()
    )
    if decision is None:
        # A comparison of the arena that the router never decided: say why, not just 404.
        comparison = get_object_or_404(Comparison, project=project, pk=comparison_pk)
        context = {"project": project, "comparison": comparison}
        return render(request, "routing/no_decision.html", context, status=404)
    features = selectors.decision_explanation(decision)
    context = {
        "project": project,
        "decision": decision,
        "features": features,
        "explained": any(row.contribution is not None for row in features),
        "other_turns": selectors.other_turns(decision),
        "earlier": selectors.earlier_decisions(decision),
    }
    return render(request, "routing/decision.html", context)
