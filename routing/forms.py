from __future__ import annotations

from django import forms

from routing.models import RoutingPolicy


class RoutingPolicyForm(forms.ModelForm):
    class Meta:
        model = RoutingPolicy
        fields = [
            "enabled",
            "judge",
            "budget_kind",
            "budget_share",
            "daily_human_votes",
            "audit_fraction",
            "retrain_every",
            "min_batch",
            "max_wait_minutes",
        ]
        widgets = {
            "budget_share": forms.NumberInput(attrs={"step": "0.01", "min": 0, "max": 1}),
            "audit_fraction": forms.NumberInput(attrs={"step": "0.01", "min": 0, "max": 1}),
        }
