"""The router's records: a project's policy (budget, audit share, judge), the fitted
disagreement models, and one stored decision per routed comparison, features included, so
every routing can be explained later."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotation.models import Comparison, Project
from routing.allocation import DEFAULT_AUDIT_TILT

# A share, checked on the field (a readable error on the form) and by the table's constraint.
SHARE_RANGE = [MinValueValidator(0.0), MaxValueValidator(1.0)]
# Bounds that no real arena reaches, so a typo gets a plain error, not a database limit.
MAX_DAILY_VOTES = 10_000_000
MAX_PAIRS = 10_000_000
MAX_WAIT_MINUTES = 60 * 24 * 365  # a year

# The settings an admin chooses (the router page's form, the API's view of a policy).
POLICY_SETTINGS = (
    "enabled",
    "judge",
    "budget_kind",
    "budget_share",
    "daily_human_votes",
    "audit_fraction",
    "audit_tilt",
    "retrain_every",
    "min_batch",
    "max_wait_minutes",
)


class RoutingPolicy(models.Model):
    """How a project's comparisons are split between humans and the LLM judge.

    While a policy is enabled, new comparisons wait (route `pending`) until the judge has
    given its verdict and the router has decided who labels them.
    """

    class BudgetKind(models.TextChoices):
        SHARE = "share", "A share of the comparisons"
        DAILY = "daily", "A number of human votes per day"

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="routing_policy")
    enabled = models.BooleanField(default=True)
    judge = models.CharField(
        max_length=200,
        default="gemma3-270m-judge",
        help_text="The judge whose verdicts the router reads and the judge-only pairs get.",
    )
    budget_kind = models.CharField(
        max_length=8, choices=BudgetKind.choices, default=BudgetKind.SHARE
    )
    budget_share = models.FloatField(
        default=0.25,
        validators=SHARE_RANGE,
        help_text="Share of the routed comparisons that humans label, 0 to 1.",
    )
    daily_human_votes = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_DAILY_VOTES)],
        help_text="Human votes the project can pay for each day (daily budgets).",
    )
    audit_fraction = models.FloatField(
        default=0.05,
        validators=SHARE_RANGE,
        help_text="Share of routed comparisons drawn at random for both a human and the judge "
        "(paid from the human budget), to measure the judge without selection bias.",
    )
    audit_tilt = models.FloatField(
        default=DEFAULT_AUDIT_TILT,
        validators=SHARE_RANGE,
        help_text="How far a pair's chance of an audit follows its predicted P(judge wrong): "
        "0 the same for every pair, 1 proportional to it. Tilted, the audit also catches more "
        "of the judge's errors; its estimates weight each pair by 1 / its chance, so they stay "
        "unbiased.",
    )
    min_batch = models.PositiveIntegerField(
        default=50,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_PAIRS)],
        help_text="Route once this many judged pairs wait (the budget goes to the best of a "
        "batch, not to whichever pair came first) ...",
    )
    max_wait_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MaxValueValidator(MAX_WAIT_MINUTES)],
        help_text="... or once the oldest judged pair has waited this long.",
    )
    retrain_every = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_PAIRS)],
        help_text="Refit the disagreement model after this many new labelled pairs.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "routing policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(budget_share__gte=0.0, budget_share__lte=1.0),
                name="routing_budget_share_range",
            ),
            models.CheckConstraint(
                condition=Q(audit_fraction__gte=0.0, audit_fraction__lte=1.0),
                name="routing_audit_fraction_range",
            ),
            models.CheckConstraint(
                condition=Q(audit_tilt__gte=0.0, audit_tilt__lte=1.0),
                name="routing_audit_tilt_range",
            ),
        ]

    def __str__(self) -> str:
        return f"routing policy of {self.project}"

    @property
    def audit_exceeds_budget(self) -> bool:
        """A share budget smaller than the audit share: only part of the audit is drawn, and
        nothing is left for the pairs the router ranks first."""
        return self.budget_kind == self.BudgetKind.SHARE and self.audit_fraction > self.budget_share


class DisagreementFit(models.Model):
    """A disagreement model fitted on a project's comparisons that have both labels.

    `kind` is `cold_start` while too few labelled pairs exist (the rule needs no parameters).
    """

    class Kind(models.TextChoices):
        COLD_START = "cold_start", "Cold-start rule"
        LOGISTIC = "logistic", "Logistic regression"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="router_fits")
    judge = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    labelled = models.PositiveIntegerField(help_text="Pairs with both labels it was fitted on.")
    judge_wrong = models.PositiveIntegerField(help_text="Of those, pairs the judge got wrong.")
    cv_auroc = models.FloatField(
        null=True, blank=True, help_text="Cross-validated AUROC on the training pairs."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.labelled} pairs ({self.project})"


class RouteDecision(models.Model):
    """Who labels one comparison, and why: the score, its rank and the features behind it."""

    class Reason(models.TextChoices):
        AUDIT = "audit", "Random audit sample: a human and the judge"
        PRIORITY = "priority", "Among the most valuable pairs for a human within the budget"
        BUDGET = "budget", "Below the budget's cut: the judge labels it"
        ESCALATE = (
            "escalate",
            (
                "Escalated later: a day's human votes that no new pair needed went to the "
                "judge-labelled pairs the newest model found riskiest"
            ),
        )

    comparison = models.OneToOneField(
        Comparison, on_delete=models.CASCADE, related_name="route_decision"
    )
    route = models.CharField(max_length=8, choices=Comparison.Route.choices)
    reason = models.CharField(max_length=8, choices=Reason.choices)
    p_disagree = models.FloatField(help_text="Predicted P(judge differs from the human majority).")
    audit_chance = models.FloatField(
        null=True,
        blank=True,
        help_text="The pair's chance of being drawn for the audit stream (the weight of an "
        "audited pair is 1 / it); filled with the policy's audit share on decisions from before "
        "audits were tilted, which were uniform.",
    )
    surely_human = models.BooleanField(
        null=True,
        blank=True,
        help_text="Ranked so high that people label it whatever the audit draws. Its audit, if "
        "drawn, says nothing about the pairs the router gives the judge (it never gives the "
        "judge one from that high), so their estimated accuracy leaves it out. Empty on "
        "decisions from before it was recorded.",
    )
    priority = models.FloatField()
    judge = models.CharField(max_length=200)
    judge_verdict = models.CharField(max_length=20, help_text="As the router read it.")
    features = models.JSONField(default=dict, blank=True)
    fit = models.ForeignKey(
        DisagreementFit, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(default=timezone.now, db_index=True)
    history = models.JSONField(
        default=list,
        blank=True,
        help_text="The comparison's earlier decisions, oldest first, as each was before a later "
        "one replaced it (an escalation): route, reason, scores, fit, features, time.",
    )

    class Meta:
        ordering = ["-priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(route__in=["human", "judge", "both"]), name="route_decision_routed"
            ),
            models.CheckConstraint(
                condition=Q(p_disagree__gte=0.0, p_disagree__lte=1.0),
                name="route_decision_probability",
            ),
            models.CheckConstraint(
                condition=Q(audit_chance__isnull=True)
                | Q(audit_chance__gte=0.0, audit_chance__lte=1.0),
                name="route_decision_audit_chance",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.comparison} to {self.route} ({self.get_reason_display()})"

    def remember(self) -> None:
        """Keep this decision as it stands in `history`, before a later one replaces it."""
        self.history = [
            *self.history,
            {
                "route": self.route,
                "reason": self.reason,
                "p_disagree": self.p_disagree,
                "priority": self.priority,
                "audit_chance": self.audit_chance,
                "surely_human": self.surely_human,
                "judge_verdict": self.judge_verdict,
                "fit": self.fit_id,
                "features": self.features,
                "decided_at": self.decided_at.isoformat(),
            },
        ]

    @property
    def audit_weight(self) -> float | None:
        """How many routed pairs an audited pair stands for in the audit figures: 1 / its chance."""
        return 1.0 / self.audit_chance if self.audit_chance else None
