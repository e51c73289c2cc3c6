from __future__ import annotations

from django import forms

from routing.models import POLICY_SETTINGS, RoutingPolicy


class RoutingPolicyForm(forms.ModelForm):
    class Meta:
        model = RoutingPolicy
        fields = list(POLICY_SETTINGS)
        # The names the router page shows, so an error says which box it is about.
        labels = {
            "enabled": "Routing on",
            "budget_kind": "Budget",
            "budget_share": "Human share",
            "daily_human_votes": "Human votes a day",
            "audit_fraction": "Audit share",
            "audit_tilt": "Audit leaning on risk",
            "retrain_every": "Refit every (labelled pairs)",
            "min_batch": "Route batches of (judged pairs)",
            "max_wait_minutes": "or after (minutes)",
        }
        widgets = {
            "budget_share": forms.NumberInput(attrs={"step": "0.01", "min": 0, "max": 1}),
            "audit_fraction": forms.NumberInput(attrs={"step": "0.01", "min": 0, "max": 1}),
            "audit_tilt": forms.NumberInput(attrs={"step": "0.1", "min": 0, "max": 1}),
            "retrain_every": forms.NumberInput(attrs={"min": 1}),
            "min_batch": forms.NumberInput(attrs={"min": 1}),
        }
