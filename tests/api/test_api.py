"""The REST API: every endpoint against every role, the voting flow, bulk imports, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import (
    Annotator,
    Candidate,
    Comparison,
    ExportJob,
    ModelEntry,
    Project,
    Prompt,
    Vote,
)
from models_backend.models import Judgment
from routing import services as routing_services
from tests.factories import ComparisonFactory, ModelEntryFactory, ProjectFactory, PromptFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "outsider", "annotator", "researcher", "admin")
USERS = {
    "outsider": "outsider_user",
    "annotator": "annotator_user",
    "researcher": "researcher_user",
    "admin": "admin_user_of_project",
}


@pytest.fixture
def pair(project: Project) -> Comparison:
    prompt = PromptFactory(project=project, turns=["Say hi."], category="chat")
    return ComparisonFactory(
        project=project,
        prompt=prompt,
        candidate_a__model=ModelEntryFactory(project=project, name="secret-alpha"),
        candidate_a__responses=["Hi!"],
        candidate_b__model=ModelEntryFactory(project=project, name="secret-beta"),
        candidate_b__responses=["Hello."],
    )


@pytest.fixture
def as_role(request: pytest.FixtureRequest):
    def client_for(role: str) -> APIClient:
        client = APIClient()
        if role != "anonymous":
            user = request.getfixturevalue(USERS[role])
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return client_for


def url(name: str, project: Project, *args: object) -> str:
    return reverse(f"api:{name}", args=[project.slug, *args])


STAFF_ONLY = {"anonymous": 401, "outsider": 403, "annotator": 403, "researcher": 200, "admin": 200}
ADMIN_ONLY = {"anonymous": 401, "outsider": 403, "annotator": 403, "researcher": 403, "admin": 201}
ANY_USER = {"anonymous": 401, "outsider": 200, "annotator": 200, "researcher": 200, "admin": 200}
ADMIN_READS = {**ADMIN_ONLY, "admin": 200}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "name", "expected"),
    [
        ("get", "project", ANY_USER),
        ("get", "models", STAFF_ONLY),
        ("get", "prompts", STAFF_ONLY),
        ("get", "candidates", STAFF_ONLY),
        ("get", "comparisons", STAFF_ONLY),
        ("get", "judgments", STAFF_ONLY),
        ("get", "leaderboard", STAFF_ONLY),
        ("get", "exports", STAFF_ONLY),
        ("get", "export-stream", STAFF_ONLY),
        ("get", "votes", ANY_USER),
        ("post", "next-pair", ANY_USER),
        ("post", "prompts", ADMIN_ONLY),
        ("post", "models", ADMIN_ONLY),
        ("post", "candidates", ADMIN_ONLY),
        ("post", "exports", {**STAFF_ONLY, "researcher": 202, "admin": 202}),
        ("get", "jobs", STAFF_ONLY),
        ("post", "jobs", {**STAFF_ONLY, "researcher": 202, "admin": 202}),
        ("get", "router", ADMIN_READS),
        ("get", "router-decisions", ADMIN_READS),
    ],
)
def test_permission_matrix(
    as_role,
    project: Project,
    pair: Comparison,
    *,
    role: str,
    method: str,
    name: str,
    expected: dict,
) -> None:
    bodies = {
        "prompts": {"external_id": f"new-{role}", "turns": ["Hello?"]},
        "models": {"name": f"model-{role}"},
        "candidates": {
            "prompt": pair.prompt_id,
            "model": "secret-alpha",
            "responses": ["Yo."],
            "settings_hash": role,
        },
        "exports": {"format": "votes"},
        "jobs": {"kind": "judge"},
    }
    if name.startswith("router"):
        routing_services.routing_policy_set(project=project, judge="test-judge")
    client = as_role(role)
    response = getattr(client, method)(url(name, project), bodies.get(name, {}), format="json")
    assert response.status_code == expected[role], response.content[:300]
    if response.status_code >= 400:
        body = response.json()
        assert body["status"] == response.status_code and body["detail"]


@pytest.mark.parametrize("role", ROLES)
def test_project_list_and_exports_files_by_role(
    as_role,
    project: Project,
    *,
    pair: Comparison,
    role: str,
    settings,
    tmp_path: Path,
    django_capture_on_commit_callbacks,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    admin = as_role("admin")
    with django_capture_on_commit_callbacks(execute=True):
        job = admin.post(
            url("exports", project), {"format": "pairs", "file_type": "parquet"}, format="json"
        ).json()
    client = as_role(role)
    listing = client.get(reverse("api:projects"))
    assert listing.status_code == (401 if role == "anonymous" else 200)
    for name in ("export", "export-download", "export-card"):
        response = client.get(url(name, project, job["id"]))
        assert response.status_code == STAFF_ONLY[role], (name, response.status_code)
        if name != "export" and response.status_code == 200:
            # What the schema documents, for the card (.md) too: it said text/markdown, which
            # the schema checks caught now and then when they hit a finished job's id.
            assert response["Content-Type"] == "application/octet-stream", name
    binary = {"HTTP_ACCEPT": "application/octet-stream"}  # as the schema documents it
    response = client.get(url("export-download", project, job["id"]), **binary)
    assert response.status_code == STAFF_ONLY[role]
    if response.status_code != 200:  # an error still reads, and is labelled, as JSON
        assert response["Content-Type"] == "application/json" and response.json()["detail"]


def test_an_annotator_votes_blind_through_the_api(
    as_role, project: Project, pair: Comparison
) -> None:
    client = as_role("annotator")
    served = client.post(url("next-pair", project))
    assert served.status_code == 200
    body = served.json()
    text = json.dumps(body)
    assert "secret-alpha" not in text and "secret-beta" not in text
    assert "candidate" not in text
    assert body["prompt"] == ["Say hi."]
    assert {body["left"]["responses"][0], body["right"]["responses"][0]} == {"Hi!", "Hello."}
    assert body["choices"] == ["left", "right", "tie", "both_bad"]
    # Asking again gives the same pair until it is voted on.
    assert client.post(url("next-pair", project)).json()["assignment"] == body["assignment"]
    voted = client.post(
        url("votes", project), {"assignment": body["assignment"], "choice": "left"}, format="json"
    )
    assert voted.status_code == 201
    vote = voted.json()
    left_model = vote["reveal"]["left"]
    left_text = body["left"]["responses"][0]
    assert left_model == ("secret-alpha" if left_text == "Hi!" else "secret-beta")
    assert vote["winner"] == ("model_a" if left_model == "secret-alpha" else "model_b")
    stored = Vote.objects.get()
    assert (stored.source, stored.choice) == ("api", "left")
    again = client.post(
        url("votes", project), {"assignment": body["assignment"], "choice": "right"}, format="json"
    )
    assert again.status_code == 409 and "already voted" in again.json()["detail"]
    assert client.post(url("next-pair", project)).status_code == 204


def test_annotators_see_only_their_own_votes(as_role, project: Project, pair: Comparison) -> None:
    for role in ("annotator", "outsider"):
        client = as_role(role)
        token = client.post(url("next-pair", project)).json()["assignment"]
        client.post(url("votes", project), {"assignment": token, "choice": "tie"}, format="json")
    mine = as_role("annotator").get(url("votes", project)).json()
    assert mine["count"] == 1
    everyone = as_role("researcher").get(url("votes", project)).json()
    assert everyone["count"] == 2 and {v["excluded"] for v in everyone["results"]} == {False}


def test_bad_votes_are_json_errors_and_change_nothing(
    as_role, project: Project, pair: Comparison
) -> None:
    client = as_role("annotator")
    token = client.post(url("next-pair", project)).json()["assignment"]
    cases = [
        ({"assignment": token, "choice": "maybe"}, 400),
        ({"assignment": "not-a-uuid", "choice": "left"}, 400),
        ({"assignment": "6f1d2c3e-0000-4000-8000-000000000000", "choice": "left"}, 404),
        ({}, 400),
    ]
    for body, expected in cases:
        response = client.post(url("votes", project), body, format="json")
        assert response.status_code == expected
        assert response.json()["status"] == expected
    malformed = client.post(url("votes", project), "{not json", content_type="application/json")
    assert malformed.status_code == 400 and "JSON" in malformed.json()["detail"]
    nested = client.post(url("votes", project), "[" * 100_000, content_type="application/json")
    assert nested.status_code == 400 and "nested too deeply" in nested.json()["detail"]
    assert Vote.objects.count() == 0


def test_a_vote_sent_to_another_arena_is_not_counted_there_or_anywhere(
    as_role, project: Project, pair: Comparison
) -> None:
    client = as_role("annotator")
    token = client.post(url("next-pair", project)).json()["assignment"]
    other = ProjectFactory()
    sent = client.post(url("votes", other), {"assignment": token, "choice": "left"}, format="json")
    assert sent.status_code == 404 and "not served" in sent.json()["detail"]
    Project.objects.filter(pk=project.pk).update(is_active=False)  # its own arena closed
    sent = client.post(url("votes", other), {"assignment": token, "choice": "left"}, format="json")
    assert sent.status_code == 404
    assert Vote.objects.count() == 0


def test_rate_limited_api_votes_get_429_with_retry_after(
    as_role, project: Project, pair: Comparison
) -> None:
    project.max_votes_per_minute = 1
    project.save()
    ComparisonFactory(project=project)
    client = as_role("annotator")
    for expected in (201, 429):
        token = client.post(url("next-pair", project)).json()["assignment"]
        response = client.post(
            url("votes", project), {"assignment": token, "choice": "left"}, format="json"
        )
        assert response.status_code == expected
    assert int(response["Retry-After"]) >= 1 and Vote.objects.count() == 1


def test_a_banned_voter_gets_the_same_error_body_as_every_refused_vote(
    as_role, project: Project, pair: Comparison, annotator_user
) -> None:
    client = as_role("annotator")
    assert client.post(url("next-pair", project)).status_code == 200  # makes the annotator
    assert Annotator.objects.filter(user=annotator_user).update(state=Annotator.State.BANNED)

    response = client.post(url("next-pair", project))

    assert response.status_code == 403
    assert response.json() == {"detail": "This account may no longer vote.", "status": 403}


def test_bulk_create_prompts_and_candidates_makes_comparisons(as_role, project: Project) -> None:
    admin = as_role("admin")
    ModelEntryFactory(project=project, name="m1")
    ModelEntryFactory(project=project, name="m2")
    prompts = admin.post(
        url("prompts", project),
        [
            {"external_id": "q1", "turns": ["One?"], "category": "math"},
            {"external_id": "q2", "turns": ["Two?"]},
        ],
        format="json",
    )
    assert prompts.status_code == 201 and len(prompts.json()) == 2
    q1 = prompts.json()[0]["id"]
    candidates = admin.post(
        url("candidates", project),
        [
            {"prompt": q1, "model": "m1", "responses": ["1"]},
            {"prompt": q1, "model": "m2", "responses": ["one"]},
        ],
        format="json",
    )
    assert candidates.status_code == 201
    assert Comparison.objects.filter(project=project, prompt_id=q1).count() == 1
    # A bad row rejects the whole request, with the row's errors.
    bad = admin.post(
        url("prompts", project),
        [{"external_id": "q3", "turns": ["Three?"]}, {"external_id": "q4", "turns": []}],
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["errors"]["1"]["turns"] and "turns" in bad.json()["detail"]
    duplicate = admin.post(
        url("prompts", project), {"external_id": "q1", "turns": ["Again?"]}, format="json"
    )
    assert duplicate.status_code == 400 and "conflicts" in duplicate.json()["detail"]
    wrong_turns = admin.post(
        url("candidates", project),
        {"prompt": q1, "model": "m1", "responses": ["a", "b"], "settings_hash": "x"},
        format="json",
    )
    assert wrong_turns.status_code == 400
    assert project.prompts.count() == 2


def test_lists_paginate_and_filter(as_role, project: Project, pair: Comparison) -> None:
    Judgment.objects.create(
        comparison=pair, judge="j1", verdict="tie", p_a=0.3, p_b=0.3, p_tie=0.4, consistent=True
    )
    client = as_role("researcher")
    for index in range(3):
        PromptFactory(project=project, category="math", external_id=f"math-{index}")
    page = client.get(url("prompts", project), {"page_size": 2, "category": "math"}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    (listed,) = client.get(url("judgments", project), {"judge": "j1"}).json()["results"]
    assert (listed["p_a"], listed["p_b"], listed["p_tie"]) == (0.3, 0.3, 0.4)
    assert client.get(url("judgments", project), {"judge": "j2"}).json()["count"] == 0
    # A verdict imported without probabilities (stored as zeros) reports none, as exports do.
    Judgment.objects.create(
        comparison=pair, judge="j2", verdict="tie", p_a=0, p_b=0, p_tie=0, consistent=False
    )
    (imported,) = client.get(url("judgments", project), {"judge": "j2"}).json()["results"]
    assert (imported["p_a"], imported["p_b"], imported["p_tie"]) == (None, None, None)
    bad = client.get(url("votes", project), {"since": "last week"})
    assert bad.status_code == 400 and "ISO date" in bad.json()["detail"]
    bad = client.get(url("comparisons", project), {"route": "robots"})
    assert bad.status_code == 400
    assert client.get(url("comparisons", project), {"model": "secret-alpha"}).json()["count"] == 1


def test_streamed_export_and_unknown_endpoints(
    as_role, project: Project, pair: Comparison, settings
) -> None:
    client = as_role("annotator")
    token = client.post(url("next-pair", project)).json()["assignment"]
    client.post(url("votes", project), {"assignment": token, "choice": "right"}, format="json")
    researcher = as_role("researcher")
    response = researcher.get(url("export-stream", project), {"format": "dpo"})
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    # A client asking for the type the schema documents gets it (it got 406).
    accepted = researcher.get(
        url("export-stream", project), {"format": "dpo"}, HTTP_ACCEPT="application/x-ndjson"
    )
    assert accepted.status_code == 200
    (row,) = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert row["label_source"] == "human" and row["chosen"][0]["role"] == "assistant"
    bad = researcher.get(url("export-stream", project), {"format": "csv"})
    assert bad.status_code == 400 and "format must be one of" in bad.json()["detail"]
    settings.EXPORT_STREAM_MAX_COMPARISONS = 0
    big = researcher.get(url("export-stream", project), {"format": "dpo"})
    assert big.status_code == 400 and "run it as a job" in big.json()["detail"]
    missing = researcher.get("/api/v1/nothing-here/")
    assert missing.status_code == 404 and missing.json()["detail"] == "No such API endpoint."
    assert researcher.get(reverse("api:project", args=["no-such-arena"])).status_code == 404


def test_schema_and_docs_are_served_without_a_cdn(as_role) -> None:
    client = as_role("researcher")
    schema = client.get(reverse("api:schema"), HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/projects/{slug}/comparisons/next/" in paths
    docs = client.get(reverse("api:docs")).content.decode()
    assert "swagger-ui" in docs and "cdn.jsdelivr" not in docs


def test_the_api_root_lists_the_main_endpoints_schema_and_docs(as_role, project: Project) -> None:
    response = as_role("anonymous").get("/api/v1/")
    assert response.status_code == 200
    root = response.json()
    base = "http://testserver/api/v1/"
    assert root["projects"] == f"{base}projects/"
    assert root["project"] == f"{base}projects/{{slug}}/"
    assert root["next_pair"] == f"{base}projects/{{slug}}/comparisons/next/"
    assert root["votes"] == f"{base}projects/{{slug}}/votes/"
    assert root["leaderboard"] == f"{base}projects/{{slug}}/leaderboard/"
    assert root["exports"] == f"{base}projects/{{slug}}/exports/"
    assert root["export_stream"] == f"{base}projects/{{slug}}/export/"
    assert root["router"] == f"{base}projects/{{slug}}/router/"
    assert root["router_decisions"] == f"{base}projects/{{slug}}/router/decisions/"
    assert (root["schema"], root["docs"]) == (f"{base}schema/", f"{base}docs/")
    researcher = as_role("researcher")
    for key in ("projects", "schema", "docs"):
        assert researcher.get(root[key]).status_code == 200, key
    for key in ("project", "models", "comparisons", "judgments", "leaderboard", "exports"):
        filled = root[key].replace("{slug}", project.slug)
        assert researcher.get(filled).status_code == 200, key


def test_the_api_root_refuses_post(as_role) -> None:
    response = as_role("researcher").post("/api/v1/")
    assert response.status_code == 405 and response.json()["status"] == 405


def test_a_post_to_no_endpoint_with_a_session_gets_the_json_404(researcher_user) -> None:
    """Not Django's HTML page about a missing CSRF token."""
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(researcher_user)
    missing = browser.post("/api/v1/projects/demo/jobs/0/x/cancel/")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "No such API endpoint.", "status": 404}


def test_a_body_without_a_content_type_gets_a_documented_415(as_role, project: Project) -> None:
    """What schemathesis sent now and then (a raw body, no Content-Type): a 415 the schema did
    not list, so the schema test failed one run in ten."""
    response = as_role("admin").generic("POST", url("votes", project), "\xadÌ", content_type="")
    assert response.status_code == 415
    assert response.json() == {"detail": 'Unsupported media type "" in request.', "status": 415}
    paths = as_role("anonymous").get(reverse("api:schema"), {"format": "json"}).json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert ("415" in operation["responses"]) == ("requestBody" in operation), (path, method)
            if path.endswith("/cancel/"):  # the 409's body is an Error like every other
                conflict = operation["responses"]["409"]["content"]["application/json"]
                assert conflict["schema"]["$ref"] == "#/components/schemas/Error"


def test_the_schema_comes_as_json_or_yaml_as_asked(as_role) -> None:
    client = as_role("anonymous")
    as_json = client.get(reverse("api:schema"), {"format": "json"})
    assert as_json.status_code == 200
    assert as_json["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert as_json["Content-Disposition"].endswith('.json"')
    assert "/api/v1/projects/{slug}/votes/" in as_json.json()["paths"]
    for query in ({"format": "yaml"}, {}):
        as_yaml = client.get(reverse("api:schema"), query)
        assert as_yaml.status_code == 200
        assert as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
        assert as_yaml.content.startswith(b"openapi: ")
    assert client.get(reverse("api:schema"), {"format": "xml"}).status_code == 404


def test_the_schema_says_bulk_posts_take_a_list_and_keeps_get_filters_on_get(as_role) -> None:
    paths = as_role("anonymous").get(reverse("api:schema"), {"format": "json"}).json()["paths"]
    for name, schema in (
        ("models", "ModelEntry"),
        ("prompts", "Prompt"),
        ("candidates", "Candidate"),
    ):
        post = paths[f"/api/v1/projects/{{slug}}/{name}/"]["post"]
        assert list(post["requestBody"]["content"]) == ["application/json"]
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{schema}OneOrManyRequest"
    for path, operations in paths.items():
        post = operations.get("post", {}).get("parameters", [])
        queries = {p["name"] for p in post if p["in"] == "query"}
        assert not queries - {"format"}, (path, queries)
    gets = {p["name"] for p in paths["/api/v1/projects/{slug}/votes/"]["get"]["parameters"]}
    assert {"since", "until", "category", "source", "state", "comparison"} <= gets


def test_token_from_the_management_command_authenticates(
    project: Project, pair: Comparison
) -> None:
    import io

    from django.core.management import call_command

    user = get_user_model().objects.create_user("scripter", password="x-pass-123")
    out = io.StringIO()
    call_command("drf_create_token", "scripter", stdout=out)
    key = Token.objects.get(user=user).key
    assert key in out.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(reverse("api:project", args=[project.slug])).status_code == 200
    assert ExportJob.objects.count() == 0


@pytest.mark.parametrize("limit", ["DATA_UPLOAD_MAX_MEMORY_SIZE", "DATA_UPLOAD_MAX_NUMBER_FIELDS"])
def test_a_body_django_refuses_to_read_is_a_json_400(
    as_role, project: Project, settings, limit: str
) -> None:
    setattr(settings, limit, 10)
    client = as_role("admin")
    fields = "&".join(f"f{i}=ccccc" for i in range(20))
    response = client.post(
        url("candidates", project), fields, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "could not be read" in response.json()["detail"]


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("candidates", {"model": "m1\x00", "responses": ["Hi"]}),
        ("candidates", {"model": "m1", "responses": ["Hi"], "metadata": {"k": "v\x00"}}),
        ("candidates", {"model": "m1", "responses": ["Hi"], "metadata": {"k\x00": 1}}),
        ("candidates", {"model": "m1", "responses": ["H\x00i"]}),
        ("candidates", {"model": "m1", "responses": ["half an emoji \ud83d"]}),
        ("prompts", {"external_id": "q\x00", "turns": ["One?"]}),
        ("models", {"name": "m\x00", "backend_config": {}}),
        ("models", {"name": "m3", "backend_config": {"source": "\x00"}}),
    ],
)
def test_a_nul_character_anywhere_is_a_400_not_a_server_error(
    as_role, project: Project, endpoint: str, body: dict
) -> None:
    # PostgreSQL stores no NUL in text or jsonb: refused before it gets there, nothing stored.
    admin = as_role("admin")
    ModelEntryFactory(project=project, name="m1")
    prompt = PromptFactory(project=project, turns=["Say hi."])
    if endpoint == "candidates":
        body = {**body, "prompt": prompt.pk}
    before = (Candidate.objects.count(), Prompt.objects.count(), ModelEntry.objects.count())
    # As a client sends it: "\u0000" and "\ud83d" escaped in the JSON text.
    response = admin.post(url(endpoint, project), json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert (Candidate.objects.count(), Prompt.objects.count(), ModelEntry.objects.count()) == before


def test_a_vote_imported_without_its_side_claims_no_left_or_right(
    project: Project, as_role, tmp_path
) -> None:
    from annotation.exports.card import ExportStats
    from annotation.exports.options import parse_options
    from annotation.exports.service import export_records
    from annotation.review import annotator_evidence
    from annotation.vote_import import votes_import

    comparison = ComparisonFactory(project=project)
    path = tmp_path / "votes.jsonl"
    path.write_text(
        json.dumps({"annotator": "expert_9", "comparison": comparison.pk, "winner": "model_b"})
        + "\n"
    )
    votes_import(project=project, path=path)
    (served,) = as_role("researcher").get(url("votes", project)).json()["results"]
    assert (served["winner"], served["shown_left"], served["choice"]) == ("model_b", None, None)
    assert served["reveal"] is None
    assert served["created_at"] is None  # no time in the file: not the import's time
    options = parse_options({"format": "votes", "source": "human"})
    (row,) = export_records(project, options, ExportStats(), None)
    assert (row["winner"], row["shown_left"], row["choice"]) == ("model_b", None, None)
    assert row["created_at"] is None
    # The reviewer's tally does not count it as a left or a right click either.
    evidence = annotator_evidence(project, Vote.objects.get().annotator)
    assert (evidence.choices["left"], evidence.choices["right"]) == (0, 0)
    assert evidence.choices["unsided"] == 1
    assert [choice for *_, choice in evidence.timeline] == ["unsided"]
    assert evidence.recent[0].recorded_choice is None


@pytest.mark.parametrize("value", ["abc", "\u00b2", "99999999999999999999999", "-1"])
def test_a_vote_filter_that_is_no_comparison_id_is_a_400(
    project: Project, as_role, value: str
) -> None:
    response = as_role("researcher").get(url("votes", project), {"comparison": value})
    assert response.status_code == 400
    assert response.json()["detail"] == "comparison must be a comparison id"
    response = as_role("admin").get(url("candidates", project), {"prompt": value})
    assert response.status_code == 400
    assert response.json()["detail"] == "prompt must be a prompt id"


def test_a_models_config_and_a_candidates_metadata_are_json_objects_checked_on_save(
    as_role, project: Project, pair: Comparison
) -> None:
    admin = as_role("admin")
    for config, message in (
        ("str", "must be a JSON object"),
        (["a"], "must be a JSON object"),
        ({"dtype": "float77"}, "dtype must be one of"),
    ):
        body = {"name": "m", "backend": "transformers", "backend_config": config}
        response = admin.post(url("models", project), body, format="json")
        assert response.status_code == 400, config
        assert message in json.dumps(response.json())
    body = {"prompt": pair.prompt_id, "model": "secret-alpha", "responses": ["x"]}
    response = admin.post(url("candidates", project), {**body, "metadata": "str"}, format="json")
    assert response.status_code == 400 and "must be a JSON object" in json.dumps(response.json())


def test_an_export_job_takes_a_plain_date_as_the_cli_does(
    as_role, project: Project, pair: Comparison, settings, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    admin = as_role("admin")
    body = {"format": "votes", "since": "2024-01-01", "until": "2024-02-01T00:00:00Z"}
    response = admin.post(url("exports", project), body, format="json")
    assert response.status_code == 202, response.json()  # accepted: a job runs it
    assert response.json()["options"]["since"].startswith("2024-01-01T00:00:00")
    bad = admin.post(url("exports", project), {"since": "yesterday"}, format="json")
    assert bad.status_code == 400 and "since" in json.dumps(bad.json())
    # A misspelt field is an error, not an export without it ({"output": "parquet"} made a
    # JSON Lines file; {"categorys": ...} would export every category).
    jobs = ExportJob.objects.count()
    typo = admin.post(
        url("exports", project), {"format": "votes", "output": "parquet"}, format="json"
    )
    assert typo.status_code == 400 and "output" in typo.json()["errors"]
    assert "unknown field" in json.dumps(typo.json())
    assert ExportJob.objects.count() == jobs
