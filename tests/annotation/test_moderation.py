"""Fraud detection in the database: the detector run, flag / ban / reinstate with an audit
trail, rate limits, gold pairs, and the review pages."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from urllib.parse import urljoin

import numpy as np
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from annotation import gold, moderation, selectors, services
from annotation.models import (
    Annotator,
    AnnotatorAssessment,
    AnnotatorStateChange,
    Assignment,
    Candidate,
    Comparison,
    Project,
    Vote,
)
from annotation.tasks import fraud_detect_all_task
from tests.factories import (
    AnnotatorFactory,
    CandidateFactory,
    ComparisonFactory,
    ModelEntryFactory,
    PromptFactory,
)

pytestmark = pytest.mark.django_db

STRENGTHS = {"m0": 2.0, "m1": 1.0, "m2": 0.0, "m3": -1.0, "m4": -2.0}


@pytest.fixture
def arena(project: Project) -> list[Comparison]:
    """Five models, ten prompts, every pair of models on every prompt: 100 comparisons."""
    models = {name: ModelEntryFactory(project=project, name=name) for name in STRENGTHS}
    comparisons = []
    for index in range(10):
        prompt = PromptFactory(project=project, category="math" if index % 2 else "writing")
        candidates = {
            name: CandidateFactory(prompt=prompt, model=model, responses=[f"{name} says " * 40])
            for name, model in models.items()
        }
        names = list(STRENGTHS)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                comparisons.append(
                    ComparisonFactory(
                        project=project,
                        prompt=prompt,
                        candidate_a=candidates[first],
                        candidate_b=candidates[second],
                        votes_wanted=50,
                    )
                )
    return comparisons


def _honest_winner(comparison: Comparison, rng: random.Random) -> str:
    a = STRENGTHS[comparison.candidate_a.model.name]
    b = STRENGTHS[comparison.candidate_b.model.name]
    if rng.random() < 0.1:
        return "tie"
    return "model_a" if rng.random() < 1 / (1 + np.exp(b - a)) else "model_b"


def bulk_votes(
    annotator: Annotator,
    comparisons: list[Comparison],
    *,
    winner_of,
    seconds: float,
    rng: random.Random,
    left_is_a=None,
) -> list[Vote]:
    """Votes as the web would store them, cast a little over `seconds` apart."""
    start = timezone.now() - timedelta(days=1)
    votes = []
    for index, comparison in enumerate(comparisons):
        winner = winner_of(comparison, rng)
        side = rng.random() < 0.5 if left_is_a is None else left_is_a(comparison, winner)
        if winner in ("model_a", "model_b"):
            choice = "left" if (winner == "model_a") == side else "right"
        else:
            choice = "tie" if winner == "tie" else "both_bad"
        votes.append(
            Vote(
                comparison=comparison,
                annotator=annotator,
                left_is_a=side,
                choice=choice,
                winner=winner,
                time_to_vote_ms=int(seconds * 1000 * rng.uniform(0.8, 1.5)),
                client_hash=f"client-{annotator.pseudonym}",
                created_at=start + timedelta(seconds=index * (seconds + 5)),
            )
        )
    return Vote.objects.bulk_create(votes)


def always_left_bot(comparison: Comparison, winner: str) -> bool:
    return winner == "model_a"


@pytest.fixture
def crowd(arena: list[Comparison]) -> dict[str, Annotator]:
    """Eight honest annotators (60 votes each, 20-40 s a vote) and a fast always-left bot."""
    rng = random.Random(7)
    people = {}
    for index in range(8):
        person = AnnotatorFactory(pseudonym=f"honest-{index}")
        bulk_votes(person, rng.sample(arena, 60), winner_of=_honest_winner, seconds=25, rng=rng)
        people[person.pseudonym] = person
    bot = AnnotatorFactory(pseudonym="bot-left")
    bulk_votes(
        bot,
        rng.sample(arena, 60),
        winner_of=lambda c, r: "model_a" if r.random() < 0.5 else "model_b",
        seconds=0.8,
        rng=rng,
        left_is_a=always_left_bot,
    )
    people[bot.pseudonym] = bot
    return people


def bot_left() -> int:
    return Annotator.objects.get(pseudonym="bot-left").pk


def board(project: Project, **filters) -> list[tuple[str, float, int]]:
    result = selectors.leaderboard_compute(
        project, selectors.LeaderboardFilters(**filters), bootstrap_rounds=20, seed=0
    )
    return [(row["model"], round(row["rating"], 9), row["votes"]) for row in result.board.rows]


# --- the detector --------------------------------------------------------------------------


def test_detector_flags_the_bot_and_no_honest_annotator(
    project: Project, crowd: dict[str, Annotator]
) -> None:
    report = moderation.fraud_detect(project=project)
    assert report.newly_flagged == ["bot-left"]
    states = dict(Annotator.objects.values_list("pseudonym", "state"))
    assert states.pop("bot-left") == Annotator.State.FLAGGED
    assert set(states.values()) == {Annotator.State.ACTIVE}
    change = AnnotatorStateChange.objects.get()
    assert change.actor is None and change.actor_label == "fraud detector"
    assert (change.from_state, change.to_state, change.project) == ("active", "flagged", project)
    assert "FLAG" in change.reason and change.evidence["votes"] == 60
    bot_verdict = AnnotatorAssessment.objects.get(annotator__pseudonym="bot-left")
    assert bot_verdict.suspicious and bot_verdict.trust < 0.1
    assert bot_verdict.signals["side_bias"] == 1.0
    assert AnnotatorAssessment.objects.filter(suspicious=False).count() == 8
    # Nothing was deleted; a second run changes nothing and records nothing new.
    assert Vote.objects.filter(annotator__pseudonym="bot-left").count() == 60
    again = moderation.fraud_detect(project=project)
    assert again.newly_flagged == [] and again.suspicious == 1
    assert AnnotatorStateChange.objects.count() == 1
    # The verdicts were replaced in place: one row per annotator, assessed again.
    assert AnnotatorAssessment.objects.count() == 9
    replaced = AnnotatorAssessment.objects.get(pk=bot_verdict.pk)
    assert replaced.assessed_at > bot_verdict.assessed_at and replaced.suspicious


def test_a_cleared_annotator_is_not_flagged_again_until_they_vote(
    project: Project, crowd: dict[str, Annotator], admin_user_of_project, arena
) -> None:
    moderation.fraud_detect(project=project)
    bot = crowd["bot-left"]
    moderation.annotator_set_state(
        annotator=bot, state="active", actor=admin_user_of_project, reason="Looks fine to me."
    )
    assert moderation.fraud_detect(project=project).newly_flagged == []
    unseen = Comparison.objects.exclude(votes__annotator=bot).filter(project=project)[:1]
    bulk_votes(
        bot, list(unseen), winner_of=lambda c, r: "model_a", seconds=0.5, rng=random.Random()
    )
    Vote.objects.filter(annotator=bot).update(created_at=timezone.now())
    assert moderation.fraud_detect(project=project).newly_flagged == ["bot-left"]
    changes = list(AnnotatorStateChange.objects.order_by("created_at", "id"))
    assert [(c.to_state, c.actor_label) for c in changes] == [
        ("flagged", "fraud detector"),
        ("active", admin_user_of_project.username),
        ("flagged", "fraud detector"),
    ]


def test_flag_and_reinstate_keep_every_vote_and_restore_the_leaderboard_exactly(
    project: Project,
    crowd: dict[str, Annotator],
    admin_user_of_project,
    django_capture_on_commit_callbacks,
) -> None:
    votes_before = list(Vote.objects.order_by("id").values_list("id", "winner"))
    before = board(project)
    target = crowd["honest-3"]
    change = moderation.annotator_set_state(
        annotator=target, state="flagged", actor=admin_user_of_project, reason="Spot check."
    )
    assert change is not None and change.actor == admin_user_of_project
    flagged = board(project)
    assert sum(v for *_, v in flagged) == sum(v for *_, v in before) - 2 * 60
    assert board(project, include_flagged=True) == before
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        moderation.annotator_set_state(
            annotator=target, state="active", actor=admin_user_of_project, reason="Checked, fine."
        )
    assert len(callbacks) == 2  # the live Elo table and a stored leaderboard, after commit
    assert board(project) == before
    assert list(Vote.objects.order_by("id").values_list("id", "winner")) == votes_before
    target.refresh_from_db()
    assert target.reviewed_at is not None and target.state_reason == "Checked, fine."
    # The live Elo table was rebuilt with the reinstated votes.
    assert sum(row.votes for row in selectors.elo_table(project)) == 2 * 9 * 60


def test_a_reviewers_decision_that_keeps_the_state_is_recorded_with_its_reason(
    crowd: dict[str, Annotator], admin_user_of_project
) -> None:
    """Approving an active annotator said "noted as reviewed", but the reason went nowhere."""
    annotator = crowd["honest-0"]
    kept = moderation.annotator_set_state(
        annotator=annotator, state="active", actor=admin_user_of_project, reason="Looks fine."
    )
    assert kept is None  # no change of state
    (review,) = AnnotatorStateChange.objects.filter(annotator=annotator)
    assert (review.from_state, review.to_state, review.reason) == (
        "active",
        "active",
        "Looks fine.",
    )
    assert review.actor == admin_user_of_project
    # The detector confirming a state records nothing: it runs every 15 minutes.
    moderation.annotator_set_state(annotator=annotator, state="active", actor=None, reason="ok")
    assert AnnotatorStateChange.objects.filter(annotator=annotator).count() == 1


def test_a_state_change_needs_a_known_state_and_a_reason(crowd: dict[str, Annotator]) -> None:
    annotator = crowd["honest-0"]
    with pytest.raises(moderation.StateChangeRefused, match="reason"):
        moderation.annotator_set_state(annotator=annotator, state="banned", actor=None, reason=" ")
    with pytest.raises(moderation.StateChangeRefused, match="unknown state"):
        moderation.annotator_set_state(annotator=annotator, state="deleted", actor=None, reason="x")
    assert AnnotatorStateChange.objects.count() == 0


def test_beat_runs_detection_for_every_active_project_with_votes(
    project: Project, crowd: dict[str, Annotator]
) -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE["fraud-detection"]
    assert schedule["task"] == "annotation.tasks.fraud_detect_all_task"
    assert fraud_detect_all_task() == "queued 1"  # runs eagerly here
    assert Annotator.objects.get(pseudonym="bot-left").state == Annotator.State.FLAGGED


# --- votes at the door: bans and rate limits ---------------------------------------------


def _serve_and_vote(project: Project, annotator: Annotator, choice: str = "left") -> Vote:
    assignment = services.assignment_next(project=project, annotator=annotator)
    return services.vote_submit(annotator=annotator, token=assignment.token, choice=choice)


def test_rate_limit_rejects_with_a_retry_time_and_records_nothing(project: Project) -> None:
    project.max_votes_per_minute = 2
    project.save()
    ComparisonFactory.create_batch(3, project=project)
    annotator = AnnotatorFactory()
    _serve_and_vote(project, annotator)
    _serve_and_vote(project, annotator)
    assignment = services.assignment_next(project=project, annotator=annotator)
    with pytest.raises(services.RateLimited) as caught:
        services.vote_submit(annotator=annotator, token=assignment.token, choice="left")
    assert caught.value.status == 429
    assert 1 <= caught.value.retry_after <= 60
    assert "2 votes a minute" in caught.value.message
    assert Vote.objects.count() == 2
    # A minute later the same pair can be voted on.
    Vote.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    services.vote_submit(annotator=annotator, token=assignment.token, choice="left")
    assert Vote.objects.count() == 3


def test_daily_cap_counts_the_last_24_hours(project: Project) -> None:
    project.max_votes_per_day = 1
    project.save()
    ComparisonFactory.create_batch(2, project=project)
    annotator = AnnotatorFactory()
    first = _serve_and_vote(project, annotator)
    Vote.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=23))
    with pytest.raises(services.RateLimited) as caught:
        _serve_and_vote(project, annotator)
    assert 3000 < caught.value.retry_after <= 3600
    assert "1 votes a day" in caught.value.message


def test_vote_endpoint_answers_429_with_retry_after(client: Client, project: Project) -> None:
    project.max_votes_per_minute = 1
    project.save()
    ComparisonFactory.create_batch(2, project=project)
    url = reverse("annotation:arena-vote", args=[project.slug])
    for expected in (200, 429):
        client.get(reverse("annotation:arena", args=[project.slug]))
        token = Assignment.objects.filter(vote__isnull=True).latest("served_at").token
        response = client.post(
            url, {"assignment": str(token), "choice": "left"}, HTTP_HX_REQUEST="true"
        )
        assert response.status_code == expected
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "Slow down" in response.content.decode()
    assert Vote.objects.count() == 1


def test_a_banned_annotator_cannot_vote(project: Project, admin_user_of_project) -> None:
    ComparisonFactory(project=project)
    annotator = AnnotatorFactory()
    assignment = services.assignment_next(project=project, annotator=annotator)
    moderation.annotator_set_state(
        annotator=annotator, state="banned", actor=admin_user_of_project, reason="Spam."
    )
    with pytest.raises(services.AnnotatorBanned):
        services.vote_submit(annotator=annotator, token=assignment.token, choice="left")
    assert Vote.objects.count() == 0
    # Nor is a banned account served pairs: it would hold their slots without ever voting.
    annotator.refresh_from_db()
    with pytest.raises(services.AnnotatorBanned):
        services.assignment_next(project=project, annotator=annotator)


def test_the_arena_and_the_api_tell_a_banned_account_it_may_not_vote(
    client: Client, project: Project, django_user_model
) -> None:
    ComparisonFactory(project=project, votes_wanted=1)
    user = django_user_model.objects.create_user("mallory", password="pw-123456789")
    client.force_login(user)
    arena_url = reverse("annotation:arena", args=[project.slug])
    assert 'name="choice"' in client.get(arena_url).content.decode()  # served a pair
    annotator = Annotator.objects.get(user=user)
    other = AnnotatorFactory()
    assert services.assignment_next(project=project, annotator=other) is None  # the slot is held
    moderation.annotator_set_state(annotator=annotator, state="banned", actor=None, reason="Bot.")
    body = client.get(arena_url).content.decode()
    assert "This account may no longer vote." in body and 'name="choice"' not in body
    response = client.post(reverse("api:next-pair", args=[project.slug]))
    assert response.status_code == 403
    assert response.json()["detail"] == "This account may no longer vote."
    # The pair the account held is freed by the ban, and no new one is served.
    (held,) = annotator.assignments.all()
    assert held.expires_at <= timezone.now()
    assert services.assignment_next(project=project, annotator=other).comparison == held.comparison


# --- gold pairs ----------------------------------------------------------------------------


def test_gold_pairs_set_a_real_answer_against_an_off_topic_one(
    project: Project, arena: list[Comparison]
) -> None:
    made = gold.gold_pairs_create(project=project, count=4, seed=1)
    assert made == 4
    pairs = Comparison.objects.filter(is_gold=True).select_related("candidate_a", "candidate_b")
    for pair in pairs:
        good, decoy = (
            (pair.candidate_a, pair.candidate_b)
            if pair.gold_winner == "model_a"
            else (pair.candidate_b, pair.candidate_a)
        )
        assert good.settings_hash == "" and decoy.settings_hash == Candidate.GOLD_DECOY
        assert good.model_id != decoy.model_id
        assert decoy.prompt_id == pair.prompt_id
        source = Candidate.objects.get(pk=decoy.metadata["gold_decoy_of"])
        assert source.prompt_id != pair.prompt_id and source.model_id == decoy.model_id
    # Decoys never become ordinary comparisons.
    assert (
        services.comparisons_create_for_prompts(project=project, prompts=project.prompts.all()) == 0
    )


def test_gold_pairs_are_served_at_the_gold_rate_and_never_rated(
    project: Project, arena: list[Comparison]
) -> None:
    gold.gold_pairs_create(project=project, count=3, seed=2)
    project.gold_rate = 1.0
    project.save()
    annotator = AnnotatorFactory()
    served = [_serve_and_vote(project, annotator).comparison for _ in range(3)]
    assert all(comparison.is_gold for comparison in served)
    # Out of gold pairs, ordinary ones follow.
    assert not _serve_and_vote(project, annotator).comparison.is_gold
    assert sum(votes for *_, votes in board(project)) == 2  # one battle, two models
    records = moderation.vote_records(project)
    assert sum(r.gold_correct is not None for r in records) == 3


def test_gold_pairs_are_not_served_when_the_rate_is_zero(
    project: Project, arena: list[Comparison]
) -> None:
    gold.gold_pairs_create(project=project, count=3, seed=2)
    annotator = AnnotatorFactory()
    assert not any(_serve_and_vote(project, annotator).comparison.is_gold for _ in range(10))


# --- review pages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 403),
        ("annotator", 403),
        ("researcher", 403),
        ("outsider", 403),
        ("admin", 200),
    ],
)
@pytest.mark.usefixtures("crowd")
def test_only_project_admins_may_review(
    client: Client, project: Project, who: str, status: int, request: pytest.FixtureRequest
) -> None:
    users = {
        "annotator": "annotator_user",
        "researcher": "researcher_user",
        "outsider": "outsider_user",
        "admin": "admin_user_of_project",
    }
    if who != "anonymous":
        client.force_login(request.getfixturevalue(users[who]))
    pages = [
        ("get", reverse("annotation:review", args=[project.slug])),
        ("get", reverse("annotation:review-annotator", args=[project.slug, bot_left()])),
    ]
    for method, url in pages:
        assert getattr(client, method)(url).status_code == status
    decide = reverse("annotation:review-decide", args=[project.slug, bot_left()])
    response = client.post(decide, {"action": "ban"})
    assert response.status_code == (302 if status == 200 else 403)
    expected = Annotator.State.BANNED if status == 200 else Annotator.State.ACTIVE
    assert Annotator.objects.get(pseudonym="bot-left").state == expected


@pytest.mark.usefixtures("crowd")
def test_an_admin_cannot_decide_on_an_annotator_of_another_arena(
    client: Client, project: Project, admin_user_of_project
) -> None:
    stranger = AnnotatorFactory(pseudonym="voter-elsewhere")
    client.force_login(admin_user_of_project)
    decide = reverse("annotation:review-decide", args=[project.slug, stranger.pk])
    assert client.post(decide, {"action": "ban"}).status_code == 404
    stranger.refresh_from_db()
    assert stranger.state == Annotator.State.ACTIVE


def test_review_queue_shows_the_evidence_and_records_decisions(
    client: Client, project: Project, crowd: dict[str, Annotator], admin_user_of_project
) -> None:
    client.force_login(admin_user_of_project)
    response = client.post(reverse("annotation:review-run", args=[project.slug]))
    assert response.status_code == 302
    page = client.get(reverse("annotation:review", args=[project.slug])).content.decode()
    assert 'data-annotator="bot-left"' in page and "Detection ran" in page
    assert "honest-0" not in page
    detail = client.get(
        reverse("annotation:review-annotator", args=[project.slug, bot_left()])
    ).content.decode()
    assert "100% of decisive votes for the left answer" in detail
    assert "<th>Longer answer</th>" in detail
    assert "<svg" in detail and "fraud detector" in detail
    response = client.post(
        reverse("annotation:review-decide", args=[project.slug, bot_left()]),
        {"action": "approve", "reason": "Known fast <b>reader</b>"},
    )
    assert response.status_code == 302
    bot = Annotator.objects.get(pseudonym="bot-left")
    assert bot.state == Annotator.State.ACTIVE
    change = AnnotatorStateChange.objects.latest("created_at")
    assert (change.actor, change.reason) == (admin_user_of_project, "Known fast <b>reader</b>")
    detail = client.get(response["Location"]).content.decode()
    assert "Known fast &lt;b&gt;reader&lt;/b&gt;" in detail
    unknown = client.post(
        reverse("annotation:review-decide", args=[project.slug, bot_left()]), {"action": "delete"}
    )
    assert unknown.status_code == 400


@pytest.mark.parametrize("name", ["team/alice", "org/team/bob", "ana maria", "jürgen?x=1#top"])
def test_the_review_queue_works_for_any_imported_annotator_name(
    client: Client, project: Project, arena: list[Comparison], admin_user_of_project, name: str
) -> None:
    """Imported names are free text: one with "/" used to make the whole queue a 500."""
    bot = AnnotatorFactory(pseudonym=name)
    bulk_votes(
        bot,
        arena[:60],
        winner_of=lambda c, r: "model_a",
        seconds=0.8,
        rng=random.Random(1),
        left_is_a=always_left_bot,
    )
    moderation.annotator_set_state(
        annotator=bot, state=Annotator.State.FLAGGED, actor=None, reason="Flagged in a test."
    )
    client.force_login(admin_user_of_project)
    queue = client.get(reverse("annotation:review", args=[project.slug]))
    assert queue.status_code == 200
    # Its left share is counted as its own page counts it: every decisive vote went left.
    row = queue.content.decode().split(f'data-annotator="{escape(name)}"')[1].split("</tr>")[0]
    assert "<td>1.00</td>" in row
    detail = client.get(reverse("annotation:review-annotator", args=[project.slug, bot.pk]))
    assert detail.status_code == 200
    # Sub-second votes show their tenths, not a rounded 0 or 1.
    fastest = min(Vote.objects.filter(annotator=bot).values_list("time_to_vote_ms", flat=True))
    assert f"<td>{fastest / 1000:.1f}</td>" in detail.content.decode()
    # A vote imported without its time says so, not the import's time as when it was cast.
    untimed = Vote.objects.filter(annotator=bot).latest("created_at")
    Vote.objects.filter(pk=untimed.pk).update(time_recorded=False)
    detail = client.get(reverse("annotation:review-annotator", args=[project.slug, bot.pk]))
    assert "<td>not recorded</td>" in detail.content.decode()
    response = client.post(
        reverse("annotation:review-decide", args=[project.slug, bot.pk]),
        {"action": "approve", "back": "queue"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("annotation:review", args=[project.slug])
    bot.refresh_from_db()
    assert bot.state == Annotator.State.ACTIVE


def test_an_annotator_named_like_a_path_cannot_aim_the_review_at_someone_else(
    client: Client,
    project: Project,
    arena: list[Comparison],
    crowd: dict[str, Annotator],
    admin_user_of_project,
) -> None:
    """An imported name "x/../bot-left" made the queue's Ban button post to bot-left's page,
    because a browser resolves ".." in a link: the review pages are addressed by id."""
    sly = AnnotatorFactory(pseudonym="x/../bot-left")
    bulk_votes(
        sly,
        arena[:60],
        winner_of=lambda c, r: "model_a",
        seconds=0.8,
        rng=random.Random(2),
        left_is_a=always_left_bot,
    )
    moderation.annotator_set_state(
        annotator=sly, state=Annotator.State.FLAGGED, actor=None, reason="Flagged in a test."
    )
    client.force_login(admin_user_of_project)
    queue_url = reverse("annotation:review", args=[project.slug])
    page = client.get(queue_url).content.decode()
    row = page[page.index('data-annotator="x/../bot-left"') :]
    action = re.search(r'<form method="post" action="([^"]+)"', row).group(1)
    decide = urljoin(f"http://testserver{queue_url}", action)  # as the browser resolves it
    assert client.post(decide, {"action": "ban", "back": "queue"}).status_code == 302
    sly.refresh_from_db()
    assert sly.state == Annotator.State.BANNED
    assert Annotator.objects.get(pseudonym="bot-left").state == Annotator.State.ACTIVE
