from __future__ import annotations

from django import forms

from annotation.selectors import SOURCES, LeaderboardFilters


class LeaderboardFilterForm(forms.Form):
    source = forms.ChoiceField(
        choices=[("human", "Human votes"), ("judge", "LLM judge"), ("all", "Both")],
        required=False,
    )
    category = forms.CharField(required=False, max_length=100)
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)
    include_flagged = forms.BooleanField(required=False, label="Include flagged annotators")

    def filters(self) -> LeaderboardFilters:
        data = self.cleaned_data
        source = data.get("source") or "human"
        return LeaderboardFilters(
            source=source if source in SOURCES else "human",
            include_flagged=bool(data.get("include_flagged")),
            since=data.get("since"),
            until=data.get("until"),
            category=data.get("category") or "",
        )
