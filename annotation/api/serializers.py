"""What the API reads and writes. Annotator-facing shapes never carry model identities."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.exports.options import FILE_TYPES, FORMATS, SOURCES, split_names
from annotation.models import (
    Candidate,
    Comparison,
    ExportJob,
    ModelEntry,
    Project,
    Prompt,
    Vote,
)
from annotation.moments import parse_moment
from models_backend.models import Judgment
from prefarena import jsontext

MAX_TEXT = 100_000


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(
        help_text="Your role here: annotator, researcher or admin."
    )

    class Meta:
        model = Project
        fields = [
            "slug",
            "title",
            "guidelines",
            "allow_tie",
            "allow_both_bad",
            "reveal_models",
            "votes_per_comparison",
            "login_required",
            "is_active",
            "gold_rate",
            "max_votes_per_minute",
            "max_votes_per_day",
            "created_at",
            "role",
        ]
        read_only_fields = fields

    def get_role(self, project: Project) -> str:
        return self.context["roles"].get(project.pk, "annotator")


def no_nul_characters(value: Any) -> Any:
    """Refuse a JSON value with a NUL character or half of a UTF-16 pair in any string or key:
    no text or jsonb column can hold one (it would be a server error, not the client's 400)."""
    if not jsontext.is_storable(value):
        raise serializers.ValidationError(
            "text must not contain NUL (\\u0000) characters or unpaired surrogates (\\ud83d)"
        )
    return value


def json_object(value: Any) -> Any:
    """A config or metadata is a JSON object: a string or a list is refused here, as the
    admin and the importers refuse it, not stored to fail later."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("must be a JSON object")
    return value


class ModelEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelEntry
        fields = ["id", "name", "description", "backend", "backend_config", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"backend_config": {"validators": [json_object, no_nul_characters]}}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        from models_backend.backends import check_config  # noqa: PLC0415 - other app
        from models_backend.errors import BackendError  # noqa: PLC0415

        current = self.instance
        candidate = ModelEntry(
            name=attrs.get("name", getattr(current, "name", "model")),
            backend=attrs.get("backend", getattr(current, "backend", ModelEntry.Backend.IMPORTED)),
            backend_config=attrs.get("backend_config", getattr(current, "backend_config", {})),
        )
        try:
            check_config(candidate)
        except BackendError as exc:
            raise serializers.ValidationError({"backend_config": str(exc)}) from exc
        return attrs


def _texts(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise serializers.ValidationError(f"{name} must be a non-empty list of strings")
    if not all(isinstance(text, str) and text.strip() for text in value):
        raise serializers.ValidationError(f"every item of {name} must be a non-blank string")
    if sum(len(text) for text in value) > MAX_TEXT:
        raise serializers.ValidationError(f"{name} is longer than {MAX_TEXT} characters")
    return value


class PromptSerializer(serializers.ModelSerializer):
    turns = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TEXT, trim_whitespace=False),
        min_length=1,
        help_text="The user messages, in order.",
    )

    class Meta:
        model = Prompt
        fields = [
            "id",
            "external_id",
            "category",
            "turns",
            "reference_answer",
            "source",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def validate_turns(self, value: list[str]) -> list[str]:
        return _texts(value, "turns")


class ModelName(serializers.SlugRelatedField):
    """A competitor by its name. A name with a NUL character is refused like any unknown one:
    PostgreSQL could not even look it up."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data.replace("\x00", ""))
        return super().to_internal_value(data)


class CandidateSerializer(serializers.ModelSerializer):
    prompt = serializers.PrimaryKeyRelatedField(queryset=Prompt.objects.none())
    model = ModelName(slug_field="name", queryset=ModelEntry.objects.none())
    responses = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TEXT, trim_whitespace=False), min_length=1
    )

    class Meta:
        model = Candidate
        fields = ["id", "prompt", "model", "responses", "settings_hash", "metadata", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"metadata": {"validators": [json_object, no_nul_characters]}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        project = self.context.get("project")
        if project is not None:
            self.fields["prompt"].queryset = Prompt.objects.filter(project=project)
            self.fields["model"].queryset = ModelEntry.objects.filter(project=project)

    def validate_responses(self, value: list[str]) -> list[str]:
        return _texts(value, "responses")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if len(attrs["responses"]) != len(attrs["prompt"].turns):
            raise serializers.ValidationError(
                {"responses": "give one response per user turn of the prompt"}
            )
        return attrs


class ComparisonSerializer(serializers.ModelSerializer):
    model_a = serializers.CharField(source="candidate_a.model.name", read_only=True)
    model_b = serializers.CharField(source="candidate_b.model.name", read_only=True)
    category = serializers.CharField(source="prompt.category", read_only=True)
    votes = serializers.IntegerField(source="vote_count", read_only=True)

    class Meta:
        model = Comparison
        fields = [
            "id",
            "prompt",
            "category",
            "candidate_a",
            "candidate_b",
            "model_a",
            "model_b",
            "route",
            "votes_wanted",
            "votes",
            "created_at",
        ]
        read_only_fields = fields


class ServedSideSerializer(serializers.Serializer):
    responses = serializers.ListField(child=serializers.CharField())


class ServedPairSerializer(serializers.Serializer):
    """A pair as an annotator sees it: no model names, no candidate ids."""

    assignment = serializers.UUIDField(source="token", help_text="Send it back with the vote.")
    prompt = serializers.ListField(child=serializers.CharField(), source="comparison.prompt.turns")
    left = serializers.SerializerMethodField()
    right = serializers.SerializerMethodField()
    choices = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField()

    @extend_schema_field(ServedSideSerializer)
    def get_left(self, assignment: Any) -> dict[str, list[str]]:
        return {"responses": assignment.left.responses}

    @extend_schema_field(ServedSideSerializer)
    def get_right(self, assignment: Any) -> dict[str, list[str]]:
        return {"responses": assignment.right.responses}

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_choices(self, assignment: Any) -> list[str]:
        return assignment.comparison.project.allowed_choices


class VoteCreateSerializer(serializers.Serializer):
    assignment = serializers.UUIDField()
    choice = serializers.ChoiceField(choices=Vote.Choice.values)


class RevealSerializer(serializers.Serializer):
    left = serializers.CharField()
    right = serializers.CharField()


class VoteSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.pseudonym", read_only=True)
    excluded = serializers.SerializerMethodField()
    reveal = serializers.SerializerMethodField()
    shown_left = serializers.SerializerMethodField()
    # Null for a decisive vote imported without its side: which button was pressed is unknown.
    choice = serializers.ChoiceField(
        choices=Vote.Choice.choices, source="recorded_choice", allow_null=True, read_only=True
    )
    # Null for a vote imported without its time (the row keeps the import's time to sort by).
    created_at = serializers.DateTimeField(source="recorded_time", allow_null=True, read_only=True)

    class Meta:
        model = Vote
        fields = [
            "id",
            "comparison",
            "annotator",
            "shown_left",
            "choice",
            "winner",
            "time_to_vote_ms",
            "source",
            "created_at",
            "excluded",
            "reveal",
        ]
        read_only_fields = fields

    def get_excluded(self, vote: Vote) -> bool:
        return vote.annotator.state != "active"

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_shown_left(self, vote: Vote) -> str | None:
        if not vote.side_recorded:
            return None
        return "model_a" if vote.left_is_a else "model_b"

    @extend_schema_field(RevealSerializer(allow_null=True))
    def get_reveal(self, vote: Vote) -> dict[str, str] | None:
        """The model names, after the vote, where the project reveals them."""
        comparison = vote.comparison
        if not comparison.project.reveal_models or not vote.side_recorded:
            return None  # not revealed, or no left and right known (an imported vote)
        a, b = comparison.candidate_a.model.name, comparison.candidate_b.model.name
        return {"left": a, "right": b} if vote.left_is_a else {"left": b, "right": a}


class JudgmentSerializer(serializers.ModelSerializer):
    created_at = serializers.DateTimeField(source="recorded_time", allow_null=True, read_only=True)
    # Null where the judge reported none (an imported verdict, stored as zeros), as in exports.
    p_a = serializers.FloatField(allow_null=True, read_only=True)
    p_b = serializers.FloatField(allow_null=True, read_only=True)
    p_tie = serializers.FloatField(allow_null=True, read_only=True)

    def to_representation(self, instance: Judgment) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.p_a == instance.p_b == instance.p_tie == 0.0:
            data["p_a"] = data["p_b"] = data["p_tie"] = None
        return data

    class Meta:
        model = Judgment
        fields = [
            "id",
            "comparison",
            "judge",
            "verdict",
            "p_a",
            "p_b",
            "p_tie",
            "consistent",
            "rationale",
            "latency_ms",
            "created_at",
        ]
        read_only_fields = fields


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    model = serializers.CharField()
    rating = serializers.FloatField()
    lower = serializers.FloatField(allow_null=True)
    upper = serializers.FloatField(allow_null=True)
    votes = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True)
    group = serializers.IntegerField(
        default=1,
        help_text="The model's group of the comparison graph: models of different groups were "
        "never compared, even through others, so their ratings are not comparable and ranks "
        "count within a group.",
    )
    provisional = serializers.BooleanField(
        default=False,
        help_text="Fewer than 10 votes: listed after the other models of its group and "
        "ranked after them, whatever its rating.",
    )


class LeaderboardSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField()
    vote_count = serializers.IntegerField()
    source = serializers.CharField()
    rows = LeaderboardRowSerializer(many=True)


class NamesField(serializers.ListField):
    """A list of names, or one comma-separated string, as the streaming export's query has it."""

    def to_internal_value(self, data: Any) -> list[str]:
        if isinstance(data, str | list):  # each item may itself be "a,b" (a form field)
            data = list(split_names(data))
        return super().to_internal_value(data)


class MomentField(serializers.DateTimeField):
    """An ISO date or date-time, read as the CLI, the stream endpoint and the page read it (a
    plain date is that day's midnight, UTC)."""

    def to_internal_value(self, value: Any) -> Any:
        try:
            return parse_moment(value, self.field_name)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class ExportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS, default="dpo")
    file_type = serializers.ChoiceField(choices=FILE_TYPES, default="jsonl")
    source = serializers.ChoiceField(choices=SOURCES, default="human")
    since = MomentField(required=False, allow_null=True)
    until = MomentField(required=False, allow_null=True)
    categories = NamesField(child=serializers.CharField(max_length=100), required=False)
    models = NamesField(child=serializers.CharField(max_length=200), required=False)
    min_agreement = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)
    include_flagged = serializers.BooleanField(default=False)
    single_turn = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A field this request does not know is an error: a misspelt one ("output" for
        "file_type", "categorys") would otherwise export what was not asked for."""
        given = set(self.initial_data) if hasattr(self.initial_data, "keys") else set()
        unknown = sorted(given - set(self.fields) - {"csrfmiddlewaretoken"})
        if unknown:
            known = ", ".join(self.fields)
            raise serializers.ValidationError(
                {name: [f"unknown field; the fields are {known}"] for name in unknown}
            )
        return attrs


class ExportJobSerializer(serializers.ModelSerializer):
    format = serializers.CharField(read_only=True)
    percent = serializers.IntegerField(read_only=True)
    download_url = serializers.SerializerMethodField()
    card_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "format",
            "file_type",
            "options",
            "status",
            "total",
            "completed",
            "percent",
            "rows",
            "error",
            "download_url",
            "card_url",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def _url(self, job: ExportJob, name: str) -> str | None:
        if job.status != ExportJob.Status.DONE:
            return None
        from django.urls import reverse  # noqa: PLC0415

        request = self.context.get("request")
        path = reverse(f"api:{name}", args=[job.project.slug, job.pk])
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, job: ExportJob) -> str | None:
        return self._url(job, "export-download")

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_card_url(self, job: ExportJob) -> str | None:
        return self._url(job, "export-card")


PROJECT_URL_HELP = "URL template: put a project's slug in place of {slug}."
# The project endpoints the API root lists, by URL name (a field each, `-` as `_`).
PROJECT_ENDPOINTS = (
    "project",
    "models",
    "prompts",
    "candidates",
    "comparisons",
    "next-pair",
    "votes",
    "judgments",
    "leaderboard",
    "export-stream",
    "exports",
    "jobs",
    "router",
    "router-decisions",
)

ApiRootSerializer = type(
    "ApiRootSerializer",
    (serializers.Serializer,),
    {
        "projects": serializers.URLField(),
        **{
            name.replace("-", "_"): serializers.CharField(help_text=PROJECT_URL_HELP)
            for name in PROJECT_ENDPOINTS
        },
        "schema": serializers.URLField(
            help_text="This API's OpenAPI schema (?format=json or yaml)."
        ),
        "docs": serializers.URLField(help_text="The schema as browsable docs (Swagger UI)."),
    },
)
