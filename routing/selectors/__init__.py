"""Reads for the router, by sub-domain; every public name is importable from here.

- `comparisons`: comparisons as the pure router sees them, the judge's verdicts, human
  majorities, final labels, what the budget has left, and what is routable.
- `decisions`: what explains one routing decision.
- `overview`: the figures of a project's router page.
"""

from routing.selectors.comparisons import (
    INCONSISTENT,
    DailyBudget,
    FinalLabel,
    Labelled,
    budget_left_today,
    current_fit,
    final_labels,
    finished_comparisons,
    human_majorities,
    judge_has_verdicts,
    judge_routed_count,
    judge_verdicts,
    judgments_by_comparison,
    labelled_comparisons,
    open_human_slots,
    policy_draft,
    policy_for,
    prompt_conversation,
    routable,
    router_label,
    routing_pair,
    waiting_for_humans,
    with_texts,
)
from routing.selectors.decisions import FeatureRow, OtherTurn, decision_explanation, other_turns
from routing.selectors.overview import (
    WEIGHTS_SHOWN,
    Agreement,
    AuditAgreement,
    CategoryAgreement,
    RouterOverview,
    audit_agreement,
    final_accuracy,
    final_sources,
    router_overview,
)

__all__ = [
    "INCONSISTENT",
    "WEIGHTS_SHOWN",
    "Agreement",
    "AuditAgreement",
    "CategoryAgreement",
    "DailyBudget",
    "FeatureRow",
    "FinalLabel",
    "Labelled",
    "OtherTurn",
    "RouterOverview",
    "audit_agreement",
    "budget_left_today",
    "current_fit",
    "decision_explanation",
    "final_accuracy",
    "final_labels",
    "final_sources",
    "finished_comparisons",
    "human_majorities",
    "judge_has_verdicts",
    "judge_routed_count",
    "judge_verdicts",
    "judgments_by_comparison",
    "labelled_comparisons",
    "open_human_slots",
    "other_turns",
    "policy_draft",
    "policy_for",
    "prompt_conversation",
    "routable",
    "router_label",
    "router_overview",
    "routing_pair",
    "waiting_for_humans",
    "with_texts",
]
