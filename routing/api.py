"""The router over the REST API (admins of the arena, like the router page): the overview and
every routing decision with its reason, score and features. Read-only: the policy is set on
the page or with `manage.py route`."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.permissions import ADMIN, project_for
from routing import selectors
from routing.models import POLICY_SETTINGS, DisagreementFit, RouteDecision, RoutingPolicy


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = RoutingPolicy
        fields = [*POLICY_SETTINGS, "updated_at"]


class Interval(serializers.ListField):
    """A 95% interval as [low, high], or null without observations."""

    child = serializers.FloatField()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(allow_null=True, min_length=2, max_length=2, **kwargs)


class AgreementSerializer(serializers.Serializer):
    pairs = serializers.IntegerField()
    agree = serializers.IntegerField()
    # Weighted by 1 / each audited pair's chance of an audit; the interval over the effective
    # number of pairs.
    rate = serializers.FloatField(allow_null=True)
    effective_pairs = serializers.FloatField(allow_null=True)
    interval = Interval()


class CategoryAgreementSerializer(AgreementSerializer):
    category = serializers.CharField()


class AuditSerializer(AgreementSerializer):
    by_category = CategoryAgreementSerializer(many=True)


class WeightSerializer(serializers.Serializer):
    name = serializers.CharField()
    weight = serializers.FloatField(source="contribution")
    meaning = serializers.CharField()


class FitSerializer(serializers.ModelSerializer):
    class Meta:
        model = DisagreementFit
        fields = ["id", "kind", "labelled", "judge_wrong", "cv_auroc", "created_at"]


class OverviewSerializer(serializers.Serializer):
    policy = PolicySerializer()
    routes = serializers.DictField(child=serializers.IntegerField())
    pending_unjudged = serializers.IntegerField()
    judges_seen = serializers.ListField(child=serializers.CharField())
    human_share = serializers.FloatField(allow_null=True)
    routed_pairs = serializers.IntegerField()
    human_pairs = serializers.IntegerField()
    budget_comparisons = serializers.IntegerField(allow_null=True)
    human_votes_today = serializers.IntegerField()
    human_votes_promised = serializers.IntegerField()
    human_votes_left_today = serializers.IntegerField(allow_null=True)
    audit = AuditSerializer()
    final_sources = serializers.DictField(child=serializers.IntegerField())
    final_accuracy = serializers.FloatField(allow_null=True)
    final_accuracy_interval = Interval()
    model_accuracy_judge_only = serializers.FloatField(allow_null=True)
    model_judge_only_pairs = serializers.IntegerField()
    fit = FitSerializer(allow_null=True)
    weighs_most = WeightSerializer(many=True)


class RouteDecisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = RouteDecision
        fields = [
            "comparison",
            "route",
            "reason",
            "p_disagree",
            "audit_chance",
            "surely_human",
            "priority",
            "judge",
            "judge_verdict",
            "fit",
            "decided_at",
            "features",
            "history",
        ]


class RouterOverview(APIView):
    """Who labels what, the budget used and how far the judge is trusted (the router page)."""

    @extend_schema(responses=OverviewSerializer)
    def get(self, request: Request, slug: str) -> Response:
        project = project_for(request, slug, ADMIN)
        policy = selectors.policy_for(project)
        if policy is None:
            raise NotFound("This arena has no routing policy: set one on the router page.")
        return Response(OverviewSerializer(selectors.router_overview(project, policy)).data)


def _one_of(request: Request, name: str, allowed: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value and value not in allowed:
        # A list per field, as a serializer's errors are.
        raise ValidationError({name: [f"must be one of {', '.join(allowed)}"]})
    return value or None


@extend_schema(
    parameters=[
        OpenApiParameter("route", str, enum=["human", "judge", "both"]),
        OpenApiParameter("reason", str, enum=RouteDecision.Reason.values),
    ]
)
class RouteDecisionList(generics.ListAPIView):
    """Every routing decision of the arena, the most valuable for a human first."""

    serializer_class = RouteDecisionSerializer

    def get_queryset(self) -> QuerySet[RouteDecision]:
        project = project_for(self.request, self.kwargs["slug"], ADMIN)
        decisions = RouteDecision.objects.filter(comparison__project=project)
        route = _one_of(self.request, "route", ["human", "judge", "both"])
        reason = _one_of(self.request, "reason", list(RouteDecision.Reason.values))
        if route:
            decisions = decisions.filter(route=route)
        if reason:
            decisions = decisions.filter(reason=reason)
        return decisions.order_by("-priority", "id")
