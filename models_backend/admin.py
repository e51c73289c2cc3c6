from __future__ import annotations

from django.contrib import admin

from models_backend.models import Judgment


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["pk", "comparison", "judge", "verdict", "p_a", "p_b", "p_tie", "consistent"]
    list_filter = ["judge", "verdict", "consistent"]
    raw_id_fields = ["comparison"]
