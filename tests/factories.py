"""One factory per model (factory_boy)."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotation.models import (
    Annotator,
    Assignment,
    Candidate,
    Comparison,
    Membership,
    ModelEntry,
    Project,
    Prompt,
)
from models_backend.models import Judgment
from routing.models import RouteDecision


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pass-word-123")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"arena-{n}")
    title = factory.Sequence(lambda n: f"Arena {n}")
    guidelines = "Pick the better answer."
    votes_per_comparison = 3


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.ANNOTATOR


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"p{n}")
    category = "writing"
    turns = factory.LazyAttribute(lambda o: [f"Question {o.external_id}?"])


class ModelEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelEntry

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"model-{n}")


class CandidateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Candidate

    prompt = factory.SubFactory(PromptFactory)
    model = factory.SubFactory(ModelEntryFactory, project=factory.SelfAttribute("..prompt.project"))
    responses = factory.Sequence(lambda n: [f"Answer number {n}."])


class ComparisonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comparison

    project = factory.SubFactory(ProjectFactory)
    prompt = factory.SubFactory(PromptFactory, project=factory.SelfAttribute("..project"))
    candidate_a = factory.SubFactory(CandidateFactory, prompt=factory.SelfAttribute("..prompt"))
    candidate_b = factory.SubFactory(CandidateFactory, prompt=factory.SelfAttribute("..prompt"))
    votes_wanted = factory.SelfAttribute("project.votes_per_comparison")


class AnnotatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Annotator

    pseudonym = factory.Sequence(lambda n: f"anon-{n:06d}")


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    comparison = factory.SubFactory(ComparisonFactory)
    annotator = factory.SubFactory(AnnotatorFactory)
    left_is_a = True
    served_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.served_at + timedelta(minutes=15))


class RouteDecisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RouteDecision

    comparison = factory.SubFactory(ComparisonFactory, route=factory.SelfAttribute("..route"))
    route = "judge"
    reason = factory.LazyAttribute(
        lambda o: {"judge": "budget", "both": "audit"}.get(o.route, "priority")
    )
    p_disagree = 0.2
    priority = factory.SelfAttribute("p_disagree")
    judge = "test-judge"  # tests.routing.helpers.JUDGE, the policy judge of the routing tests
    judge_verdict = "model_a"
    features = factory.LazyFunction(lambda: {"margin": 0.8})


class JudgmentFactory(factory.django.DjangoModelFactory):
    """A consistent verdict for A, with its label probabilities."""

    class Meta:
        model = Judgment

    comparison = factory.SubFactory(ComparisonFactory)
    judge = "j"
    verdict = "model_a"
    p_a = 0.8
    p_b = 0.1
    p_tie = 0.1
    consistent = True
