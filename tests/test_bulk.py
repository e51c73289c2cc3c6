"""Bulk inserts through PostgreSQL's COPY store what `bulk_create` stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from annotation.models import Project
from prefarena.bulk import insert_rows
from routing.models import DisagreementFit, RouteDecision
from tests.routing.helpers import JUDGE, judged

FIELDS = ("route", "reason", "p_disagree", "priority", "judge", "judge_verdict", "features")


def decision(comparison, fit, i: int) -> RouteDecision:
    return RouteDecision(
        comparison=comparison,
        route=("human", "judge", "both")[i % 3],
        reason="priority",
        p_disagree=i / 10,
        priority=-0.0 if i == 0 else i / 10,
        judge=JUDGE,
        judge_verdict="tie (inconsistent)",
        # Quotes, backslashes, tabs and newlines: what COPY's text format must escape.
        features={"margin": 0.25 * i, 'odd "name"\t\\\n': -1.5, "n": None},
        fit=fit if i % 2 else None,
    )


def test_rows_inserted_by_copy_read_back_like_bulk_create(project: Project) -> None:
    assert connection.vendor == "postgresql"
    fit = DisagreementFit.objects.create(project=project, judge=JUDGE, labelled=0, judge_wrong=0)
    comparisons = judged(project, 8)
    insert_rows([decision(c, fit, i) for i, c in enumerate(comparisons[:4])])
    RouteDecision.objects.bulk_create([decision(c, fit, i) for i, c in enumerate(comparisons[4:])])
    by_bulk_create = RouteDecision.objects.filter(comparison__in=comparisons[4:])
    by_copy = RouteDecision.objects.filter(comparison__in=comparisons[:4])
    expected = list(by_bulk_create.order_by("comparison").values_list(*FIELDS, "fit"))
    assert list(by_copy.order_by("comparison").values_list(*FIELDS, "fit")) == expected
    assert by_copy.get(comparison=comparisons[1]).features['odd "name"\t\\\n'] == -1.5
    # The field default (decided now) is applied as `save()` would apply it.
    decided = by_copy.values_list("decided_at", flat=True)
    assert all(abs((d - datetime.now(UTC)).total_seconds()) < 60 for d in decided)


def test_a_row_the_database_refuses_inserts_nothing(project: Project) -> None:
    comparisons = judged(project, 3)
    rows = [decision(c, None, i) for i, c in enumerate(comparisons)]
    rows[2].p_disagree = 1.5  # breaks the probability constraint
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(rows)
    assert not RouteDecision.objects.filter(comparison__in=comparisons).exists()
    insert_rows([])  # nothing to insert is not an error
