"""The Bradley-Terry leaderboard from the database: SQL aggregation, filters, snapshots,
the live page and the `leaderboard` command."""

from __future__ import annotations

import json
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation import charts, selectors, services
from annotation.models import Comparison, LeaderboardSnapshot, Project, Vote
from annotation.tasks import leaderboard_snapshot_all_task
from models_backend.models import Judgment
from tests.factories import (
    AnnotatorFactory,
    AssignmentFactory,
    ComparisonFactory,
    ModelEntryFactory,
    PromptFactory,
)

pytestmark = pytest.mark.django_db


def cast(comparison: Comparison, choice: str, *, annotator=None, left_is_a: bool = True) -> Vote:
    assignment = AssignmentFactory(
        comparison=comparison, annotator=annotator or AnnotatorFactory(), left_is_a=left_is_a
    )
    return services.vote_submit(
        annotator=assignment.annotator, token=assignment.token, choice=choice
    )


@pytest.fixture
def three_models(project: Project) -> dict[str, Comparison]:
    strong, middle, weak = (
        ModelEntryFactory(project=project, name=name) for name in ("strong", "middle", "weak")
    )

    def pair(a, b, category):
        return ComparisonFactory(
            project=project,
            prompt=PromptFactory(project=project, category=category),
            candidate_a__model=a,
            candidate_b__model=b,
            votes_wanted=50,
        )

    return {
        "strong-middle": pair(strong, middle, "math"),
        "middle-weak": pair(middle, weak, "math"),
        "strong-weak": pair(strong, weak, "writing"),
    }


def test_battle_counts_are_aggregated_by_model_pair_and_outcome(
    project: Project, three_models: dict[str, Comparison]
) -> None:
    for _ in range(3):
        cast(three_models["strong-middle"], "left")
    cast(three_models["strong-middle"], "right", left_is_a=False)  # also a win for model a
    cast(three_models["strong-middle"], "tie")
    cast(three_models["middle-weak"], "both_bad")

    counts = selectors.battle_counts(project, selectors.LeaderboardFilters())

    cells = {
        (counts.models[a], counts.models[b], float(o)): int(n)
        for a, b, o, n in zip(
            counts.model_a, counts.model_b, counts.outcome, counts.count, strict=True
        )
    }
    assert cells == {
        ("strong", "middle", 1.0): 4,
        ("strong", "middle", 0.5): 1,
        ("middle", "weak", 0.5): 1,
    }
    assert counts.total_votes == 6


def test_filters_flagged_category_dates_and_judge_source(
    project: Project, three_models: dict[str, Comparison]
) -> None:
    flagged = AnnotatorFactory(state="flagged")
    cast(three_models["strong-middle"], "left", annotator=flagged)
    cast(three_models["strong-weak"], "left")
    old = cast(three_models["middle-weak"], "left")
    Vote.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    Judgment.objects.create(
        comparison=three_models["middle-weak"],
        judge="tiny",
        verdict="model_b",
        p_a=0.2,
        p_b=0.7,
        p_tie=0.1,
        consistent=True,
    )

    def total(**kw: object) -> int:
        return selectors.battle_counts(project, selectors.LeaderboardFilters(**kw)).total_votes

    assert total() == 2  # the flagged annotator's vote is excluded by default
    assert total(include_flagged=True) == 3
    assert total(category="writing") == 1
    assert total(since=timezone.now() - timedelta(days=1)) == 1
    assert total(until=timezone.now() - timedelta(days=1)) == 1
    assert total(source="judge") == 1
    assert total(source="all") == 3
    with pytest.raises(ValueError, match="source must be one of"):
        selectors.LeaderboardFilters(source="robots")


def test_snapshot_stores_ratings_intervals_and_matrices(
    project: Project, three_models: dict[str, Comparison]
) -> None:
    for _ in range(6):
        cast(three_models["strong-middle"], "left")
        cast(three_models["middle-weak"], "left")
        cast(three_models["strong-weak"], "left")
    cast(three_models["strong-middle"], "right")
    cast(three_models["middle-weak"], "right")

    snapshot = services.leaderboard_snapshot_create(project=project, bootstrap_rounds=200)

    ranking = [row["model"] for row in sorted(snapshot.rows, key=lambda r: -r["rating"])]
    assert ranking == ["strong", "middle", "weak"]
    for row in snapshot.rows:
        assert row["lower"] <= row["rating"] <= row["upper"]
    assert snapshot.vote_count == 20
    index = snapshot.models_order.index
    assert snapshot.win_rates[index("strong")][index("weak")] == 1.0
    assert snapshot.battle_counts[index("strong")][index("middle")] == 7
    assert set(snapshot.timings) >= {"sql_aggregate", "total"}


def test_beat_task_snapshots_only_projects_with_new_votes(
    project: Project, three_models: dict[str, Comparison]
) -> None:
    assert leaderboard_snapshot_all_task() == "queued 0"
    cast(three_models["strong-middle"], "left")
    assert leaderboard_snapshot_all_task() == "queued 1"  # eager: runs at once
    assert LeaderboardSnapshot.objects.filter(project=project).count() == 1
    assert leaderboard_snapshot_all_task() == "queued 0"


def test_leaderboard_page_serves_the_snapshot_with_charts(
    client: Client,
    project: Project,
    three_models: dict[str, Comparison],
    researcher_user,
) -> None:
    for _ in range(4):
        cast(three_models["strong-middle"], "left")
        cast(three_models["middle-weak"], "left")
    client.force_login(researcher_user)
    url = reverse("annotation:leaderboard", args=[project.slug])

    page = client.get(url).content.decode()

    assert "95% CI" in page and "strong" in page
    assert page.count("<svg") >= 2  # interval whiskers and win-rate heatmap
    assert "(stored snapshot)" in page
    assert LeaderboardSnapshot.objects.count() == 1
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert (
        fragment.lstrip().startswith('<section id="board"') and 'hx-trigger="every 10s"' in fragment
    )
    judge_only = client.get(url, {"source": "judge"}).content.decode()
    assert "No votes yet." in judge_only
    assert client.get(url, {"since": "not a date"}).status_code == 400


def test_recompute_now_adds_a_snapshot(
    client: Client,
    project: Project,
    admin_user_of_project,
    annotator_user,
) -> None:
    url = reverse("annotation:leaderboard-refresh", args=[project.slug])
    client.force_login(annotator_user)
    assert client.post(url).status_code == 403
    client.force_login(admin_user_of_project)
    assert client.get(url).status_code == 405
    response = client.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert LeaderboardSnapshot.objects.filter(project=project).count() == 1
    # The board keeps the filters it was showing, and its button keeps them for next time.
    page = reverse("annotation:leaderboard", args=[project.slug])
    judge_board = client.get(page, {"source": "judge"}).content.decode()
    assert f"{url}?source=judge" in judge_board
    fragment = client.post(f"{url}?source=judge", HTTP_HX_REQUEST="true").content.decode()
    assert "LLM-judge verdicts" in fragment and f"{url}?source=judge" in fragment
    # No annotator voted on a judge board: no claim about excluding flagged ones.
    assert "flagged annotators excluded" not in judge_board
    assert "flagged annotators excluded" in client.get(page).content.decode()
    redirect = client.post(f"{url}?source=judge")
    assert redirect.status_code == 302 and redirect["Location"] == f"{page}?source=judge"


def test_charts_escape_hostile_model_names() -> None:
    evil = "<script>alert(1)</script>"
    rows = [{"model": evil, "rating": 1000.0, "lower": 990.0, "upper": 1010.0}]
    for svg in (
        charts.ci_whiskers(rows),
        charts.win_rate_heatmap([evil, "b"], [[None, 0.7], [0.3, None]]),
        charts.rating_history({evil: [("t1", 1000.0), ("t2", 1010.0)]}),
    ):
        assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_command_prints_json_for_a_project(
    project: Project, three_models: dict[str, Comparison], capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        cast(three_models["strong-middle"], "left")
    call_command("leaderboard", "--project", project.slug, "--bootstrap", "100", "--format", "json")
    payload = json.loads(capsys.readouterr().out)
    assert [m["model"] for m in payload["models"]] == ["strong", "middle"]
    assert set(payload["models"][0]) >= {"rating", "lower", "upper", "rank", "votes", "group"}
    assert [m["provisional"] for m in payload["models"]] == [True, True]  # 3 votes each
    assert payload["timings_seconds"]["sql_aggregate"] >= 0
    call_command("leaderboard", "--project", project.slug, "--bootstrap", "100")
    assert capsys.readouterr().out.count("  provisional") == 2
    # A plain date is that day's midnight UTC, as everywhere else (it warned of a naive time).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call_command("leaderboard", "--project", project.slug, "--since", "2000-01-01")
    with pytest.raises(CommandError, match="since must be an ISO date or date-time"):
        call_command("leaderboard", "--project", project.slug, "--since", "yesterday")


def test_command_reads_a_fastchat_battle_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "battles.csv"
    log.write_text(
        "model_a,model_b,winner\n"
        + "x,y,model_a\n" * 8
        + "x,y,model_b\n" * 2
        + "x,y,tie (bothbad)\n"
    )
    call_command("leaderboard", "--battles", str(log), "--format", "csv", "--bootstrap", "50")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "rank,model,rating,lower,upper,votes,win_rate,group,provisional"
    assert lines[1].startswith("1,x,")


def test_command_rejects_a_bad_battle_log(tmp_path: Path) -> None:
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"model_a": "x", "model_b": "y", "winner": "model_c"}\n')
    with pytest.raises(CommandError, match="model_c"):
        call_command("leaderboard", "--battles", str(bad))
    missing = tmp_path / "m.jsonl"
    missing.write_text('{"model_a": "x"}\n')
    with pytest.raises(CommandError, match="needs model_a, model_b and winner"):
        call_command("leaderboard", "--battles", str(missing))


def test_a_filtered_board_shows_the_intervals_and_ranks_the_command_prints(
    project: Project, three_models: dict[str, Comparison]
) -> None:
    """Filtered boards took 200 bootstrap rounds, the command 1000: a model ranked 4th on the
    page and 3rd in `manage.py leaderboard` for the same filter."""
    for choice in ["left"] * 6 + ["right"] * 3 + ["tie"]:
        cast(three_models["strong-middle"], choice)
        cast(three_models["middle-weak"], choice)
    math = selectors.LeaderboardFilters(category="math")
    shown = services.leaderboard_board(project=project, filters=math).rows
    command = selectors.leaderboard_compute(project, math).board.rows
    assert [(r["model"], r["lower"], r["upper"], r["rank"]) for r in shown] == [
        (r["model"], r["lower"], r["upper"], r["rank"]) for r in command
    ]


def test_category_boards_are_live_and_the_default_one_follows_votes_without_a_beat(
    project: Project, three_models: dict[str, Comparison], settings
) -> None:
    from annotation.models import LeaderboardSnapshot as Snapshot

    settings.CELERY_TASK_ALWAYS_EAGER = True  # in-process: no beat stores snapshots
    cast(three_models["strong-middle"], "left")
    math = selectors.LeaderboardFilters(category="math")
    assert services.leaderboard_board(project=project, filters=math).vote_count == 1
    cast(three_models["middle-weak"], "left")
    # A category board is computed from the votes, not from a snapshot stored once.
    assert services.leaderboard_board(project=project, filters=math).vote_count == 2
    assert (
        services.leaderboard_board(
            project=project, filters=selectors.LeaderboardFilters(category="nope")
        ).vote_count
        == 0
    )
    assert not Snapshot.objects.exclude(category="").exists()  # no row per category asked
    default = selectors.LeaderboardFilters()
    assert services.leaderboard_board(project=project, filters=default).vote_count == 2
    cast(three_models["strong-weak"], "left")
    # Within EAGER_SNAPSHOT_SECONDS the stored board stands; past them, new votes refresh it.
    assert services.leaderboard_board(project=project, filters=default).vote_count == 2
    Snapshot.objects.update(created_at=F("created_at") - timedelta(minutes=1))
    assert services.leaderboard_board(project=project, filters=default).vote_count == 3
    settings.CELERY_TASK_ALWAYS_EAGER = False  # with a beat, reading never recomputes
    cast(three_models["strong-weak"], "left")
    Snapshot.objects.update(created_at=F("created_at") - timedelta(minutes=1))
    assert services.leaderboard_board(project=project, filters=default).vote_count == 3


def test_bad_filters_from_htmx_replace_the_board_with_the_errors(
    client: Client, project: Project, researcher_user
) -> None:
    client.force_login(researcher_user)
    url = reverse("annotation:leaderboard", args=[project.slug])
    response = client.get(url, {"since": "garbage"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 400
    assert body.lstrip().startswith('<section id="board">') and "<html" not in body
    assert 'role="alert"' in body
    # A yes/no is read as the API reads it: "maybe" is an error there and here.
    assert client.get(url, {"include_flagged": "maybe"}).status_code == 400
    for value in ("on", "1", "true", "no"):
        assert client.get(url, {"include_flagged": value}).status_code == 200, value
    # Without htmx, the page shows the errors and keeps the filters as chosen (category too).
    PromptFactory(project=project, category="math")
    backwards = {"category": "math", "since": "2030-01-01", "until": "2020-01-01"}
    response = client.get(url, backwards)
    body = response.content.decode()
    assert response.status_code == 400 and "must be after" in body
    assert '<option value="math" selected>' in body
    api = reverse("api:leaderboard", args=[project.slug])
    response = client.get(api, backwards)
    assert response.status_code == 400 and "since must be before until" in response.json()["detail"]


def test_a_board_whose_every_vote_is_flagged_says_so_and_style_control_does_not_crash(
    client: Client,
    project: Project,
    three_models: dict[str, Comparison],
    researcher_user,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The page said "No votes yet." beside 401 votes, and `--style-control` raised an
    IndexError, when every vote was from a flagged annotator."""
    flagged = AnnotatorFactory(state="flagged")
    cast(three_models["strong-middle"], "left", annotator=flagged)
    cast(three_models["middle-weak"], "left", annotator=flagged)
    client.force_login(researcher_user)
    url = reverse("annotation:leaderboard", args=[project.slug])

    page = client.get(url).content.decode()
    assert "No votes counted: 2 votes from flagged or banned annotators are left out" in page
    board = page[page.index('id="bt-table"') :]
    assert "No votes yet." not in board[: board.index("</table>")]
    assert "strong" in client.get(url, {"include_flagged": "on"}).content.decode()
    judge_only = client.get(url, {"source": "judge"}).content.decode()
    assert "No votes yet." in judge_only  # no annotator votes on a judge board

    call_command("leaderboard", "--project", project.slug, "--style-control", "--format", "json")
    assert json.loads(capsys.readouterr().out)["models"] == []


def test_the_page_warns_of_models_never_compared_with_each_other(
    client: Client, project: Project, three_models: dict[str, Comparison], researcher_user
) -> None:
    cast(three_models["strong-middle"], "left")
    client.force_login(researcher_user)
    url = reverse("annotation:leaderboard", args=[project.slug])
    assert 'id="groups-note"' not in client.get(url).content.decode()
    loner, rival = (ModelEntryFactory(project=project, name=n) for n in ("loner", "rival"))
    island = ComparisonFactory(
        project=project, candidate_a__model=loner, candidate_b__model=rival, votes_wanted=5
    )
    cast(island, "left")

    page = client.get(url, {"include_flagged": "on"}).content.decode()  # computed now

    assert 'id="groups-note"' in page and "These models form 2 groups" in page
    assert "<th>Group</th>" in page


def test_the_page_marks_models_with_few_votes_provisional(
    client: Client, project: Project, three_models: dict[str, Comparison], researcher_user
) -> None:
    for _ in range(12):
        cast(three_models["strong-middle"], "left")
    cast(three_models["middle-weak"], "right")  # weak: one vote, a win
    client.force_login(researcher_user)

    page = client.get(
        reverse("annotation:leaderboard", args=[project.slug]), {"include_flagged": "on"}
    ).content.decode()

    table = page[page.index('id="bt-table"') : page.index("</table>", page.index('id="bt-table"'))]
    assert table.count("provisional</small>") == 1
    assert table.index(">strong<") < table.index(">middle<") < table.index(">weak ")
    assert 'title="Fewer than 10 votes' in table


def test_a_snapshot_stored_before_provisional_models_is_stored_again(
    client: Client, project: Project, three_models: dict[str, Comparison], researcher_user
) -> None:
    cast(three_models["middle-weak"], "right")
    old = services.leaderboard_snapshot_create(project=project, bootstrap_rounds=50)
    old.rows = [{k: v for k, v in row.items() if k != "provisional"} for row in old.rows]
    old.save()
    client.force_login(researcher_user)

    page = client.get(reverse("annotation:leaderboard", args=[project.slug])).content.decode()

    assert LeaderboardSnapshot.objects.filter(project=project).count() == 2
    assert "provisional</small>" in page
