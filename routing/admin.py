"""Routing records in the admin, read-only: policies are changed on the router page (which
also moves the comparisons in and out of `pending`), decisions and fits are history."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from routing.models import DisagreementFit, RouteDecision, RoutingPolicy


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(ReadOnlyAdmin):
    list_display = [
        "project",
        "enabled",
        "judge",
        "budget_kind",
        "budget_share",
        "audit_fraction",
        "audit_tilt",
    ]


@admin.register(DisagreementFit)
class DisagreementFitAdmin(ReadOnlyAdmin):
    list_display = ["project", "judge", "kind", "labelled", "judge_wrong", "cv_auroc", "created_at"]
    list_filter = ["kind"]


@admin.register(RouteDecision)
class RouteDecisionAdmin(ReadOnlyAdmin):
    list_display = ["comparison", "route", "reason", "p_disagree", "judge_verdict", "decided_at"]
    list_filter = ["route", "reason"]
    raw_id_fields = ["comparison", "fit"]
