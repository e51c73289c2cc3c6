from __future__ import annotations

from django import forms

from annotation.flags import parse_flag
from annotation.models import ExportJob
from annotation.selectors import SOURCES, LeaderboardFilters


class LeaderboardFilterForm(forms.Form):
    source = forms.ChoiceField(
        choices=[
            ("human", "Human votes"),
            ("judge", "LLM judge"),
            ("all", "Both"),
            ("final", "Final labels (humans where they voted, else the judge)"),
        ],
        required=False,
    )
    category = forms.CharField(required=False, max_length=100)
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)
    include_flagged = forms.BooleanField(required=False, label="Include flagged annotators")

    def clean_include_flagged(self) -> bool:
        """Read as the API and exports read it: a checkbox's "on", 1/0, yes/no, true/false;
        anything else ("maybe") is an error, not a silent True."""
        try:
            return parse_flag(self.data.get("include_flagged"), "include_flagged")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self) -> dict:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "“To” must be after “From”.")
        return data

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


class ExportForm(forms.Form):
    """The export page's form; the choices of models and categories come from the project."""

    format = forms.ChoiceField(
        choices=[
            ("dpo", "TRL DPO (prompt, chosen, rejected)"),
            ("openai", "OpenAI preference fine-tuning"),
            ("hh", "Anthropic HH (chosen / rejected transcripts)"),
            ("pairs", "Aggregated pairs"),
            ("votes", "Raw votes"),
        ]
    )
    file_type = forms.ChoiceField(choices=ExportJob.FileType.choices)
    source = forms.ChoiceField(
        choices=[("human", "Human votes"), ("judge", "LLM judge"), ("final", "Final label")]
    )
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)
    categories = forms.MultipleChoiceField(required=False)
    models = forms.MultipleChoiceField(
        required=False,
        help_text="Only comparisons between two of the models picked: pick two or more",
    )
    min_agreement = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.0, required=False)
    include_flagged = forms.BooleanField(required=False, label="Include flagged annotators")
    single_turn = forms.BooleanField(required=False, label="Single-turn prompts only")

    def __init__(self, *args, categories: list[str], models: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["categories"].choices = [(c, c) for c in categories]
        self.fields["models"].choices = [(m, m) for m in models]
