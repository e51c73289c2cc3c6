"""Bulk inserts through PostgreSQL's COPY store what `bulk_create` stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Project
from prefarena.bulk import insert_rows
from routing.models import DisagreementFit, RouteDecision
from tests.routing.helpers import JUDGE, judged

FIELDS = (
    "route",
    "reason",
    "p_disagree",
    "audit_chance",
    "priority",
    "judge",
    "judge_verdict",
    "features",
)


def decision(comparison, fit, i: int) -> RouteDecision:
    return RouteDecision(
        comparison=comparison,
        route=("human", "judge", "both")[i % 3],
        reason="priority",
        p_disagree=i / 10,
        audit_chance=None if i % 2 else 0.05 * i,  # empty, and a float
        surely_human=i % 3 == 0,  # a boolean
        priority=i / 10,
        judge=JUDGE,
        judge_verdict="tie (inconsistent)",
        # Quotes, backslashes, tabs and newlines: what COPY's text format must escape.
        features={"margin": 0.25 * i, 'odd "name"\t\\\n': -1.5, "n": None},
        fit=fit if i % 2 else None,
    )


def copies(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("COPY ")]


def test_rows_inserted_by_copy_read_back_like_bulk_create(project: Project) -> None:
    fit = DisagreementFit.objects.create(project=project, judge=JUDGE, labelled=0, judge_wrong=0)
    comparisons = judged(project, 8)
    with CaptureQueriesContext(connection) as queries:
        insert_rows([decision(c, fit, i) for i, c in enumerate(comparisons[:4])])
    assert copies(queries) == [
        'COPY "routing_routedecision" ("comparison_id", "route", "reason", "p_disagree", '
        '"audit_chance", "surely_human", "priority", "judge", "judge_verdict", "features", '
        '"fit_id", "decided_at", "history") FROM STDIN'
    ]
    RouteDecision.objects.bulk_create([decision(c, fit, i) for i, c in enumerate(comparisons[4:])])
    by_bulk_create = RouteDecision.objects.filter(comparison__in=comparisons[4:])
    by_copy = RouteDecision.objects.filter(comparison__in=comparisons[:4])
    expected = list(by_bulk_create.order_by("comparison").values_list(*FIELDS, "fit"))
    assert list(by_copy.order_by("comparison").values_list(*FIELDS, "fit")) == expected
    assert by_copy.get(comparison=comparisons[1]).features['odd "name"\t\\\n'] == -1.5
    # The field default (decided now) is applied as `save()` would apply it.
    decided = by_copy.values_list("decided_at", flat=True)
    assert all(abs((d - datetime.now(UTC)).total_seconds()) < 60 for d in decided)


def test_rows_copy_cannot_write_as_bulk_create_would_go_through_bulk_create(
    project: Project,
) -> None:
    comparisons = judged(project, 2)
    by_hand = decision(comparisons[0], None, 0)
    by_hand.pk = 987_654  # bulk_create keeps a primary key set by hand; COPY would drop it
    with CaptureQueriesContext(connection) as queries:
        insert_rows([by_hand, decision(comparisons[1], None, 1)])
    assert not copies(queries)
    assert RouteDecision.objects.get(pk=987_654).comparison == comparisons[0]
    # An unsaved related object is refused, as bulk_create refuses it.
    unsaved = decision(comparisons[1], DisagreementFit(project=project, judge=JUDGE), 1)
    with pytest.raises(ValueError, match="unsaved related object"):
        insert_rows([unsaved])
    insert_rows([])  # nothing to insert is not an error


@pytest.mark.django_db(transaction=True)
def test_a_row_the_database_refuses_inserts_nothing(project: Project) -> None:
    # No transaction around the call: the COPY statement alone must insert all or nothing.
    comparisons = judged(project, 3)
    rows = [decision(c, None, i) for i, c in enumerate(comparisons)]
    rows[2].p_disagree = 1.5  # breaks the probability constraint
    with pytest.raises(IntegrityError):
        insert_rows(rows)
    assert not RouteDecision.objects.filter(comparison__in=comparisons).exists()
