"""Reads that explain one routing decision: its features with their weight, and the judge's
verdicts on the same two models at the conversation's other turns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from annotation.models import Comparison
from models_backend.models import Judgment
from routing.disagreement import ColdStartRule, model_from_params
from routing.features import feature_meaning
from routing.models import DisagreementFit, RouteDecision
from routing.selectors.comparisons import INCONSISTENT, prompt_conversation, router_label


@dataclass(frozen=True, slots=True)
class FeatureRow:
    name: str
    value: float
    meaning: str
    # Share of the logit (+ towards a human label), when a fitted model made the decision.
    contribution: float | None = None


def decision_explanation(decision: RouteDecision) -> list[FeatureRow]:
    """The decision's features with what each means and, when the fitted model decided, how
    much each pushed the pair towards people (+) or the judge (-), largest first."""
    fit = decision.fit
    model = None
    if fit is not None and fit.kind == DisagreementFit.Kind.LOGISTIC:
        model = model_from_params(fit.params)
        if set(model.names) != set(decision.features):
            model = None  # the fit is from another version of the features
    shares = model.contributions(decision.features) if model is not None else {}
    rows = [
        FeatureRow(name, float(value), feature_meaning(name), shares.get(name))
        for name, value in decision.features.items()
    ]
    if shares:
        rows.sort(key=lambda row: -abs(row.contribution or 0.0))
    else:  # the cold-start rule: what it reads first, then the rest by name
        rows.sort(key=lambda row: (row.name not in ColdStartRule.COLUMNS, row.name))
    return rows


@dataclass(frozen=True, slots=True)
class OtherTurn:
    """The judge's verdict on the same two models at another turn of the conversation, with
    its sides turned to the decided pair's: `verdict` is "A" or "B" (the decided pair's
    answer of that model), "tie", "flipped" (changed with the order) or "" (none)."""

    comparison_id: int
    turns: int
    verdict: str
    routed: bool


def other_turns(decision: RouteDecision) -> list[OtherTurn]:
    """The judge's current verdicts on the same two models at the other turns of the decided
    pair's conversation (prompts that open with the same user turn; the feature
    `conversation_agree` read those that existed when the pair was routed), each with the
    decision's judge's verdict, first turns first."""
    comparison = decision.comparison
    conversation, turn = prompt_conversation(comparison.prompt.turns)
    if conversation is None:
        return []
    model_a, model_b = comparison.candidate_a.model_id, comparison.candidate_b.model_id
    same_models = Q(candidate_a__model_id=model_a, candidate_b__model_id=model_b) | Q(
        candidate_a__model_id=model_b, candidate_b__model_id=model_a
    )
    candidates = (
        Comparison.objects.filter(
            same_models,
            project_id=comparison.project_id,
            is_gold=False,
            prompt__turns__0=comparison.prompt.turns[0],  # narrows; the key below decides
        )
        .exclude(prompt_id=comparison.prompt_id)
        .select_related("prompt", "candidate_a")
    )
    # Another turn, as the feature counts them: a copy of the prompt (as many turns) is not.
    others = []
    for other in candidates:
        other_conversation, other_turn = prompt_conversation(other.prompt.turns)
        if other_conversation == conversation and other_turn != turn:
            others.append(other)
    verdicts = {
        j.comparison_id: router_label(j)
        for j in Judgment.objects.filter(comparison__in=others, judge=decision.judge)
    }
    routed = set(
        RouteDecision.objects.filter(comparison__in=others).values_list("comparison_id", flat=True)
    )
    rows = [
        OtherTurn(
            other.pk,
            len(other.prompt.turns),
            _seen_from(verdicts.get(other.pk) or "", other.candidate_a.model_id == model_a),
            other.pk in routed,
        )
        for other in others
    ]
    return sorted(rows, key=lambda row: (row.turns, row.comparison_id))


def _seen_from(label: str, same_sides: bool) -> str:
    """A verdict on another comparison of the same two models as the decided pair's side that
    won ("A" or "B"), or "tie", "flipped", "" (none)."""
    if label in ("model_a", "model_b"):
        return "A" if (label == "model_a") == same_sides else "B"
    return {"": "", INCONSISTENT: "flipped"}.get(label, "tie")


@dataclass(frozen=True, slots=True)
class EarlierDecision:
    route: str
    reason: str
    p_disagree: float
    decided_at: datetime | None
    by_model: bool  # a fitted model decided (else the cold-start rule)


def earlier_decisions(decision: RouteDecision) -> list[EarlierDecision]:
    """The comparison's decisions before this one (an escalation replaces one), oldest first."""
    rows = []
    for entry in decision.history:
        reason = entry.get("reason", "")
        label = RouteDecision.Reason(reason).label if reason in RouteDecision.Reason else reason
        when = entry.get("decided_at")
        rows.append(
            EarlierDecision(
                route=entry.get("route", ""),
                reason=label,
                p_disagree=entry.get("p_disagree", 0.0),
                decided_at=datetime.fromisoformat(when) if when else None,
                by_model=entry.get("fit") is not None,
            )
        )
    return rows
