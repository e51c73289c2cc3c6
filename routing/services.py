"""Writes of the router: the policy, fitting the disagreement model on pairs with both labels,
and routing the comparisons that wait for it.

The flow of a routed project: comparisons are created `pending`; the LLM judge labels them (a
judge job, which reads pending pairs too); the router (a beat task, or "Route now") scores
each judged pending pair with the newest disagreement model, draws the random audit stream,
gives the highest-value pairs to humans within the budget and the rest to the judge, and
stores every decision with its score and features. As humans finish audited and
human-routed pairs, the model is refitted (every `retrain_every` new labelled pairs).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Min, OuterRef
from django.utils import timezone

from annotation.models import Assignment, Comparison, Project
from models_backend import services as backend_services
from models_backend.models import JudgeJob, Judgment
from prefarena.bulk import insert_rows
from routing import selectors
from routing.allocation import DEFAULT_AUDIT_TILT, allocate
from routing.consensus import Verdict
from routing.disagreement import (
    BlendedModel,
    ColdStartRule,
    DisagreementModel,
    DisagreementScorer,
    fit_disagreement_model,
    model_from_params,
)
from routing.evaluation import auroc, cross_fit, default_fitter, group_folds
from routing.features import (
    FeatureConfig,
    PairFeatures,
    RoutingPair,
    build_features,
    feature_names,
)
from routing.models import DisagreementFit, RouteDecision, RoutingPolicy

CV_FOLDS = 5
# Pairs routed per run at most: a large backlog is routed over several runs, each well inside
# the task's time limit.
MAX_BATCH = 5000
logger = logging.getLogger(__name__)


# --- policy -----------------------------------------------------------------------------


@transaction.atomic
def routing_policy_set(
    *,
    project: Project,
    enabled: bool = True,
    judge: str | None = None,
    budget_kind: str = RoutingPolicy.BudgetKind.SHARE,
    budget_share: float = 0.25,
    daily_human_votes: int = 0,
    audit_fraction: float = 0.05,
    audit_tilt: float = DEFAULT_AUDIT_TILT,
    retrain_every: int = 20,
    min_batch: int = 50,
    max_wait_minutes: int = 30,
) -> RoutingPolicy:
    """Create or change a project's routing policy.

    Enabling it puts the comparisons nobody has started on (no decision, no assignment) in
    `pending` for the router; disabling it hands every pending comparison back to humans.
    """
    policy = RoutingPolicy.objects.select_for_update().filter(project=project).first()
    policy = policy or RoutingPolicy(project=project)
    policy.enabled = enabled
    if judge:
        policy.judge = judge
    policy.budget_kind = budget_kind
    policy.budget_share = budget_share
    policy.daily_human_votes = daily_human_votes
    policy.audit_fraction = audit_fraction
    policy.audit_tilt = audit_tilt
    policy.retrain_every = retrain_every
    policy.min_batch = min_batch
    policy.max_wait_minutes = max_wait_minutes
    policy.updated_at = timezone.now()
    policy.full_clean()
    policy.save()
    comparisons = Comparison.objects.for_project(project).rated()
    if enabled:
        started = Assignment.objects.filter(comparison=OuterRef("pk"))
        comparisons.filter(
            route=Comparison.Route.HUMAN, route_decision__isnull=True, vote_count=0
        ).exclude(Exists(started)).update(route=Comparison.Route.PENDING)
    else:
        comparisons.filter(route=Comparison.Route.PENDING).update(route=Comparison.Route.HUMAN)
    return policy


# --- budget -----------------------------------------------------------------------------


def human_budget_left(project: Project, policy: RoutingPolicy, batch: int) -> int:
    """Comparisons this batch of `batch` may send to humans (audit stream included)."""
    if policy.budget_kind == RoutingPolicy.BudgetKind.DAILY:
        return selectors.budget_left_today(project, policy).votes_left // max(
            1, project.votes_per_comparison
        )
    decided = RouteDecision.objects.filter(comparison__project=project)
    already_human = decided.filter(route__in=["human", "both"]).count()
    allowed = round(policy.budget_share * (decided.count() + batch))
    return max(0, min(batch, allowed - already_human))


# --- the disagreement model -------------------------------------------------------------


def feature_config() -> FeatureConfig:
    """The routing features this deployment builds: with sentence embeddings when turned on."""
    return FeatureConfig(embeddings=settings.PREFARENA_ROUTER_EMBEDDINGS)


def _features(
    project: Project,
    policy: RoutingPolicy,
    pairs: list[RoutingPair],
    context: list[Verdict] | None = None,
) -> PairFeatures:
    """The routing features of `pairs`, scored against every verdict of the policy's judge in
    the project (`context`, read here unless given)."""
    if context is None:
        context = selectors.judge_verdicts(project, policy.judge)
    return build_features(pairs, feature_config(), context=context)


def _featurised(
    project: Project,
    policy: RoutingPolicy,
    comparison_ids: list[int],
    context: list[Verdict] | None = None,
) -> tuple[list[Comparison], list[RoutingPair], PairFeatures]:
    """The comparisons (with their texts, in the order of `comparison_ids`), as the router sees
    them, and their features as this version builds them now."""
    loaded = selectors.with_texts(Comparison.objects.filter(pk__in=comparison_ids)).in_bulk()
    comparisons = [loaded[pk] for pk in comparison_ids if pk in loaded]
    judgments, others = selectors.judgments_by_comparison(comparison_ids, policy.judge)
    pairs = [
        selectors.routing_pair(c, judgments.get(c.pk), others.get(c.pk, ())) for c in comparisons
    ]
    return comparisons, pairs, _features(project, policy, pairs, context)


def _stored_features(features: PairFeatures) -> list[dict[str, float]]:
    """Each pair's features as its decision keeps them: rounded, by name (+ 0.0 turns a -0.0
    into 0.0 for the page)."""
    rows = (np.round(features.matrix, 4) + 0.0).tolist()
    return [dict(zip(features.names, row, strict=True)) for row in rows]


def _is_stale(fit: DisagreementFit | None, names: tuple[str, ...]) -> bool:
    """Whether a fitted model reads other columns than `names`."""
    return (
        fit is not None
        and fit.kind == DisagreementFit.Kind.LOGISTIC
        and tuple(fit.params.get("names", ())) != names
    )


def scorer_for(fit: DisagreementFit | None) -> DisagreementScorer:
    if fit is None or fit.kind == DisagreementFit.Kind.COLD_START:
        return ColdStartRule()
    return model_from_params(fit.params)


def router_retrain(*, project: Project, force: bool = False) -> DisagreementFit | None:
    """Refit P(judge disagrees with the human majority) once `retrain_every` new pairs have
    both labels (or on `force`); returns the new fit, or None when none was due."""
    policy = selectors.policy_for(project)
    if policy is None:
        return None
    last = selectors.current_fit(project, policy.judge)
    trained_on = last.labelled if last is not None else 0
    # A fit of other features than this version builds (an upgrade, embeddings switched) no
    # longer scores anything: refit at once rather than wait for `retrain_every` new pairs.
    stale = _is_stale(last, feature_names(feature_config()))

    def due(n: int) -> bool:
        return force or (n > 0 and (stale or n - trained_on >= policy.retrain_every))

    # A COUNT first (an upper bound: it ignores who voted), so the beat loads texts and votes
    # only when a refit may be due.
    if not due(selectors.finished_comparisons(project, policy.judge).count()):
        return None
    labelled = selectors.labelled_comparisons(project, policy.judge)
    n = len(labelled.comparisons)
    if not due(n):
        return None
    pairs = [
        selectors.routing_pair(c, labelled.judgments[c.pk], labelled.others.get(c.pk, ()))
        for c in labelled.comparisons
    ]
    features = _features(project, policy, pairs)
    wrong = np.asarray(labelled.judge_wrong, dtype=float)
    human_tie = np.asarray([truth == "tie" for truth in labelled.truths], dtype=float)
    scorer = fit_disagreement_model(features, wrong, human_tie=human_tie)
    fit = DisagreementFit(
        project=project, judge=policy.judge, labelled=n, judge_wrong=int(wrong.sum())
    )
    if isinstance(scorer, DisagreementModel | BlendedModel):
        fit.kind = DisagreementFit.Kind.LOGISTIC
        fit.params = scorer.to_params()
        prompts = [c.prompt_id for c in labelled.comparisons]
        folds = min(CV_FOLDS, len(set(prompts)))
        if folds >= 2:
            oof, _ = cross_fit(
                features, wrong, group_folds(prompts, folds, 0), default_fitter(0), human_tie
            )
            fit.cv_auroc = auroc(oof, wrong)
    else:
        fit.kind = DisagreementFit.Kind.COLD_START
    fit.full_clean()
    fit.save()
    return fit


# --- routing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoutingResult:
    routed: int = 0
    human: int = 0
    judge: int = 0
    both: int = 0
    held: int = 0
    waiting_for_judge: int = 0

    def __str__(self) -> str:
        held = f"; {self.held} judged pairs held for a fuller batch" if self.held else ""
        return (
            f"routed {self.routed} (human {self.human}, judge {self.judge}, audit {self.both})"
            f"{held}; {self.waiting_for_judge} wait for a judge verdict"
        )


def _batch_is_due(policy: RoutingPolicy, judged: list[int]) -> bool:
    """A batch is routed once it is full or its oldest verdict has waited long enough: the
    budget then goes to the best pairs of a batch, not to whichever pair came first."""
    if len(judged) >= policy.min_batch:
        return True
    oldest = Judgment.objects.filter(comparison_id__in=judged, judge=policy.judge).aggregate(
        oldest=Min("created_at")
    )["oldest"]
    return oldest is not None and oldest <= timezone.now() - timedelta(
        minutes=policy.max_wait_minutes
    )


def _scorer(
    project: Project, judge: str, names: tuple[str, ...]
) -> tuple[DisagreementScorer, DisagreementFit | None]:
    """The newest fit, or the cold-start rule when none exists or it was fitted on other
    features (an upgrade changed them): routing never stops on a stale model."""
    fit = selectors.current_fit(project, judge)
    if _is_stale(fit, names):
        logger.warning("router fit %s has other features than this version: cold start", fit.pk)
        return ColdStartRule(), None
    return scorer_for(fit), fit


@transaction.atomic
def comparisons_route(
    *, project: Project, force: bool = False, rng: random.Random | None = None
) -> RoutingResult:
    """Route the project's judged pending comparisons, oldest first, at most `MAX_BATCH` a run.

    One run per project at a time (the policy row is locked), so a budget is never spent
    twice; a comparison is decided once (one-to-one). Without `force`, a batch smaller than
    the policy's `min_batch` waits until its oldest verdict is `max_wait_minutes` old.
    """
    policy = RoutingPolicy.objects.select_for_update().filter(project=project).first()
    if policy is None or not policy.enabled:
        return RoutingResult()
    rng = rng or random.Random()  # noqa: S311 - the audit draw needs no secrecy
    judged = list(
        selectors.routable(project, policy.judge)
        .order_by("id")
        .select_for_update(of=("self",))
        .values_list("pk", flat=True)[:MAX_BATCH]
    )
    pending = Comparison.objects.filter(project=project, route=Comparison.Route.PENDING).count()
    if not judged or not (force or _batch_is_due(policy, judged)):
        return RoutingResult(held=len(judged), waiting_for_judge=pending - len(judged))
    comparisons, pairs, features = _featurised(project, policy, judged)
    scorer, fit = _scorer(project, policy.judge, features.names)
    p_disagree = np.clip(scorer.predict_proba(features), 0.0, 1.0)

    n = len(comparisons)
    budget = human_budget_left(project, policy, n)
    # The audit stream, always drawn (it is what keeps the judge measured without selection
    # bias: each audited pair is weighted by 1 / its chance) and paid first from the budget.
    allocation = allocate(
        p_disagree,
        budget=budget,
        audit_fraction=policy.audit_fraction,
        audit_tilt=policy.audit_tilt,
        audit_beyond_budget=True,
        seed=rng.randrange(2**32),
    )
    routes, chance = allocation.routes, allocation.audit_chance

    reasons = {"both": RouteDecision.Reason.AUDIT, "human": RouteDecision.Reason.PRIORITY}
    stored = _stored_features(features)
    decisions = [
        RouteDecision(
            comparison=comparisons[i],
            route=routes[i],
            reason=reasons.get(routes[i], RouteDecision.Reason.BUDGET),
            p_disagree=float(p_disagree[i]),
            audit_chance=float(chance[i]),
            surely_human=bool(allocation.surely_human[i]),
            priority=float(allocation.priority[i]),
            judge=policy.judge,
            judge_verdict=pairs[i].llm_label or "",
            features=stored[i],
            fit=fit,
        )
        for i in range(n)
    ]
    insert_rows(decisions)
    for route in ("human", "judge", "both"):
        ids = [comparisons[i].pk for i in range(n) if routes[i] == route]
        Comparison.objects.filter(pk__in=ids).update(route=route)
    counts = {route: allocation.count(route) for route in ("human", "judge")}
    return RoutingResult(
        routed=n, both=allocation.count("both"), waiting_for_judge=pending - n, **counts
    )


def _judge_spec(project: Project, judge: str) -> dict | None:
    """Where the router's judge comes from: the bundled default, or the spec of the newest
    judge job run under that name in this project; None when unknown."""
    if judge == backend_services.DEFAULT_JUDGE:
        return {}
    job = JudgeJob.objects.filter(project=project, judge=judge).order_by("-created_at").first()
    return job.judge_spec if job is not None else None


def router_judge_job_create(
    *, project: Project, batch_size: int = 8
) -> tuple[JudgeJob | None, str]:
    """The jobs page's "Judge routed comparisons": the judge the router reads (its policy's,
    run as it last ran here) on the pairs routed to the judge, to both, or waiting; without a
    policy, the bundled default judge. Returns the job, or None and why none can run."""
    policy = selectors.policy_for(project)
    if policy is None:
        return backend_services.judge_job_create(project=project, batch_size=batch_size), ""
    spec = _judge_spec(project, policy.judge)
    if spec is None:
        return None, (
            f"The router reads the judge {policy.judge}, which never ran here (its verdicts "
            "were imported), so there is nothing to run: import its verdicts for the new pairs "
            f"(manage.py import_judgments --project {project.slug} --judge {policy.judge} "
            f"FILE), or name a judge that runs, such as {backend_services.DEFAULT_JUDGE}, in "
            "the router policy."
        )
    job = backend_services.judge_job_create(
        project=project, judge=policy.judge, judge_spec=spec, batch_size=batch_size
    )
    return job, ""


def pending_judge_job(*, project: Project) -> JudgeJob | None:
    """Queue the router's judge on pending pairs it has not labelled, unless a job of that
    judge is already queued or running, or nobody knows where the judge comes from."""
    policy = selectors.policy_for(project)
    if policy is None or not policy.enabled:
        return None
    busy = JudgeJob.objects.filter(
        project=project,
        judge=policy.judge,
        status__in=[JudgeJob.Status.QUEUED, JudgeJob.Status.RUNNING],
    ).exists()
    spec = _judge_spec(project, policy.judge)
    if busy or spec is None:
        return None
    # Only the pairs the router waits for: the ones it already routed were decided on a verdict,
    # and judging them again first kept the waiting pairs behind hours of CPU work.
    unjudged = list(
        Comparison.objects.filter(project=project, route=Comparison.Route.PENDING, is_gold=False)
        .exclude(judgments__judge=policy.judge)
        .order_by("id")
    )
    if not unjudged:
        return None
    return backend_services.judge_job_create(
        project=project, comparisons=unjudged, judge=policy.judge, judge_spec=spec
    )


# At most this many judge-labelled pairs (the riskiest when routed) are scored again in one
# escalation pass, `MAX_BATCH` at a time.
MAX_ESCALATION_CANDIDATES = 20_000


@transaction.atomic
def judge_pairs_escalate(*, project: Project) -> int:
    """Spend what a daily budget has left, once no judged pair waits to be routed, on the
    judge-labelled pairs (no human vote yet) that the newest model finds riskiest, among the
    `MAX_ESCALATION_CANDIDATES` riskiest when they were routed. Their features are built again
    (the judge's other verdicts have grown since, and a pair routed by an older version has
    other columns), so a model fitted since they were routed decides; the escalated decisions
    keep the features that decided. Returns how many pairs now go to people. A share budget has
    nothing left over to spend this way."""
    policy = RoutingPolicy.objects.select_for_update().filter(project=project).first()
    if policy is None or not policy.enabled:
        return 0
    if policy.budget_kind != RoutingPolicy.BudgetKind.DAILY:
        return 0
    if selectors.routable(project, policy.judge).exists():
        return 0  # new pairs are routed first
    slots = human_budget_left(project, policy, 0)
    if slots <= 0:
        return 0
    decisions = {
        decision.comparison_id: decision
        for decision in RouteDecision.objects.select_for_update(of=("self",))
        .filter(
            comparison__project=project,
            comparison__route=Comparison.Route.JUDGE,
            comparison__is_gold=False,
            comparison__vote_count=0,
            judge=policy.judge,  # the label people would check is this judge's
        )
        .order_by("-p_disagree", "id")
        .only("id", "comparison_id")[:MAX_ESCALATION_CANDIDATES]
    }
    if not decisions:
        return 0
    scorer, fit = _scorer(project, policy.judge, feature_names(feature_config()))
    context = selectors.judge_verdicts(project, policy.judge)
    ids = list(decisions)
    scored: list[tuple[float, int, dict[str, float]]] = []  # (P(disagree), comparison, features)
    for start in range(0, len(ids), MAX_BATCH):  # as many texts at once as a routing run
        comparisons, _, features = _featurised(
            project, policy, ids[start : start + MAX_BATCH], context
        )
        p_disagree = np.clip(scorer.predict_proba(features), 0.0, 1.0)
        pks = [c.pk for c in comparisons]
        scored.extend(zip(p_disagree.tolist(), pks, _stored_features(features), strict=True))
    # The riskiest first; equal scores in the order they were routed by (a stable sort).
    scored.sort(key=lambda item: -item[0])
    chosen = []
    now = timezone.now()
    # In full (their features too) only the few that change: history keeps what they were.
    whole = RouteDecision.objects.in_bulk([decisions[pk].pk for _, pk, _ in scored[:slots]])
    for p_disagree_now, pk, row in scored[:slots]:
        decision = whole[decisions[pk].pk]
        decision.remember()  # the first decision stays explainable
        decision.route = Comparison.Route.HUMAN
        decision.reason = RouteDecision.Reason.ESCALATE
        decision.p_disagree = decision.priority = p_disagree_now
        decision.features = row
        decision.fit = fit
        decision.decided_at = now
        chosen.append(decision)
    RouteDecision.objects.bulk_update(
        chosen,
        ["route", "reason", "p_disagree", "priority", "features", "fit", "decided_at", "history"],
    )
    Comparison.objects.filter(pk__in=[d.comparison_id for d in chosen]).update(
        route=Comparison.Route.HUMAN
    )
    return len(chosen)


def router_run(*, project: Project, force: bool = False, queue_judge: bool = False) -> str:
    """Refit when due, then route what waits (with `force`, also a batch below the policy's
    minimum). The beat also queues the judge on unjudged pending pairs (`queue_judge`); "Route
    now" does not, since with in-process tasks (the demo) that would judge inside the click."""
    job = pending_judge_job(project=project) if queue_judge else None
    fit = router_retrain(project=project)
    result = comparisons_route(project=project, force=force)
    escalated = judge_pairs_escalate(project=project)
    queued = f"judge job {job.pk} queued; " if job is not None else ""
    refit = f"refitted on {fit.labelled} pairs; " if fit is not None else ""
    more = f"; {escalated} judge-labelled pairs escalated to people" if escalated else ""
    return f"{queued}{refit}{result}{more}"
