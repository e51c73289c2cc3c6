from __future__ import annotations

from django.contrib import admin

from models_backend.models import GenerationJob, JudgeJob, Judgment


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["pk", "comparison", "judge", "verdict", "p_a", "p_b", "p_tie", "consistent"]
    list_filter = ["judge", "verdict", "consistent"]
    raw_id_fields = ["comparison"]


class JobAdmin(admin.ModelAdmin):
    list_filter = ["status", "project"]
    readonly_fields = [
        "status",
        "completed",
        "total",
        "error",
        "attempts",
        "workers_lost",
        "started_at",
        "heartbeat_at",
        "requeued_at",
        "finished_at",
    ]


@admin.register(GenerationJob)
class GenerationJobAdmin(JobAdmin):
    list_display = ["pk", "model", "status", "completed", "total", "error", "created_at"]
    readonly_fields = [*JobAdmin.readonly_fields, "failures"]


@admin.register(JudgeJob)
class JudgeJobAdmin(JobAdmin):
    list_display = ["pk", "judge", "status", "completed", "total", "error", "created_at"]
