from __future__ import annotations

from django import forms

from routing.models import POLICY_SETTINGS, RoutingPolicy


class RoutingPolicyForm(forms.ModelForm):
    class Meta:
        model = RoutingPolicy
        fields = list(POLICY_SETTINGS)
        widgets = {
            "budget_share": forms.NumberInput(attrs={"step": "0.01", "min": 0, "max": 1}),
            "audit_fraction": forms.NumberInput(attrs={"step": "0.01", "min": 0, "max": 1}),
            "audit_tilt": forms.NumberInput(attrs={"step": "0.1", "min": 0, "max": 1}),
        }
