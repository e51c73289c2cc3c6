"""Pair serving and vote integrity, against the real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation import services
from annotation.models import Assignment, Comparison, EloRating, Project, Vote
from tests.factories import (
    AnnotatorFactory,
    AssignmentFactory,
    CandidateFactory,
    ComparisonFactory,
    ProjectFactory,
)

pytestmark = pytest.mark.django_db


def test_next_pair_is_unseen_and_needs_votes(project: Project) -> None:
    first = ComparisonFactory(project=project)
    second = ComparisonFactory(project=project)
    annotator = AnnotatorFactory()

    served = services.assignment_next(project=project, annotator=annotator)
    assert served is not None
    services.vote_submit(annotator=annotator, token=served.token, choice="left")
    again = services.assignment_next(project=project, annotator=annotator)

    assert again is not None
    assert {served.comparison_id, again.comparison_id} == {first.pk, second.pk}
    services.vote_submit(annotator=annotator, token=again.token, choice="tie")
    assert services.assignment_next(project=project, annotator=annotator) is None


def test_reload_serves_the_same_open_pair(project: Project) -> None:
    ComparisonFactory.create_batch(3, project=project)
    annotator = AnnotatorFactory()
    first = services.assignment_next(project=project, annotator=annotator)
    second = services.assignment_next(project=project, annotator=annotator)
    assert first is not None and second is not None
    assert first.pk == second.pk


def test_full_comparison_is_not_served(project: Project) -> None:
    comparison = ComparisonFactory(project=project, votes_wanted=1)
    holder = AnnotatorFactory()
    assert services.assignment_next(project=project, annotator=holder).comparison == comparison
    # The only slot is held by an unexpired assignment: nobody else gets the pair.
    assert services.assignment_next(project=project, annotator=AnnotatorFactory()) is None


def test_expired_assignment_frees_its_slot(project: Project) -> None:
    comparison = ComparisonFactory(project=project, votes_wanted=1)
    past = timezone.now() - timedelta(hours=1)
    AssignmentFactory(comparison=comparison, served_at=past, expires_at=past + timedelta(minutes=1))
    served = services.assignment_next(project=project, annotator=AnnotatorFactory())
    assert served is not None and served.comparison == comparison


def test_least_filled_comparison_first(project: Project) -> None:
    busy = ComparisonFactory(project=project, votes_wanted=3, shuffle_key=0.0)
    idle = ComparisonFactory(project=project, votes_wanted=3, shuffle_key=0.9)
    AssignmentFactory(comparison=busy)
    served = services.assignment_next(project=project, annotator=AnnotatorFactory())
    assert served.comparison == idle


def test_judge_only_comparisons_are_not_served_to_humans(project: Project) -> None:
    ComparisonFactory(project=project, route="judge")
    assert services.assignment_next(project=project, annotator=AnnotatorFactory()) is None


def test_vote_records_choice_side_winner_and_time(project: Project) -> None:
    annotator = AnnotatorFactory()
    assignment = AssignmentFactory(
        comparison=ComparisonFactory(project=project),
        annotator=annotator,
        left_is_a=False,
        served_at=timezone.now() - timedelta(seconds=7),
    )
    fingerprint = services.ClientFingerprint.from_values(ip="10.0.0.1", user_agent="ua")

    vote = services.vote_submit(
        annotator=annotator, token=str(assignment.token), choice="left", fingerprint=fingerprint
    )

    vote.refresh_from_db()
    assert vote.left_is_a is False
    assert vote.choice == "left"
    assert vote.winner == "model_b"  # B was shown on the left
    assert 6_900 <= vote.time_to_vote_ms <= 60_000
    assert vote.client_hash == fingerprint.client_hash
    assert "10.0.0.1" not in vote.client_hash + vote.ip_hash


@pytest.mark.parametrize(
    ("choice", "left_is_a", "winner"),
    [
        ("left", True, "model_a"),
        ("right", True, "model_b"),
        ("right", False, "model_a"),
        ("tie", False, "tie"),
        ("both_bad", True, "tie (bothbad)"),
    ],
)
def test_canonical_winner_follows_choice_and_side(
    project: Project, choice: str, left_is_a: bool, winner: str
) -> None:
    annotator = AnnotatorFactory()
    assignment = AssignmentFactory(
        comparison=ComparisonFactory(project=project), annotator=annotator, left_is_a=left_is_a
    )
    vote = services.vote_submit(annotator=annotator, token=assignment.token, choice=choice)
    assert vote.winner == winner


def test_vote_on_pair_not_served_is_rejected(project: Project) -> None:
    served_to_other = AssignmentFactory(comparison=ComparisonFactory(project=project))
    intruder = AnnotatorFactory()
    with pytest.raises(services.PairNotServed):
        services.vote_submit(annotator=intruder, token=served_to_other.token, choice="left")
    with pytest.raises(services.PairNotServed):
        services.vote_submit(annotator=intruder, token="not-a-uuid", choice="left")
    assert Vote.objects.count() == 0


@pytest.mark.parametrize("choice", ["LEFT", "", None, "a", "tie;drop table", 1])
def test_unknown_choice_is_rejected(project: Project, choice: object) -> None:
    assignment = AssignmentFactory(comparison=ComparisonFactory(project=project))
    with pytest.raises(services.InvalidChoice):
        services.vote_submit(annotator=assignment.annotator, token=assignment.token, choice=choice)
    assert Vote.objects.count() == 0


def test_choice_the_project_disallows_is_rejected() -> None:
    project = ProjectFactory(allow_tie=False, allow_both_bad=False)
    assignment = AssignmentFactory(comparison=ComparisonFactory(project=project))
    for choice in ("tie", "both_bad"):
        with pytest.raises(services.InvalidChoice):
            services.vote_submit(
                annotator=assignment.annotator, token=assignment.token, choice=choice
            )
    assert Vote.objects.count() == 0


def test_replayed_vote_is_rejected_and_changes_nothing(project: Project) -> None:
    assignment = AssignmentFactory(comparison=ComparisonFactory(project=project))
    services.vote_submit(annotator=assignment.annotator, token=assignment.token, choice="left")
    with pytest.raises(services.AlreadyVoted):
        services.vote_submit(annotator=assignment.annotator, token=assignment.token, choice="right")
    assert list(Vote.objects.values_list("choice", flat=True)) == ["left"]


def test_database_refuses_a_second_vote_and_an_inconsistent_winner(project: Project) -> None:
    assignment = AssignmentFactory(comparison=ComparisonFactory(project=project))
    vote = services.vote_submit(
        annotator=assignment.annotator, token=assignment.token, choice="left"
    )
    duplicate = Vote(
        comparison=vote.comparison,
        annotator=vote.annotator,
        left_is_a=True,
        choice="right",
        winner="model_b",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    other = AssignmentFactory(comparison=ComparisonFactory(project=project))
    inconsistent = Vote(
        comparison=other.comparison,
        annotator=other.annotator,
        left_is_a=True,
        choice="left",
        winner="model_b",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        inconsistent.save()
    assert Vote.objects.count() == 1


def test_expired_pair_that_filled_up_is_rejected(project: Project) -> None:
    comparison = ComparisonFactory(project=project, votes_wanted=1)
    past = timezone.now() - timedelta(hours=1)
    late = AssignmentFactory(comparison=comparison, served_at=past, expires_at=past)
    fresh = services.assignment_next(project=project, annotator=AnnotatorFactory())
    services.vote_submit(annotator=fresh.annotator, token=fresh.token, choice="left")
    with pytest.raises(services.PairExpired):
        services.vote_submit(annotator=late.annotator, token=late.token, choice="left")
    assert Vote.objects.filter(comparison=comparison).count() == 1


def test_a_late_vote_does_not_take_a_slot_others_now_hold(project: Project) -> None:
    """Expired, then served to others up to its votes: the late vote would overfill it."""
    comparison = ComparisonFactory(project=project, votes_wanted=2)
    past = timezone.now() - timedelta(hours=1)
    late = AssignmentFactory(comparison=comparison, served_at=past, expires_at=past)
    holders = [
        services.assignment_next(project=project, annotator=AnnotatorFactory()) for _ in range(2)
    ]
    assert {h.comparison_id for h in holders} == {comparison.pk}  # both slots held again
    with pytest.raises(services.PairExpired, match="others have taken its votes"):
        services.vote_submit(annotator=late.annotator, token=late.token, choice="left")
    for holder in holders:
        services.vote_submit(annotator=holder.annotator, token=holder.token, choice="right")
    assert Vote.objects.filter(comparison=comparison).count() == 2  # never more than wanted


def test_expired_pair_with_room_left_still_counts(project: Project) -> None:
    past = timezone.now() - timedelta(hours=1)
    late = AssignmentFactory(
        comparison=ComparisonFactory(project=project, votes_wanted=2),
        served_at=past,
        expires_at=past,
    )
    vote = services.vote_submit(annotator=late.annotator, token=late.token, choice="tie")
    assert vote.pk is not None


def _run_concurrently(count: int, target) -> list[object]:
    """Run target(i) in `count` threads released at once; each uses its own connection."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = target(index)
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_annotators_racing_for_the_last_slot_get_one_pair() -> None:
    project = ProjectFactory(votes_per_comparison=1)
    comparison = ComparisonFactory(project=project, votes_wanted=1)
    annotators = [AnnotatorFactory(), AnnotatorFactory()]

    results = _run_concurrently(
        2, lambda i: services.assignment_next(project=project, annotator=annotators[i])
    )

    served = [r for r in results if isinstance(r, Assignment)]
    assert len(served) == 1, results
    assert served[0].comparison_id == comparison.pk
    assert results.count(None) == 1


@pytest.mark.django_db(transaction=True)
def test_many_annotators_never_overfill_comparisons() -> None:
    project = ProjectFactory(votes_per_comparison=2)
    comparisons = ComparisonFactory.create_batch(3, project=project, votes_wanted=2)
    annotators = [AnnotatorFactory() for _ in range(8)]

    results = _run_concurrently(
        8, lambda i: services.assignment_next(project=project, annotator=annotators[i])
    )

    served = [r for r in results if isinstance(r, Assignment)]
    assert len(served) == 6  # 3 comparisons x 2 wanted votes, the other two get nothing
    per_comparison = {c.pk: 0 for c in comparisons}
    for assignment in served:
        per_comparison[assignment.comparison_id] += 1
    assert set(per_comparison.values()) == {2}


@pytest.mark.django_db(transaction=True)
def test_double_click_race_records_one_vote() -> None:
    project = ProjectFactory()
    assignment = AssignmentFactory(comparison=ComparisonFactory(project=project))

    results = _run_concurrently(
        4,
        lambda i: services.vote_submit(
            annotator=assignment.annotator, token=assignment.token, choice="left"
        ),
    )

    assert sum(isinstance(r, Vote) for r in results) == 1
    assert sum(isinstance(r, services.AlreadyVoted) for r in results) == 3
    assert Vote.objects.count() == 1


def test_elo_table_follows_votes(project: Project) -> None:
    comparison = ComparisonFactory(project=project, votes_wanted=5)
    winner_model = comparison.candidate_a.model
    for _ in range(3):
        assignment = AssignmentFactory(comparison=comparison, left_is_a=True)
        services.vote_submit(annotator=assignment.annotator, token=assignment.token, choice="left")

    services.elo_refresh(project=project)

    table = {row.model_id: row for row in EloRating.objects.filter(project=project)}
    assert table[winner_model.pk].rating > 1000 > table[comparison.candidate_b.model_id].rating
    assert table[winner_model.pk].votes == 3
    assert table[winner_model.pk].wins == 3
    # FastChat: K=4, first vote moves each side by 2 points from 1000.
    assert (
        abs(table[winner_model.pk].rating + table[comparison.candidate_b.model_id].rating - 2000)
        < 1e-6
    )


def test_flagged_annotators_do_not_count_in_elo(project: Project) -> None:
    comparison = ComparisonFactory(project=project, votes_wanted=5)
    assignment = AssignmentFactory(comparison=comparison, left_is_a=True)
    services.vote_submit(annotator=assignment.annotator, token=assignment.token, choice="left")
    assignment.annotator.state = "flagged"
    assignment.annotator.save()

    applied = services.elo_refresh(project=project)

    assert applied == 0
    assert Vote.objects.count() == 1  # kept, only not counted


@pytest.mark.django_db
def test_serving_counts_votes_and_looks_past_a_window_of_held_pairs(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.serving, "SERVING_WINDOW", 2)
    comparisons = ComparisonFactory.create_batch(5, project=project, votes_wanted=1)
    # Two other annotators hold the first two pairs in fill order.
    holders = [AnnotatorFactory(), AnnotatorFactory()]
    held = [services.assignment_next(project=project, annotator=h).comparison for h in holders]
    assert len({c.pk for c in held}) == 2
    me = AnnotatorFactory()
    mine = services.assignment_next(project=project, annotator=me)
    assert mine.comparison.pk not in {c.pk for c in held}
    services.vote_submit(annotator=me, token=mine.token, choice="left")
    mine.comparison.refresh_from_db()
    assert mine.comparison.vote_count == 1
    # Full pairs drop out of the scan; the rest are still served until none is left.
    served = set()
    for _ in range(5):
        annotator = AnnotatorFactory()
        assignment = services.assignment_next(project=project, annotator=annotator)
        if assignment is None:
            break
        served.add(assignment.comparison.pk)
    assert served == {c.pk for c in comparisons} - {mine.comparison.pk} - {c.pk for c in held}


@pytest.mark.django_db(transaction=True)
def test_two_jobs_creating_the_same_pairs_at_once_both_succeed_with_one_copy() -> None:
    """Two generation jobs (a worker per GPU) finishing the same prompt at once: the second
    read the pairs before the first committed them, and its insert used to raise."""
    project = ProjectFactory()
    first = CandidateFactory(prompt__project=project)
    CandidateFactory(prompt=first.prompt, model__project=project)
    created, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def holding_its_transaction_open() -> None:
        try:
            with transaction.atomic():
                services.comparisons_create_for_prompts(project=project, prompts=[first.prompt])
                created.set()
                release.wait(10)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def racing_in() -> None:
        try:
            created.wait(10)
            services.comparisons_create_for_prompts(project=project, prompts=[first.prompt])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=holding_its_transaction_open),
        threading.Thread(target=racing_in),
    ]
    for thread in threads:
        thread.start()
    created.wait(10)
    threading.Timer(0.5, release.set).start()  # the second insert waits on the first's lock
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert Comparison.objects.filter(project=project).count() == 1
