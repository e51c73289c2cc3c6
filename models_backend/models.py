"""Model-backend records: LLM-judge verdicts (kept apart from human votes)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotation.models import Comparison


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
