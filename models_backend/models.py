"""Model-backend records: generation and judging jobs, and LLM-judge verdicts (kept apart
from human votes)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotation.models import Comparison, ModelEntry, Project


class Judgment(models.Model):
    """An LLM judge's verdict on a comparison, from label probabilities in both orders.

    Probabilities are in the comparison's canonical orientation (a = candidate_a) and
    averaged over the two presentation orders; `consistent` says both orders agreed.
    """

    class Verdict(models.TextChoices):
        MODEL_A = "model_a"
        MODEL_B = "model_b"
        TIE = "tie"

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judgments")
    judge = models.CharField(max_length=200, help_text="Judge model name.")
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    p_a = models.FloatField()
    p_b = models.FloatField()
    p_tie = models.FloatField()
    per_order = models.JSONField(default=dict, help_text="Probabilities in each order.")
    consistent = models.BooleanField()
    rationale = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    time_recorded = models.BooleanField(
        default=True, help_text="False for verdicts imported without a time (then: import time)."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "judge"], name="judgment_once_per_judge"),
            models.CheckConstraint(
                condition=Q(p_a__gte=0, p_b__gte=0, p_tie__gte=0), name="judgment_probs_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.judge} on {self.comparison}: {self.verdict}"

    @property
    def recorded_time(self) -> datetime | None:
        """When the judge gave the verdict; None for one imported without its time."""
        return self.created_at if self.time_recorded else None


class Job(models.Model):
    """Shared fields of a batch job run by a `gpu` worker, with live progress."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    batch_size = models.PositiveSmallIntegerField(default=16)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Stamped by the worker running the job every JOB_HEARTBEAT_SECONDS: a running job whose
    # stamp is older than JOB_STALE_SECONDS has lost its worker (killed, out of memory, host gone).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When beat last queued the job again after it lost its worker; and how often it has.
    requeued_at = models.DateTimeField(null=True, blank=True)
    workers_lost = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:  # a job with nothing to do is done, not at 0%
            return 100
        return int(100 * self.completed / self.total) if self.total else 0

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.CANCELLED)

    @property
    def last_seen(self) -> datetime:
        """The last sign of life of the worker running the job."""
        return self.heartbeat_at or self.started_at or self.created_at

    @property
    def worker_silent(self) -> bool:
        """Running, but its worker has not been heard from for JOB_STALE_SECONDS."""
        if self.status != self.Status.RUNNING:
            return False
        cutoff = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS)
        return self.last_seen < cutoff


class GenerationJob(Job):
    """Generate a competitor's candidates for prompts, in batches."""

    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="generation_jobs")
    prompt_ids = models.JSONField(
        default=list, blank=True, help_text="Prompts to answer, in order."
    )
    settings_hash = models.CharField(max_length=64)
    failures = models.JSONField(
        default=dict,
        blank=True,
        help_text="Prompts (external id) that got no answer, and why; a later job tries again.",
    )

    class Meta(Job.Meta):
        constraints = [
            models.CheckConstraint(
                condition=Q(completed__lte=models.F("total")), name="generation_job_progress"
            ),
        ]

    kind = "generation"  # in the jobs page's URLs

    def __str__(self) -> str:
        return f"generate {self.model} ({self.status}, {self.completed}/{self.total})"


class JudgeJob(Job):
    """Judge comparisons with an LLM judge, in batches, in both orders."""

    judge = models.CharField(max_length=200)
    judge_spec = models.JSONField(
        default=dict, blank=True, help_text="Where the judge model comes from."
    )
    comparison_ids = models.JSONField(default=list, blank=True)

    class Meta(Job.Meta):
        constraints = [
            models.CheckConstraint(
                condition=Q(completed__lte=models.F("total")), name="judge_job_progress"
            ),
        ]

    kind = "judge"

    def __str__(self) -> str:
        return f"judge with {self.judge} ({self.status}, {self.completed}/{self.total})"


# The kinds of job by the name their URLs use.
JOB_KINDS: dict[str, type[Job]] = {cls.kind: cls for cls in (GenerationJob, JudgeJob)}
