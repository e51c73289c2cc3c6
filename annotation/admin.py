from __future__ import annotations

from django import forms
from django.contrib import admin

from annotation.models import (
    Annotator,
    AnnotatorAssessment,
    AnnotatorStateChange,
    Assignment,
    Candidate,
    Comparison,
    DataCredit,
    EloRating,
    Membership,
    ModelEntry,
    Project,
    Prompt,
    Vote,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "votes_per_comparison", "login_required", "is_active"]
    search_fields = ["slug", "title"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [MembershipInline]


@admin.register(DataCredit)
class DataCreditAdmin(admin.ModelAdmin):
    """The imported labels' sources and licences, named in every export's card."""

    list_display = ["project", "kind", "text", "created_at"]
    list_filter = ["project", "kind"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role", "project"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "category", "created_at"]
    list_filter = ["project", "category"]
    search_fields = ["external_id"]


class ModelEntryForm(forms.ModelForm):
    class Meta:
        model = ModelEntry
        fields = ["project", "name", "description", "backend", "backend_config", "created_at"]

    def clean_backend_config(self) -> dict:
        value = self.cleaned_data.get("backend_config")
        if not isinstance(value, dict):  # null is valid JSON, and no config (a database 500)
            raise forms.ValidationError("The backend config must be a JSON object ({} for none).")
        return value

    def clean(self) -> dict:
        from models_backend.backends import check_config  # noqa: PLC0415 - other app
        from models_backend.errors import BackendError  # noqa: PLC0415

        cleaned = super().clean()
        candidate = ModelEntry(
            name=cleaned.get("name") or "model",
            backend=cleaned.get("backend") or ModelEntry.Backend.IMPORTED,
            backend_config=cleaned.get("backend_config"),
        )
        try:
            check_config(candidate)
        except BackendError as exc:
            self.add_error("backend_config", str(exc))
        return cleaned


@admin.register(ModelEntry)
class ModelEntryAdmin(admin.ModelAdmin):
    form = ModelEntryForm
    list_display = ["name", "project", "backend"]
    list_filter = ["project", "backend"]
    search_fields = ["name"]
    actions = ["generate_answers"]

    @admin.action(description="Generate answers to all prompts (gpu queue)")
    def generate_answers(self, request, queryset) -> None:
        from models_backend.errors import BackendError  # noqa: PLC0415 - other app's service
        from models_backend.services import generation_job_create  # noqa: PLC0415

        for model in queryset:
            try:
                job = generation_job_create(model=model)
            except BackendError as exc:
                self.message_user(request, str(exc), level="error")
            else:
                job.refresh_from_db()  # in-process (eager) it has already run
                if job.is_finished:
                    outcome = job.status + (f": {job.error}" if job.error else "")
                    self.message_user(
                        request,
                        f"Generation job {job.pk} for {model} ran here: {outcome}.",
                        level="error" if job.error else "info",
                    )
                else:
                    self.message_user(request, f"Queued generation job {job.pk} for {model}.")


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ["__str__", "model", "settings_hash", "created_at"]
    list_filter = ["model__project", "model"]
    raw_id_fields = ["prompt", "model"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["pk", "project", "prompt", "route", "votes_wanted", "is_gold"]
    list_filter = ["project", "route", "is_gold"]
    raw_id_fields = ["prompt", "candidate_a", "candidate_b"]


@admin.register(Annotator)
class AnnotatorAdmin(admin.ModelAdmin):
    """States change through the review pages, which record who, when and why."""

    list_display = ["pseudonym", "user", "state", "state_changed_at", "created_at"]
    list_filter = ["state"]
    search_fields = ["pseudonym", "user__username"]
    readonly_fields = ["state", "state_reason", "state_changed_at", "reviewed_at"]


@admin.register(AnnotatorStateChange)
class AnnotatorStateChangeAdmin(admin.ModelAdmin):
    """The audit trail: read-only."""

    list_display = ["created_at", "annotator", "from_state", "to_state", "actor", "project"]
    list_filter = ["to_state", "project"]
    search_fields = ["annotator__pseudonym", "reason"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AnnotatorAssessment)
class AnnotatorAssessmentAdmin(admin.ModelAdmin):
    list_display = ["annotator", "project", "votes", "trust", "suspicious", "assessed_at"]
    list_filter = ["project", "suspicious"]
    search_fields = ["annotator__pseudonym"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["token", "comparison", "annotator", "served_at", "expires_at"]
    raw_id_fields = ["comparison", "annotator"]


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    """Votes are append-only: the admin shows them but cannot change or delete them."""

    list_display = [
        "pk",
        "comparison",
        "annotator",
        "choice",
        "winner",
        "time_to_vote_ms",
        "source",
        "created_at",
    ]
    list_filter = ["source", "winner", "comparison__project"]
    raw_id_fields = ["comparison", "annotator", "assignment"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EloRating)
class EloRatingAdmin(admin.ModelAdmin):
    list_display = ["project", "model", "rating", "votes", "updated_at"]
    list_filter = ["project"]
