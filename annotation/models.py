"""Arena domain: projects, prompts, competitors, their outputs, comparisons and votes.

Integrity lives in the database: unique constraints make a vote exist once per annotator and
comparison, and check constraints keep the stored winner consistent with the choice and side.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

# The largest value of PostgreSQL's `integer` columns (SQLite would take more, silently).
MAX_INT = 2**31 - 1


class Project(models.Model):
    """An arena (campaign): a set of prompts and competitors voted on under shared rules."""

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    allow_tie = models.BooleanField(default=True)
    allow_both_bad = models.BooleanField(default=True)
    reveal_models = models.BooleanField(
        default=True, help_text="Show the model names after the vote."
    )
    votes_per_comparison = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Human votes each comparison wants, 1 to 1000.",
    )
    login_required = models.BooleanField(
        default=False, help_text="If off, anonymous annotators vote under a pseudonym."
    )
    is_active = models.BooleanField(default=True)
    gold_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of served pairs drawn from gold pairs (a known better answer), 0 to 1.",
    )
    max_votes_per_minute = models.PositiveIntegerField(
        default=20,
        validators=[MaxValueValidator(MAX_INT)],
        help_text="Votes one annotator may cast in any 60 s; 0 for no limit.",
    )
    max_votes_per_day = models.PositiveIntegerField(
        default=1000,
        validators=[MaxValueValidator(MAX_INT)],
        help_text="Votes one annotator may cast in any 24 h; 0 for no limit.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects", blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=Q(votes_per_comparison__gte=1), name="project_votes_wanted_positive"
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0.0, gold_rate__lte=1.0), name="project_gold_rate_share"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def allowed_choices(self) -> list[str]:
        choices = [Vote.Choice.LEFT, Vote.Choice.RIGHT]
        if self.allow_tie:
            choices.append(Vote.Choice.TIE)
        if self.allow_both_bad:
            choices.append(Vote.Choice.BOTH_BAD)
        return [str(choice) for choice in choices]


class Membership(models.Model):
    """A user's role in one project; annotators need none on open projects."""

    class Role(models.TextChoices):
        ANNOTATOR = "annotator"
        RESEARCHER = "researcher"
        ADMIN = "admin"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.role} · {self.project.slug}"


class Prompt(models.Model):
    """A conversation to answer: one or more user turns (MT-Bench prompts have two)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=100, blank=True, db_index=True)
    turns = models.JSONField(help_text="The user messages, in order (a list of strings).")
    reference_answer = models.TextField(blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="Dataset and license.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=~Q(external_id=""),
                name="prompt_external_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id or f"prompt {self.pk}"

    @property
    def text(self) -> str:
        return self.turns[-1] if self.turns else ""


class ModelEntry(models.Model):
    """A competitor. Its outputs are imported, generated locally, or fetched over HTTP."""

    class Backend(models.TextChoices):
        IMPORTED = "imported", "Imported outputs only"
        TRANSFORMERS = "transformers", "Local transformers model"
        OPENAI = "openai", "OpenAI-compatible endpoint"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.IMPORTED)
    backend_config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = "model entry"
        verbose_name_plural = "model entries"
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="model_entry_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Candidate(models.Model):
    """One model's answer to one prompt: one assistant response per user turn."""

    # The settings hash of a decoy: an answer to another prompt, the wrong side of a gold pair.
    GOLD_DECOY = "gold-decoy"

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="candidates")
    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="candidates")
    responses = models.JSONField(help_text="Assistant messages, one per user turn.")
    settings_hash = models.CharField(
        max_length=64, blank=True, help_text="Generation settings; empty for imported outputs."
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "model", "settings_hash"], name="candidate_unique_per_settings"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} on {self.prompt}"

    @property
    def text(self) -> str:
        return self.responses[-1] if self.responses else ""

    @property
    def length(self) -> int:
        return sum(len(response) for response in self.responses)


class ComparisonQuerySet(models.QuerySet["Comparison"]):
    def for_project(self, project: Project) -> ComparisonQuerySet:
        return self.filter(project=project)

    def rated(self) -> ComparisonQuerySet:
        """Comparisons whose labels count: gold pairs (attention checks) never do."""
        return self.filter(is_gold=False)

    def for_humans(self) -> ComparisonQuerySet:
        return self.filter(route__in=[Comparison.Route.HUMAN, Comparison.Route.BOTH])

    def for_judge(self) -> ComparisonQuerySet:
        """Comparisons the LLM judge labels: routed to it, to both, or waiting for the router
        (which reads the verdict)."""
        return self.filter(
            route__in=[Comparison.Route.JUDGE, Comparison.Route.BOTH, Comparison.Route.PENDING]
        )

    def unseen_by(self, annotator: Annotator) -> ComparisonQuerySet:
        seen = Assignment.objects.filter(comparison=OuterRef("pk"), annotator=annotator)
        return self.filter(~Exists(seen))


class Comparison(models.Model):
    """A prompt and two candidates from different models, to be labelled."""

    class Route(models.TextChoices):
        HUMAN = "human"
        JUDGE = "judge"
        BOTH = "both"
        # Waiting for the router (a project with a routing policy): not served to humans.
        PENDING = "pending"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="comparisons")
    candidate_a = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    candidate_b = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="+")
    votes_wanted = models.PositiveSmallIntegerField(default=3)
    route = models.CharField(max_length=8, choices=Route.choices, default=Route.HUMAN)
    is_gold = models.BooleanField(default=False)
    # Votes cast so far: a hint that lets pair serving scan comparisons in fill order through an
    # index; the slot count under the row lock stays authoritative.
    vote_count = models.PositiveIntegerField(default=0)
    gold_winner = models.CharField(
        max_length=8,
        blank=True,
        choices=[("model_a", "model_a"), ("model_b", "model_b")],
        help_text="For a gold pair: the candidate known to be better.",
    )
    # Random order key so annotators do not all walk the comparisons in creation order.
    shuffle_key = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ComparisonQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["candidate_a", "candidate_b"], name="comparison_pair_unique"
            ),
            models.CheckConstraint(
                condition=~Q(candidate_a=models.F("candidate_b")),
                name="comparison_distinct_candidates",
            ),
            models.CheckConstraint(
                condition=Q(is_gold=False, gold_winner="")
                | Q(is_gold=True, gold_winner__in=["model_a", "model_b"]),
                name="comparison_gold_has_answer",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "route", "shuffle_key"]),
            models.Index(
                fields=["project", "vote_count", "shuffle_key", "id"], name="comparison_fill_order"
            ),
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk}"


class AnnotatorQuerySet(models.QuerySet["Annotator"]):
    def voted_in(self, project: Project) -> AnnotatorQuerySet:
        """Annotators with at least one vote in the project."""
        votes = Vote.objects.filter(annotator=OuterRef("pk"), comparison__project=project)
        return self.filter(Exists(votes))


# The pseudonyms the arena gives its own voters (web and API); imports may not use them.
WEB_PSEUDONYM_PREFIX = "anon-"


class Annotator(models.Model):
    """Who votes: a Django user, or a pseudonymous anonymous browser session."""

    class State(models.TextChoices):
        ACTIVE = "active"
        FLAGGED = "flagged"
        BANNED = "banned"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="annotator",
    )
    pseudonym = models.CharField(max_length=32, unique=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    # Changed only through annotation.moderation, which writes an AnnotatorStateChange.
    state_reason = models.TextField(blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    # When a person last cleared this annotator: the detector does not flag them again
    # unless they vote after it.
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The salted hash of the network an anonymous annotator first came from (never the raw
    # address): serving caps the pairs anonymous sessions from one network may hold at once.
    created_ip_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)

    objects = AnnotatorQuerySet.as_manager()

    def __str__(self) -> str:
        return self.pseudonym

    @staticmethod
    def new_pseudonym() -> str:
        return f"{WEB_PSEUDONYM_PREFIX}{secrets.token_hex(6)}"


class AnnotatorStateChange(models.Model):
    """Audit trail of annotator states: who (a user, or the detector), when, why. Append-only."""

    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="state_changes")
    project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    from_state = models.CharField(max_length=8, choices=Annotator.State.choices)
    to_state = models.CharField(max_length=8, choices=Annotator.State.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the fraud detector made the change.",
    )
    reason = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.annotator}: {self.from_state} → {self.to_state}"

    @property
    def actor_label(self) -> str:
        return self.actor.get_username() if self.actor else "fraud detector"


class AnnotatorAssessment(models.Model):
    """The fraud detector's latest verdict on one annotator's votes in one project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assessments")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="assessments")
    votes = models.PositiveIntegerField()
    trust = models.FloatField()
    suspicious = models.BooleanField(help_text="A signal survived the multiple-testing correction.")
    reasons = models.JSONField(default=list, blank=True)
    signals = models.JSONField(default=dict, blank=True)
    assessed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["trust", "annotator_id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="assessment_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator} in {self.project.slug}: trust {self.trust:.2f}"


class ShownSides:
    """The candidates an annotator saw on each side, for a row with `comparison` and
    `left_is_a` (an assignment, and the vote cast on it)."""

    comparison: Comparison
    left_is_a: bool

    @property
    def left(self) -> Candidate:
        return self.comparison.candidate_a if self.left_is_a else self.comparison.candidate_b

    @property
    def right(self) -> Candidate:
        return self.comparison.candidate_b if self.left_is_a else self.comparison.candidate_a


class Assignment(ShownSides, models.Model):
    """A comparison served to an annotator: the only thing a vote can be cast on.

    The side shown left is drawn when serving and kept here, so the vote records what the
    annotator actually saw. Unvoted assignments past `expires_at` free their slot.
    """

    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(Annotator, on_delete=models.CASCADE, related_name="assignments")
    left_is_a = models.BooleanField()
    served_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "comparison"], name="assignment_once_per_annotator"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.comparison} → {self.annotator}"


class Vote(ShownSides, models.Model):
    """A human preference. Append-only: never updated or deleted by the application."""

    class Choice(models.TextChoices):
        LEFT = "left", "A (left) is better"
        RIGHT = "right", "B (right) is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both are bad"

    class Winner(models.TextChoices):
        MODEL_A = "model_a"
        MODEL_B = "model_b"
        TIE = "tie"
        BOTH_BAD = "tie (bothbad)"

    class Source(models.TextChoices):
        WEB = "web"
        API = "api"
        IMPORT = "import"

    comparison = models.ForeignKey(Comparison, on_delete=models.PROTECT, related_name="votes")
    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="votes")
    assignment = models.OneToOneField(
        Assignment, on_delete=models.PROTECT, null=True, blank=True, related_name="vote"
    )
    left_is_a = models.BooleanField(help_text="Candidate A was shown on the left.")
    side_recorded = models.BooleanField(
        default=True, help_text="False for imported votes that did not say which side was left."
    )
    time_recorded = models.BooleanField(
        default=True, help_text="False for imported votes without a timestamp (then: import time)."
    )
    choice = models.CharField(max_length=8, choices=Choice.choices)
    winner = models.CharField(max_length=16, choices=Winner.choices)
    time_to_vote_ms = models.PositiveIntegerField(null=True, blank=True)
    client_hash = models.CharField(max_length=64, blank=True, db_index=True)
    ip_hash = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.WEB)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["annotator", "created_at"], name="vote_annotator_time")]
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "comparison"], name="vote_once_per_annotator"
            ),
            models.CheckConstraint(
                condition=Q(side_recorded=True) | Q(left_is_a=True), name="vote_unknown_side_is_a"
            ),
            models.CheckConstraint(
                condition=Q(choice__in=["left", "right", "tie", "both_bad"]),
                name="vote_choice_known",
            ),
            # The canonical winner must follow from the choice and the side shown left.
            models.CheckConstraint(
                condition=(
                    Q(choice="left", left_is_a=True, winner="model_a")
                    | Q(choice="left", left_is_a=False, winner="model_b")
                    | Q(choice="right", left_is_a=True, winner="model_b")
                    | Q(choice="right", left_is_a=False, winner="model_a")
                    | Q(choice="tie", winner="tie")
                    | Q(choice="both_bad", winner="tie (bothbad)")
                ),
                name="vote_winner_follows_choice",
            ),
        ]

    def __str__(self) -> str:
        return f"vote {self.pk}: {self.winner}"

    @property
    def seconds_to_vote(self) -> float | None:
        return None if self.time_to_vote_ms is None else self.time_to_vote_ms / 1000

    @property
    def recorded_choice(self) -> str | None:
        """The button pressed, where known (see `choice_if_recorded`)."""
        return self.choice_if_recorded(self.choice, side_recorded=self.side_recorded)

    @property
    def recorded_time(self) -> datetime | None:
        """When the vote was cast; None for one imported without its time."""
        return self.created_at if self.time_recorded else None

    @classmethod
    def choice_if_recorded(cls, choice: str, *, side_recorded: bool) -> str | None:
        """A decisive vote imported without its side has no button (the stored left/right only
        satisfies the schema); its `winner` says who won."""
        if not side_recorded and choice in (cls.Choice.LEFT, cls.Choice.RIGHT):
            return None
        return choice

    @staticmethod
    def winner_for(choice: str, *, left_is_a: bool) -> str:
        if choice == Vote.Choice.LEFT:
            return Vote.Winner.MODEL_A if left_is_a else Vote.Winner.MODEL_B
        if choice == Vote.Choice.RIGHT:
            return Vote.Winner.MODEL_B if left_is_a else Vote.Winner.MODEL_A
        if choice == Vote.Choice.TIE:
            return Vote.Winner.TIE
        if choice == Vote.Choice.BOTH_BAD:
            return Vote.Winner.BOTH_BAD
        raise ValueError(f"unknown choice {choice!r}")


class EloRating(models.Model):
    """The live online-Elo table of a project, recomputed from votes off the request path."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="elo_ratings")
    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="+")
    rating = models.FloatField()
    votes = models.PositiveIntegerField(default=0)
    wins = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-rating"]
        constraints = [
            models.UniqueConstraint(fields=["project", "model"], name="elo_rating_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.rating:.0f}"


class LeaderboardSnapshot(models.Model):
    """A stored Bradley-Terry leaderboard: what the page serves, and the rating history."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="snapshots")
    source = models.CharField(max_length=8, default="human")
    include_flagged = models.BooleanField(default=False)
    category = models.CharField(max_length=100, blank=True)
    method = models.CharField(max_length=16, default="bootstrap")
    bootstrap_rounds = models.PositiveIntegerField(default=1000)
    vote_count = models.PositiveIntegerField(default=0)
    rows = models.JSONField(default=list, blank=True)
    models_order = models.JSONField(default=list, blank=True)
    win_rates = models.JSONField(default=list, blank=True, help_text="Observed win rates.")
    predicted_win_rates = models.JSONField(default=list, blank=True)
    battle_counts = models.JSONField(default=list, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"

    def __str__(self) -> str:
        return f"{self.project.slug} leaderboard at {self.created_at:%Y-%m-%d %H:%M:%S}"


class DataCredit(models.Model):
    """Where imported labels came from and under which licence, for every export's card.

    Recorded by an import given a credit (`import_votes --credit`, `import_judgments
    --credit`, the MT-Bench demo's verdicts); a card names the credits of the kinds of label
    it holds. Prompts carry their own `Prompt.source`.
    """

    class Kind(models.TextChoices):
        VOTES = "votes", "Votes"
        JUDGMENTS = "judgments", "Judge verdicts"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="credits")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "text"]
        constraints = [
            models.UniqueConstraint(fields=["project", "kind", "text"], name="credit_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.text}"

    @classmethod
    def record(cls, *, project: Project, kind: str, text: str) -> None:
        """Remember a credit; blank text records nothing, a repeat is kept once."""
        text = " ".join(text.split())[:500]
        if text:
            cls.objects.get_or_create(project=project, kind=kind, text=text)


class ExportJob(models.Model):
    """A dataset export run on a worker; its files live under MEDIA_ROOT/exports/<id>/."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class FileType(models.TextChoices):
        JSONL = "jsonl", "JSON Lines"
        PARQUET = "parquet", "Parquet"
        HF = "hf", "Hugging Face datasets folder (zip)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    options = models.JSONField(help_text="Format and filters (annotation.exports.options).")
    file_type = models.CharField(max_length=8, choices=FileType.choices)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="Comparisons to walk.")
    completed = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    download_path = models.CharField(max_length=500, blank=True)
    card_path = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.options.get('format')}, {self.file_type}): {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status not in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return int(100 * self.completed / self.total) if self.total else 0

    @property
    def format(self) -> str:
        return str(self.options.get("format", ""))

    @property
    def filters_summary(self) -> str:
        """The job's label source and filters in a line, to tell jobs apart."""
        o = self.options
        parts = [f"{o.get('source', 'human')} labels"]
        for key, label in (("categories", "categories"), ("models", "models")):
            if o.get(key):
                parts.append(f"{label} {', '.join(o[key])}")
        if o.get("since") or o.get("until"):
            parts.append(f"{o.get('since') or '…'} to {o.get('until') or '…'}")
        if o.get("min_agreement"):
            parts.append(f"agreement ≥ {o['min_agreement']}")
        if o.get("include_flagged"):
            parts.append("flagged included")
        if o.get("single_turn"):
            parts.append("single-turn only")
        return "; ".join(parts)
