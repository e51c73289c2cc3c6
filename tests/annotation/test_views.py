"""The voting page and its htmx endpoints, through the test client."""

from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.views.defaults import permission_denied
from pytest_django.asserts import assertTemplateUsed

from annotation.models import Annotator, Assignment, Project, Vote
from annotation.rendering import render_markdown
from tests.factories import ComparisonFactory, ModelEntryFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def arena_url(project: Project) -> str:
    return reverse("annotation:arena", args=[project.slug])


def vote_url(project: Project) -> str:
    return reverse("annotation:arena-vote", args=[project.slug])


def served(client: Client, project: Project) -> Assignment:
    response = client.get(arena_url(project))
    assert response.status_code == 200
    return Assignment.objects.filter(vote__isnull=True).latest("served_at")


def test_it_shows_a_pair_without_model_names(client: Client, project: Project) -> None:
    a = ModelEntryFactory(project=project, name="secret-model-alpha")
    b = ModelEntryFactory(project=project, name="secret-model-beta")
    ComparisonFactory(project=project, candidate_a__model=a, candidate_b__model=b)
    response = client.get(arena_url(project))
    html = response.content.decode()
    assert response.status_code == 200
    assert "A is better" in html and "Both are bad" in html
    assert "secret-model-alpha" not in html and "secret-model-beta" not in html
    assert "htmx-2.0.11.min.js" in html and "//unpkg" not in html and "cdn" not in html.lower()
    assert "{#" not in html and "{%" not in html  # a template comment shown as text


def test_no_template_comment_spans_lines() -> None:
    """Django's {# #} holds one line only: one over two lines was shown to every voter."""
    for template in (django_settings.BASE_DIR / "templates").rglob("*.html"):
        for number, line in enumerate(template.read_text().splitlines(), start=1):
            assert line.count("{#") == line.count("#}"), f"{template}:{number}"


def test_it_votes_with_htmx_and_returns_the_reveal_and_next_pair(
    client: Client, project: Project
) -> None:
    ComparisonFactory.create_batch(2, project=project)
    assignment = served(client, project)
    response = client.post(
        vote_url(project),
        {"assignment": str(assignment.token), "choice": "tie"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # a fragment, not the page
    assert 'data-testid="reveal"' in html
    assert assignment.comparison.candidate_a.model.name in html
    assert assignment.comparison.candidate_b.model.name in html
    next_assignment = Assignment.objects.filter(vote__isnull=True).get()
    assert str(next_assignment.token) in html
    vote = Vote.objects.get()
    assert (vote.choice, vote.winner, vote.assignment) == ("tie", "tie", assignment)


def test_a_right_to_left_model_name_cannot_reorder_the_reveal(
    client: Client, project: Project
) -> None:
    """A name holding U+202E (right-to-left override) flipped the rest of the sentence, so "A
    was x, B was y" read with the names swapped; each name is isolated in <bdi> now."""
    tricky = ModelEntryFactory(project=project, name="model\u202e-a")
    ComparisonFactory(project=project, candidate_a__model=tricky)
    assignment = served(client, project)
    response = client.post(
        vote_url(project),
        {"assignment": str(assignment.token), "choice": "left"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert '<bdi class="model-name" data-testid="reveal-left">' in html
    assert "model\u202e-a</bdi>" in html


def test_it_hides_names_after_vote_when_project_says_so(client: Client) -> None:
    project = ProjectFactory(reveal_models=False)
    comparison = ComparisonFactory(project=project)
    assignment = served(client, project)
    response = client.post(
        vote_url(project),
        {"assignment": str(assignment.token), "choice": "left"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert comparison.candidate_a.model.name not in response.content.decode()


def test_it_works_without_javascript(client: Client, project: Project) -> None:
    ComparisonFactory.create_batch(2, project=project)
    assignment = served(client, project)
    response = client.post(
        vote_url(project), {"assignment": str(assignment.token), "choice": "left"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(arena_url(project) + "?after=")
    page = client.get(response["Location"]).content.decode()
    assert 'data-testid="reveal"' in page
    assert Vote.objects.count() == 1


@pytest.mark.parametrize("choice", ["", "middle", "LEFT"])
def test_it_rejects_an_unknown_choice_with_400(
    client: Client, project: Project, choice: str
) -> None:
    ComparisonFactory(project=project)
    assignment = served(client, project)
    response = client.post(
        vote_url(project),
        {"assignment": str(assignment.token), "choice": choice},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "Unknown choice" in response.content.decode()
    assert response["HX-Retarget"] == "#arena-error"
    assert Vote.objects.count() == 0


def test_it_rejects_a_replayed_vote_with_409(client: Client, project: Project) -> None:
    ComparisonFactory.create_batch(2, project=project)
    assignment = served(client, project)
    data = {"assignment": str(assignment.token), "choice": "left"}
    assert client.post(vote_url(project), data, HTTP_HX_REQUEST="true").status_code == 200
    replay = client.post(vote_url(project), {**data, "choice": "right"}, HTTP_HX_REQUEST="true")
    assert replay.status_code == 409
    assert "already voted" in replay.content.decode()
    assert list(Vote.objects.values_list("choice", flat=True)) == ["left"]


def test_it_rejects_a_vote_on_a_pair_served_to_someone_else(project: Project) -> None:
    ComparisonFactory(project=project)
    alice, mallory = Client(), Client()
    assignment = served(alice, project)
    response = mallory.post(
        vote_url(project), {"assignment": str(assignment.token), "choice": "left"}
    )
    assert response.status_code == 404
    assert "not served to you" in response.content.decode()
    assert Vote.objects.count() == 0
    # A vote from a client with no session cannot be on its pair: it leaves no profile behind.
    assert Annotator.objects.count() == 1


def test_it_refuses_get_on_the_vote_endpoint(client: Client, project: Project) -> None:
    assert client.get(vote_url(project)).status_code == 405


def test_it_404s_for_an_unknown_or_inactive_arena(client: Client) -> None:
    assert client.get("/arena/nope/").status_code == 404
    hidden = ProjectFactory(is_active=False)
    assert client.get(arena_url(hidden)).status_code == 404


def test_it_sends_anonymous_users_to_login_when_required(client: Client) -> None:
    project = ProjectFactory(login_required=True)
    ComparisonFactory(project=project)
    response = client.get(arena_url(project))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert Annotator.objects.count() == 0


def test_htmx_gets_a_reload_or_the_login_not_a_page_to_nest(project: Project) -> None:
    """A whole page answering htmx (a CSRF refusal after a login elsewhere, a login redirect
    once the session ended) is not swapped into the pair: the page reloads or goes there."""
    ComparisonFactory.create_batch(2, project=project)
    client = Client(enforce_csrf_checks=True)
    assignment = served(client, project)
    body = {"assignment": str(assignment.token), "choice": "left"}
    refused = client.post(vote_url(project), body, HTTP_HX_REQUEST="true")
    assert refused.status_code == 200 and refused["HX-Refresh"] == "true"
    assert Vote.objects.count() == 0
    # A refused vote's own message is a fragment, still swapped into the pair.
    client = Client()
    assignment = served(client, project)
    body = {"assignment": str(assignment.token), "choice": "maybe"}
    response = client.post(vote_url(project), body, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "HX-Refresh" not in response
    Project.objects.filter(pk=project.pk).update(login_required=True)
    client.cookies.clear()
    response = client.get(arena_url(project), HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"].startswith(reverse("login"))


def test_it_gives_anonymous_annotators_one_pseudonym_per_session(
    client: Client, project: Project
) -> None:
    ComparisonFactory.create_batch(2, project=project)
    client.get(arena_url(project))
    client.get(arena_url(project))
    assert Annotator.objects.count() == 1
    assert Annotator.objects.get().pseudonym.startswith("anon-")


def test_clients_that_drop_the_cookie_cannot_hold_every_pair_from_one_network(
    project: Project, settings
) -> None:
    """A script fetching the page without a cookie jar made a new annotator, and held a slot
    for 15 minutes, on every request: 1,450 requests left real voters with "All done"."""
    settings.ARENA_MAX_OPEN_PAIRS_PER_NETWORK = 3
    ComparisonFactory.create_batch(10, project=project)
    for _ in range(6):
        Client().get(arena_url(project))  # a fresh client each time: no cookie comes back
    assert Assignment.objects.filter(vote__isnull=True).count() == 3
    annotators = Annotator.objects.count()
    response = Client().get(arena_url(project))
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    refused = response.content.decode()
    assert 'data-testid="refused"' in refused and "from your network" in refused
    assert Annotator.objects.count() == annotators  # a refused visitor leaves no profile behind
    # Voters elsewhere, and logged-in voters on this network, are served as before.
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    assert served(elsewhere, project).annotator.created_ip_hash != ""
    member = Client()
    member.force_login(UserFactory(username="lin"))
    assert 'data-testid="refused"' not in member.get(arena_url(project)).content.decode()
    assert Assignment.objects.filter(vote__isnull=True).count() == 5


def test_a_voter_keeps_their_pair_when_the_network_is_full(project: Project, settings) -> None:
    settings.ARENA_MAX_OPEN_PAIRS_PER_NETWORK = 1
    ComparisonFactory.create_batch(4, project=project)
    voter = Client()
    first = served(voter, project)
    assert served(voter, project) == first  # a reload shows the same pair
    client_post = voter.post(vote_url(project), {"assignment": str(first.token), "choice": "tie"})
    assert client_post.status_code == 302
    # A cookieless request took the slot the vote freed; someone who votes is not capped.
    Client().get(arena_url(project))
    assert Assignment.objects.filter(vote__isnull=True).count() == 1
    following = served(voter, project)
    assert following.annotator == first.annotator and following.comparison != first.comparison


def test_behind_a_proxy_each_client_address_is_its_own_network(project: Project, settings) -> None:
    """Behind the TLS proxy the README recommends, REMOTE_ADDR is the proxy's: every visitor
    shared one network, so 50 open pairs refused everyone new."""
    settings.ARENA_MAX_OPEN_PAIRS_PER_NETWORK = 1
    settings.BEHIND_PROXY = True
    ComparisonFactory.create_batch(4, project=project)
    # The proxy appends the address it saw; what the client wrote before it is not trusted.
    for forwarded in ("198.51.100.1", "10.0.0.9, 198.51.100.2", "198.51.100.1, 198.51.100.3"):
        Client(HTTP_X_FORWARDED_FOR=forwarded).get(arena_url(project))
    assert Assignment.objects.filter(vote__isnull=True).count() == 3
    spoofed = Client(HTTP_X_FORWARDED_FOR="203.0.113.7, 198.51.100.1").get(arena_url(project))
    assert 'data-testid="refused"' in spoofed.content.decode()


def log_in(client: Client, username: str) -> None:
    UserFactory(username=username, password="a-long-password")
    response = client.post(reverse("login"), {"username": username, "password": "a-long-password"})
    assert response.status_code == 302


def test_an_anonymous_annotator_who_logs_in_keeps_their_votes_and_open_pair(
    client: Client, project: Project
) -> None:
    ComparisonFactory.create_batch(3, project=project)
    voted = served(client, project)
    client.post(vote_url(project), {"assignment": str(voted.token), "choice": "left"})
    open_pair = served(client, project)
    log_in(client, "ada")
    # The pair on screen before the login is still theirs, and the voted one never returns.
    assert served(client, project) == open_pair
    annotator = Annotator.objects.get()  # the pseudonym became ada's: no second profile
    assert annotator.user.username == "ada"
    assert annotator.votes.get().assignment == voted
    client.post(vote_url(project), {"assignment": str(open_pair.token), "choice": "tie"})
    last = served(client, project)
    assert last.comparison not in {voted.comparison, open_pair.comparison}


def test_a_login_keeps_the_users_own_profile_and_a_banned_browser_stays_banned(
    client: Client, project: Project
) -> None:
    ComparisonFactory.create_batch(2, project=project)
    served(client, project)
    banned = Annotator.objects.get()
    Annotator.objects.filter(pk=banned.pk).update(state=Annotator.State.BANNED)
    log_in(client, "mallory")
    response = client.get(arena_url(project))
    assert Annotator.objects.get(pk=banned.pk).user.username == "mallory"
    assert "may no longer vote" in response.content.decode()
    # A user who already has a profile keeps it; the session's stays anonymous.
    other = Client()
    served(other, project)
    anonymous = Annotator.objects.get(user__isnull=True)
    own = Annotator.objects.create(user=UserFactory(username="grace"), pseudonym="grace-1")
    other.force_login(own.user)
    served(other, project)
    assert Annotator.objects.get(user__username="grace") == own
    assert Annotator.objects.get(pk=anonymous.pk).user is None
    # The pair the anonymous session held is given back, not kept for 15 minutes.
    live = Assignment.objects.filter(expires_at__gt=timezone.now(), vote__isnull=True)
    assert not live.filter(annotator=anonymous).exists()


def test_a_vote_posted_to_another_arena_is_refused(client: Client, project: Project) -> None:
    ComparisonFactory(project=project)
    assignment = served(client, project)
    other = ProjectFactory()
    response = client.post(vote_url(other), {"assignment": str(assignment.token), "choice": "left"})
    assert response.status_code == 404
    assert Vote.objects.count() == 0


def test_the_arena_page_is_never_cached(client: Client, project: Project) -> None:
    """Back after a vote showed the voted pair from the browser's cache; voting on it again
    was refused as a replay. The page is now fetched anew, with the pair actually open."""
    ComparisonFactory(project=project)
    response = client.get(arena_url(project))
    assert "no-store" in response["Cache-Control"]
    assert "no-store" in client.get(arena_url(project), HTTP_HX_REQUEST="true")["Cache-Control"]


def test_it_serves_the_pair_fragment_for_htmx(client: Client, project: Project) -> None:
    ComparisonFactory(project=project)
    response = client.get(arena_url(project), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="pair"')


def test_it_says_when_nothing_is_left(client: Client, project: Project) -> None:
    response = client.get(arena_url(project))
    assert 'data-testid="done"' in response.content.decode()


def test_it_escapes_hostile_outputs_and_model_names(client: Client, project: Project) -> None:
    evil = ModelEntryFactory(project=project, name='<img src=x onerror="alert(1)">')
    comparison = ComparisonFactory(
        project=project,
        prompt__turns=["<script>alert('prompt')</script> hello"],
        candidate_a__model=evil,
        candidate_a__responses=[
            "<script>alert(1)</script><img src=x onerror=alert(2)> [x](javascript:alert(3))"
        ],
    )
    assignment = served(client, project)
    page = client.get(arena_url(project)).content.decode()
    response = client.post(
        vote_url(project),
        {"assignment": str(assignment.token), "choice": "left"},
        HTTP_HX_REQUEST="true",
    )
    reveal = response.content.decode()
    for html in (page, reveal):
        assert "<script>alert" not in html
        assert "<img" not in html
        assert "javascript:alert" not in html
    # What the model wrote is shown as text, escaped, not dropped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in reveal
    assert comparison.pk == assignment.comparison_id


def test_it_shows_guidelines_as_sanitized_markdown(client: Client) -> None:
    project = ProjectFactory(guidelines="# Rules\n\n<script>alert(1)</script>**bold**")
    html = client.get(reverse("annotation:guidelines", args=[project.slug])).content.decode()
    assert "<h1>Rules</h1>" in html and "<strong>bold</strong>" in html
    assert "<script>alert" not in html


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Thanks,\n<your name>", "Thanks,<br>\n&lt;your name&gt;"),
        ("Use List<int> or <T>.", "Use List&lt;int&gt; or &lt;T&gt;."),
        ("<b>not bold</b> but **bold**", "&lt;b&gt;not bold&lt;/b&gt; but <strong>bold</strong>"),
        ("```\n<div>x</div>\n```", "<pre><code>&lt;div&gt;x&lt;/div&gt;"),
        # An image loads nothing and keeps its description (the alt text used to vanish).
        ("![a cat](https://x.org/c.png)", '<a href="https://x.org/c.png" rel='),
        ("![a cat](https://x.org/c.png)", ">[image: a cat]</a>"),
        ("![](javascript:alert(1))", '<a rel="noopener noreferrer nofollow">[image: no'),
    ],
)
def test_an_answer_that_looks_like_html_is_shown_as_written(text: str, shown: str) -> None:
    # A model's `<placeholder>` or `List<int>` is part of its answer: dropping it (as a
    # sanitizer drops unknown tags) would change what annotators judge.
    assert shown in render_markdown(text)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # Markdown ate the backslashes of LaTeX delimiters and italicised a*b*c: the math
        # annotators judged was not the math the model wrote.
        (r"So \(a*b*c = 6\) holds.", r'So <span class="math">\(a*b*c = 6\)</span> holds.'),
        (r"\[x_1 * x_2 * x_3\]", r'<span class="math">\[x_1 * x_2 * x_3\]</span>'),
        ("Area $a*b*c$ here", 'Area <span class="math">$a*b*c$</span> here'),
        ("$$\\sum_i *x_i*$$", '<span class="math">$$\\sum_i *x_i*$$</span>'),
        # Prices are not math; markdown still works outside math; HTML in math stays text.
        ("From $5 to $10 and **bold**", "From $5 to $10 and <strong>bold</strong>"),
        (r"\(<script>alert(1)</script>\)", r"\(&lt;script&gt;alert(1)&lt;/script&gt;\)"),
    ],
)
def test_math_is_shown_as_the_model_wrote_it(text: str, shown: str) -> None:
    assert shown in render_markdown(text)


def test_leaderboard_is_for_researchers_and_admins(
    client: Client,
    project: Project,
    researcher_user,
    annotator_user,
    outsider_user,
) -> None:
    url = reverse("annotation:leaderboard", args=[project.slug])
    assert client.get(url).status_code == 403
    client.force_login(annotator_user)
    assert client.get(url).status_code == 403
    client.force_login(outsider_user)
    assert client.get(url).status_code == 403
    client.force_login(researcher_user)
    response = client.get(url)
    assert response.status_code == 200
    assert (
        client.get(url, HTTP_HX_REQUEST="true")
        .content.decode()
        .lstrip()
        .startswith('<section id="board"')
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("annotation:leaderboard", "Log in as a researcher or admin of this arena."),
        ("annotation:exports", "Log in as a researcher or admin of this arena."),
        ("annotation:review", "Log in as an admin of this arena."),
    ],
)
def test_it_tells_anonymous_visitors_to_log_in_on_a_staff_page(
    client: Client, project: Project, name: str, message: str
) -> None:
    path = reverse(name, args=[project.slug]) + "?category=x&page=2"
    response = client.get(path)
    html = response.content.decode()
    assert response.status_code == 403
    assertTemplateUsed(response, "403.html")
    assert message in html
    login = f"{reverse('login')}?next={quote(path, safe='/')}"
    assert f'<a href="{escape(login)}" data-testid="denied-login">Log in</a>' in html


def test_it_tells_a_member_without_the_role_why_a_page_is_refused(
    client: Client, project: Project, annotator_user
) -> None:
    client.force_login(annotator_user)
    response = client.get(reverse("annotation:leaderboard", args=[project.slug]))
    html = response.content.decode()
    assert response.status_code == 403
    assert "Only researchers and admins of this arena may see this." in html
    assert "logged in as annotator" in html
    assert 'data-testid="denied-login"' not in html


def test_it_escapes_the_refusal_message(rf: RequestFactory) -> None:
    request = rf.get("/arena/demo/leaderboard/")
    request.user = AnonymousUser()
    html = permission_denied(request, PermissionDenied("<script>alert(1)</script>")).content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert b"<script>alert(1)" not in html


def test_leaderboard_shows_live_elo_after_votes(
    client: Client,
    project: Project,
    admin_user_of_project,
    django_capture_on_commit_callbacks,
) -> None:
    comparison = ComparisonFactory(project=project)
    assignment = served(client, project)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(vote_url(project), {"assignment": str(assignment.token), "choice": "left"})
    client.force_login(admin_user_of_project)
    html = client.get(reverse("annotation:leaderboard", args=[project.slug])).content.decode()
    assert comparison.candidate_a.model.name in html
    assert "1002" in html or "998" in html  # one K=4 vote moves each side by 2 points


def test_a_failing_live_elo_refresh_never_fails_the_vote_it_follows(
    client: Client,
    project: Project,
    *,
    settings,
    monkeypatch,
    caplog,
    django_capture_on_commit_callbacks,
) -> None:
    """The demo runs tasks in-process: a refresh that hits a locked SQLite database (and
    retries itself) used to turn a saved vote into a 500."""
    from django.db import OperationalError

    from annotation import services

    def locked(**_kwargs):
        raise OperationalError("database is locked")

    settings.CELERY_TASK_ALWAYS_EAGER = True
    monkeypatch.setattr(services, "elo_refresh", locked)
    ComparisonFactory.create_batch(2, project=project)
    assignment = served(client, project)
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        response = client.post(
            vote_url(project),
            {"assignment": str(assignment.token), "choice": "left"},
            HTTP_HX_REQUEST="true",
        )
    assert len(hooks) == 1  # the refresh did run, and failed
    assert response.status_code == 200
    assert 'data-testid="reveal"' in response.content.decode()
    assert Vote.objects.get().assignment == assignment
    assert "enqueue_on_commit(annotation.tasks.elo_refresh_task)" in caplog.text
    assert "database is locked" in caplog.text


@contextmanager
def _broker_down(app):
    """Publish through a broker address nothing listens on, then back to the real one."""
    from benchmarks.faults import free_port

    real = app.conf.broker_write_url
    app.conf.broker_write_url = f"redis://127.0.0.1:{free_port()}/0"
    app._pool = app.amqp._producer_pool = None  # the cached connections to the real broker
    try:
        yield
    finally:
        app.conf.broker_write_url = real
        app._pool = app.amqp._producer_pool = None


def test_a_broker_that_refuses_the_live_elo_refresh_never_fails_the_vote(
    client: Client, project: Project, settings, caplog, django_capture_on_commit_callbacks
) -> None:
    from prefarena.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ComparisonFactory.create_batch(2, project=project)
    assignment = served(client, project)
    with _broker_down(app), django_capture_on_commit_callbacks(execute=True) as hooks:
        response = client.post(
            vote_url(project),
            {"assignment": str(assignment.token), "choice": "right"},
            HTTP_HX_REQUEST="true",
        )
    assert len(hooks) == 1
    assert response.status_code == 200
    assert Vote.objects.get().assignment == assignment
    assert "enqueue_on_commit(annotation.tasks.elo_refresh_task)" in caplog.text
    assert "Connection refused" in caplog.text


def test_the_admin_says_what_is_wrong_with_a_projects_numbers(admin_client: Client) -> None:
    form = {
        "slug": "new-arena",
        "title": "New arena",
        "votes_per_comparison": 3,
        "gold_rate": 0,
        "max_votes_per_minute": 20,
        "max_votes_per_day": 1000,
        "is_active": "on",
        "reveal_models": "on",
        "allow_tie": "on",
        "allow_both_bad": "on",
        "created_at_0": "2026-12-01",
        "created_at_1": "10:00:00",
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
    }
    add = reverse("admin:annotation_project_add")
    for field, value, message in (
        ("gold_rate", "2", "less than or equal to 1.0"),
        ("votes_per_comparison", "0", "greater than or equal to 1"),
        ("max_votes_per_day", "99999999999", "less than or equal to 2147483647"),
    ):
        response = admin_client.post(add, {**form, field: value})
        body = response.content.decode()
        assert response.status_code == 200 and message in body, field
        assert "Constraint" not in body  # the database's names are no message for people
    assert not Project.objects.filter(slug="new-arena").exists()
    assert admin_client.post(add, form).status_code == 302  # the rest of the form was fine
