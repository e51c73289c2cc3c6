"""Who may see and do what on every HTML page, CSRF on every state-changing form, and
property-based hostile input on the vote endpoint and the vote importer."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation.importers import ImportFailed
from annotation.models import Annotator, Assignment, Comparison, ExportJob, Project, Vote
from annotation.vote_import import votes_import
from models_backend.models import JudgeJob
from routing.models import RoutingPolicy
from tests.factories import (
    AnnotatorFactory,
    ComparisonFactory,
    PromptFactory,
    RouteDecisionFactory,
)

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "annotator", "researcher", "admin", "other-project")
USERS = {
    "annotator": "annotator_user",
    "researcher": "researcher_user",
    "admin": "admin_user_of_project",
    "other-project": "outsider_user",
}
OPEN = dict.fromkeys(ROLES, 200)
STAFF = {"anonymous": 403, "annotator": 403, "researcher": 200, "admin": 200, "other-project": 403}
ADMIN = {**STAFF, "researcher": 403}


@pytest.fixture
def world(project: Project, settings, tmp_path: Path) -> dict[str, object]:
    """A project with a voted pair, a finished export and a voter to review."""
    settings.MEDIA_ROOT = tmp_path
    comparison = ComparisonFactory(project=project)
    voter = AnnotatorFactory(pseudonym="voter-1")
    assignment = Assignment.objects.create(
        comparison=comparison, annotator=voter, left_is_a=True, expires_at="2100-01-01T00:00Z"
    )
    Vote.objects.create(
        comparison=comparison,
        annotator=voter,
        assignment=assignment,
        left_is_a=True,
        choice="left",
        winner="model_a",
    )
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "data.jsonl").write_text("{}\n")
    job = ExportJob.objects.create(
        project=project,
        options={"format": "votes"},
        file_type="jsonl",
        status="done",
        download_path="e/data.jsonl",
        card_path="e/data.jsonl",
    )
    decided = RouteDecisionFactory(comparison__project=project).comparison
    judging = JudgeJob.objects.create(project=project, judge="j", judge_spec={"model": "m"})
    return {"job": job.pk, "voter": voter.pk, "decided": decided.pk, "judging": judging.pk}


def client_for(role: str, request: pytest.FixtureRequest) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(request.getfixturevalue(USERS[role]))
    return client


GET_PAGES = [
    ("annotation:project-list", (), OPEN),
    ("annotation:arena", ("demo",), OPEN),
    ("annotation:guidelines", ("demo",), OPEN),
    ("annotation:leaderboard", ("demo",), STAFF),
    ("annotation:exports", ("demo",), STAFF),
    ("annotation:export-file", ("demo", "job", "download"), STAFF),
    ("annotation:export-file", ("demo", "job", "card"), STAFF),
    ("models_backend:jobs", ("demo",), STAFF),
    ("annotation:review", ("demo",), ADMIN),
    ("annotation:review-annotator", ("demo", "voter"), ADMIN),
    ("routing:router", ("demo",), ADMIN),
    ("routing:router-decision", ("demo", "decided"), ADMIN),
]
POST_FORMS = [
    ("annotation:leaderboard-refresh", ("demo",), {}, {**STAFF, "researcher": 302, "admin": 302}),
    (
        "annotation:exports",
        ("demo",),
        {"format": "dpo", "file_type": "jsonl", "source": "human"},
        {**STAFF, "researcher": 302, "admin": 302},
    ),
    ("models_backend:jobs-judge", ("demo",), {}, {**STAFF, "researcher": 302, "admin": 302}),
    (
        "models_backend:jobs-cancel",
        ("demo", "judge", "judging"),
        {},
        {**STAFF, "researcher": 302, "admin": 302},
    ),
    ("annotation:review-run", ("demo",), {}, {**ADMIN, "admin": 302}),
    ("annotation:review-decide", ("demo", "voter"), {"action": "flag"}, {**ADMIN, "admin": 302}),
    ("routing:router-run", ("demo",), {}, {**ADMIN, "admin": 302}),
    (
        "routing:router-policy",
        ("demo",),
        {
            "enabled": "on",
            "judge": "judge",
            "budget_kind": "share",
            "budget_share": "0.3",
            "daily_human_votes": "0",
            "audit_fraction": "0.1",
            "audit_tilt": "0.7",
            "retrain_every": "20",
            "min_batch": "50",
            "max_wait_minutes": "30",
        },
        {**ADMIN, "admin": 302},
    ),
]


def _args(args: tuple, world: dict[str, object]) -> list[object]:
    return [world.get(arg, arg) for arg in args]


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_as_it_should(
    role: str, world: dict[str, object], request: pytest.FixtureRequest
) -> None:
    client = client_for(role, request)
    seen = {}
    for name, args, expected in GET_PAGES:
        response = client.get(reverse(name, args=_args(args, world)))
        seen[(name, args)] = (response.status_code, expected[role])
    for name, args, data, expected in POST_FORMS:
        response = client.post(reverse(name, args=_args(args, world)), data)
        seen[(name, "POST", args)] = (response.status_code, expected[role])
    wrong = {key: got for key, got in seen.items() if got[0] != got[1]}
    assert not wrong, wrong
    # Only admins' decisions land in the audit trail.
    flagged = Annotator.objects.get(pseudonym="voter-1").state == "flagged"
    assert flagged == (role == "admin")
    assert RoutingPolicy.objects.exists() == (role == "admin")
    cancelled = JudgeJob.objects.get(pk=world["judging"]).status == "cancelled"
    assert cancelled == (role in ("researcher", "admin"))


def test_the_django_admin_is_for_staff_users_only(client: Client, admin_user_of_project) -> None:
    assert client.get("/admin/").status_code == 302  # to the admin login
    client.force_login(admin_user_of_project)  # a project admin is not a Django staff user
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    ("name", "args", "data"),
    [(name, args, data) for name, args, data, _ in POST_FORMS]
    + [("annotation:arena-vote", ("demo",), {"assignment": "x", "choice": "left"})],
)
def test_every_state_changing_form_needs_a_csrf_token(
    name: str, args: tuple, data: dict, world: dict[str, object], admin_user_of_project
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user_of_project)
    before = (
        Vote.objects.count(),
        ExportJob.objects.count(),
        Annotator.objects.filter(state="active").count(),
    )
    response = client.post(reverse(name, args=_args(args, world)), data)
    assert response.status_code == 403
    after = (
        Vote.objects.count(),
        ExportJob.objects.count(),
        Annotator.objects.filter(state="active").count(),
    )
    assert after == before


def test_the_arena_page_carries_no_model_identity(client: Client, project: Project) -> None:
    comparison = ComparisonFactory(
        project=project,
        candidate_a__model__name="needle-model-one",
        candidate_b__model__name="needle-model-two",
    )
    html = client.get(reverse("annotation:arena", args=[project.slug])).content.decode()
    assert "needle-model" not in html
    for candidate in (comparison.candidate_a, comparison.candidate_b):
        # No candidate or model ids in attributes or URLs either.
        assert f"candidate={candidate.pk}" not in html and f"/{candidate.model_id}/" not in html
    assert str(Assignment.objects.get().token) in html


TEXT = st.text(alphabet=string.printable + "éß😀\u202e\x00", max_size=40)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    token=st.one_of(TEXT, st.uuids().map(str)),
    choice=st.one_of(TEXT, st.sampled_from(["left", "right", "tie", "both_bad"])),
)
def test_hostile_votes_get_a_clear_4xx_and_record_nothing(
    client: Client, project: Project, token: str, choice: str
) -> None:
    if not Comparison.objects.exists():
        ComparisonFactory(project=project)
    before = Vote.objects.count()
    response = client.post(
        reverse("annotation:arena-vote", args=[project.slug]),
        {"assignment": token, "choice": choice},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code in (400, 404)
    assert Vote.objects.count() == before


VOTE_LINE = st.fixed_dictionaries(
    {},
    optional={
        "annotator": st.one_of(TEXT, st.integers()),
        "comparison": st.one_of(st.integers(-2, 10**6), TEXT),
        "question_id": st.one_of(st.integers(0, 100), TEXT),
        "turn": st.one_of(st.integers(-1, 3), TEXT, st.booleans()),
        "model_a": TEXT,
        "model_b": TEXT,
        "winner": st.one_of(st.sampled_from(["model_a", "model_b", "tie", "tie (bothbad)"]), TEXT),
        "tstamp": st.one_of(st.floats(allow_nan=True), st.integers(), TEXT),
        "time_to_vote_ms": st.one_of(st.integers(-5, 10**7), TEXT),
        "shown_left": st.one_of(st.sampled_from(["model_a", "model_b"]), TEXT),
        "fingerprint": st.one_of(TEXT, st.integers()),
    },
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(st.one_of(VOTE_LINE, TEXT), min_size=1, max_size=6))
def test_import_votes_takes_a_file_whole_or_not_at_all(
    project: Project, tmp_path: Path, lines: list
) -> None:
    if not Comparison.objects.exists():
        prompt = PromptFactory(project=project, external_id="mtbench-1-t1")
        ComparisonFactory(project=project, prompt=prompt)
    path = tmp_path / "fuzz-votes.jsonl"
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines),
        encoding="utf-8",
        errors="surrogatepass",
    )
    before = Vote.objects.count()
    try:
        report = votes_import(project=project, path=path)
    except ImportFailed as failed:
        assert failed.errors and all("fuzz-votes.jsonl" in error for error in failed.errors)
        assert Vote.objects.count() == before
    else:
        assert Vote.objects.count() == before + report.votes_created


def test_a_nul_character_in_a_query_or_form_is_a_400_not_a_database_error(
    client: Client, project: Project, researcher_user, admin_user_of_project
) -> None:
    client.force_login(researcher_user)
    board = reverse("annotation:leaderboard", args=[project.slug])
    assert client.get(board, {"category": "chat"}).status_code == 200
    page = client.get(board, {"category": "ch\x00at"})
    assert page.status_code == 400 and b"NUL" in page.content
    api = client.get(reverse("api:leaderboard", args=[project.slug]), {"category": "\x00"})
    assert api.status_code == 400 and "NUL" in api.json()["detail"]
    client.force_login(admin_user_of_project)
    form = client.post(
        reverse("routing:router-policy", args=[project.slug]), {"judge": "j\x00", "enabled": "on"}
    )
    assert form.status_code == 400
    assert not RoutingPolicy.objects.exists()
