"""The voting page in a real browser: anonymity, keyboard and click voting over htmx, the
no-JavaScript fallback, hostile model outputs, the phone layout and the leaderboard."""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Dialog, Page, expect

from annotation.models import Annotator, Assignment, Project, Vote
from annotation.rendering import render_markdown
from routing import services as routing_services
from routing.models import RouteDecision
from tests.browser.conftest import DEMO_ADMIN_PASSWORD, DEMO_SLUG
from tests.factories import (
    CandidateFactory,
    ComparisonFactory,
    ModelEntryFactory,
    ProjectFactory,
    PromptFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARENA = f"/arena/{DEMO_SLUG}/"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot-arena.png"

# The winner each side's choice must be stored as, given which candidate was shown left.
EXPECTED_WINNER = {
    ("left", True): "model_a",
    ("left", False): "model_b",
    ("right", True): "model_b",
    ("right", False): "model_a",
    ("tie", True): "tie",
    ("tie", False): "tie",
}

# The page's HTML with the prompt and response texts emptied: what the app itself wrote.
HTML_AROUND_TEXTS = """() => {
  const copy = document.documentElement.cloneNode(true);
  copy.querySelectorAll(".user-message .markdown, .response .markdown")
    .forEach((element) => element.replaceChildren());
  return copy.outerHTML;
}"""

# Records the vote buttons' state at the moment htmx has swapped in and settled a new pair,
# and clicks "A is better" right then, as a stray click or a held key would.
SWAP_PROBE = """
window.__swapStates = [];
document.addEventListener("htmx:afterSettle", () => {
  const fieldset = document.querySelector("[data-vote-buttons]");
  if (!fieldset) { return; }
  window.__swapStates.push({disabled: fieldset.disabled, ready: fieldset.dataset.ready});
  if (window.__swapStates.length === 1) {
    fieldset.querySelector("button[value=left]").click();
  }
});
"""


def wait_until_votable(page: Page) -> None:
    page.wait_for_selector("[data-vote-buttons][data-ready=true]:not([disabled])")


def served_assignment(page: Page) -> Assignment:
    token = page.locator("input[name=assignment]").get_attribute("value")
    return Assignment.objects.select_related(
        "annotator",
        "comparison__prompt",
        "comparison__candidate_a__model",
        "comparison__candidate_b__model",
    ).get(token=token)


def wait_for_next_pair(page: Page, previous: Assignment) -> None:
    page.wait_for_function(
        """token => {
          const input = document.querySelector("input[name=assignment]");
          return input !== null && input.value !== token;
        }""",
        arg=str(previous.token),
    )


def log_in_as_admin(page: Page) -> None:
    page.goto(f"/accounts/login/?next={ARENA}")
    page.locator("#id_username").fill("admin")
    page.locator("#id_password").fill(DEMO_ADMIN_PASSWORD)
    page.locator("form.login button[type=submit]").click()
    page.wait_for_url(f"**{ARENA}")


def assert_revealed(page: Page, assignment: Assignment, choice_label: str) -> None:
    reveal = page.get_by_test_id("reveal")
    expect(reveal).to_be_visible()
    expect(reveal).to_contain_text(choice_label)
    expect(page.get_by_test_id("reveal-left")).to_have_text(assignment.left.model.name)
    expect(page.get_by_test_id("reveal-right")).to_have_text(assignment.right.model.name)
    # Screen readers hear it from the live region that stays in the page across swaps.
    announce = page.locator("#arena-announce")
    expect(announce).to_have_count(1)
    expect(announce).to_have_attribute("aria-live", "polite")
    expect(announce).to_contain_text(
        f"Vote recorded: {choice_label}. A (left) was {assignment.left.model.name}, "
        f"B (right) was {assignment.right.model.name}."
    )


def assert_vote_recorded(assignment: Assignment, choice: str) -> Vote:
    vote = Vote.objects.get(assignment=assignment)
    assert vote.choice == choice
    assert vote.left_is_a is assignment.left_is_a
    assert vote.winner == EXPECTED_WINNER[(choice, assignment.left_is_a)]
    assert vote.comparison_id == assignment.comparison_id
    assert vote.annotator_id == assignment.annotator_id
    assert vote.source == Vote.Source.WEB
    assert vote.time_to_vote_ms is not None and vote.time_to_vote_ms > 0
    return vote


def test_it_shows_the_demo_pair_without_model_names(
    page: Page, demo_project: Project, console_errors: list[str]
) -> None:
    page.goto(ARENA)
    wait_until_votable(page)
    assignment = served_assignment(page)
    left, right = assignment.left, assignment.right
    assert left.model.name != right.model.name

    html = page.evaluate(HTML_AROUND_TEXTS).lower()
    for name in (left.model.name, right.model.name):
        assert name.lower() not in html, f"model name {name!r} leaks into the page"

    # Each turn shows the prompt and exactly the served candidates, left and right as served.
    turns = page.locator(".turn")
    expect(turns).to_have_count(len(assignment.comparison.prompt.turns))
    for position in range(turns.count()):
        for side, candidate in (("left", left), ("right", right)):
            shown = (
                turns.nth(position)
                .locator(f"[data-side={side}] .markdown")
                .evaluate("element => element.textContent")
            )
            expected = page.evaluate(
                """html => {
                  const template = document.createElement("template");
                  template.innerHTML = html;
                  return template.content.textContent;
                }""",
                render_markdown(dict(enumerate(candidate.responses)).get(position, "")),
            )
            assert shown == expected, f"turn {position + 1}, {side} is not the served candidate"
    expect(page.get_by_role("button", name="A is better")).to_be_enabled()
    expect(page.get_by_test_id("reveal")).to_have_count(0)
    assert console_errors == []


def test_it_votes_by_keyboard_and_reveals_the_models_without_a_reload(
    page: Page, demo_project: Project, console_errors: list[str]
) -> None:
    page.goto(ARENA)
    wait_until_votable(page)
    assignment = served_assignment(page)
    page.evaluate("window.__marker = 'same document'")

    page.keyboard.press("a")

    wait_for_next_pair(page, assignment)
    assert_revealed(page, assignment, "A (left) is better")
    assert page.evaluate("window.__marker") == "same document"
    wait_until_votable(page)
    # Focus is on the new pair's buttons, not lost to <body>: one Tab reaches "A is better".
    page.wait_for_function(
        "document.activeElement && document.activeElement.matches('[data-vote-buttons]')"
    )
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.key || ''") != ""
    vote = assert_vote_recorded(assignment, "left")
    assert vote.annotator.user_id is None
    assert Annotator.objects.count() == 1
    assert served_assignment(page).annotator_id == vote.annotator_id
    assert console_errors == []


def test_it_votes_by_clicking_b_is_better(
    page: Page, demo_project: Project, console_errors: list[str]
) -> None:
    page.goto(ARENA)
    wait_until_votable(page)
    assignment = served_assignment(page)
    page.evaluate("window.__marker = 'same document'")

    page.get_by_role("button", name="B is better").click()

    wait_for_next_pair(page, assignment)
    assert_revealed(page, assignment, "B (right) is better")
    assert page.evaluate("window.__marker") == "same document"
    assert_vote_recorded(assignment, "right")
    assert console_errors == []


def test_it_keeps_the_buttons_disabled_until_the_new_pair_has_painted(
    page: Page, demo_project: Project, console_errors: list[str]
) -> None:
    votes_posted: list[str] = []
    page.on(
        "request",
        lambda request: request.method == "POST" and votes_posted.append(request.url),
    )
    page.add_init_script(SWAP_PROBE)
    page.goto(ARENA)
    wait_until_votable(page)
    first = served_assignment(page)

    page.keyboard.press("ArrowLeft")

    wait_for_next_pair(page, first)
    wait_until_votable(page)
    states = page.evaluate("window.__swapStates")
    assert states[0] == {"disabled": True, "ready": "false"}
    assert page.evaluate("document.querySelector('[data-vote-buttons]').disabled") is False
    # The click at swap time voted on nothing: one POST, one vote, the new pair still open.
    assert len(votes_posted) == 1
    second = served_assignment(page)
    assert Vote.objects.count() == 1
    assert_vote_recorded(first, "left")
    assert not Vote.objects.filter(assignment=second).exists()
    assert console_errors == []


def test_it_votes_without_javascript(
    open_page: Callable[..., Page], demo_project: Project, console_errors: list[str]
) -> None:
    page = open_page(java_script_enabled=False)
    page.goto(ARENA)
    assignment = served_assignment(page)

    page.get_by_role("button", name="A is better").click()

    page.wait_for_url(f"**{ARENA}?after={assignment.token}")
    assert_revealed(page, assignment, "A (left) is better")
    assert served_assignment(page).token != assignment.token
    expect(page.get_by_role("button", name="B is better")).to_be_enabled()
    assert_vote_recorded(assignment, "left")
    assert console_errors == []


def test_it_renders_hostile_outputs_and_model_names_inert(
    page: Page, console_errors: list[str]
) -> None:
    project = ProjectFactory(slug="hostile", title="Hostile arena")
    names = ["<img src=x onerror=window.__xss=4>", "<script>window.__xss=5;alert(5)</script>"]
    models = [ModelEntryFactory(project=project, name=name) for name in names]
    for number in range(2):
        prompt = PromptFactory(
            project=project,
            turns=[
                f"Question {number}: <script>window.__xss=7;alert(7)</script> "
                "<img src=x onerror=alert(8)> and `<script>shown</script>`"
            ],
        )
        left, right = (
            CandidateFactory(
                prompt=prompt,
                model=model,
                responses=[
                    f"Answer {number}{model.pk}.\n\n<script>window.__xss=1;alert(1)</script>\n\n"
                    '<img src=x onerror="window.__xss=2">\n\n'
                    "[click](javascript:window.__xss=3)\n\n"
                    '<svg onload="window.__xss=6"></svg>'
                    '<iframe src="javascript:alert(9)"></iframe>'
                ],
            )
            for model in models
        )
        ComparisonFactory(project=project, prompt=prompt, candidate_a=left, candidate_b=right)
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    def assert_inert() -> None:
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert (
            page.evaluate(
                """() => [...document.scripts]
                 .filter((s) => !s.src || /__xss|alert/.test(s.textContent))
                 .map((s) => s.outerHTML)"""
            )
            == []
        )
        assert (
            page.evaluate(
                """() => [...document.querySelectorAll("*")].flatMap((element) =>
                 [...element.attributes]
                   .filter((a) => a.name.startsWith("on") || /^\\s*javascript:/i.test(a.value))
                   .map((a) => `${element.tagName} ${a.name}=${a.value}`))"""
            )
            == []
        )
        expect(page.locator("#pair img, #pair svg, #pair iframe")).to_have_count(0)
        expect(page.locator(".user-message code").first).to_have_text("<script>shown</script>")
        # Sanitizing drops the javascript: href; the link text stays and clicks to nothing.
        page.locator("#pair a", has_text="click").first.click()
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert dialogs == []

    page.goto("/arena/hostile/")
    wait_until_votable(page)
    assignment = served_assignment(page)
    assert_inert()

    # The reveal and the next hostile pair arrive through the htmx swap.
    page.get_by_role("button", name="A is better").click()
    wait_for_next_pair(page, assignment)
    wait_until_votable(page)
    expect(page.get_by_test_id("reveal-left")).to_have_text(assignment.left.model.name)
    expect(page.get_by_test_id("reveal-right")).to_have_text(assignment.right.model.name)
    assert_inert()
    assert console_errors == []


def test_it_clears_the_error_once_a_refused_vote_goes_through(
    page: Page, demo_project: Project, console_errors: list[str]
) -> None:
    Project.objects.filter(pk=demo_project.pk).update(max_votes_per_minute=1)
    page.goto(ARENA)
    wait_until_votable(page)
    first = served_assignment(page)
    page.keyboard.press("a")
    wait_for_next_pair(page, first)
    wait_until_votable(page)
    second = served_assignment(page)

    with page.expect_response(lambda response: response.status == 429):
        page.keyboard.press("a")

    error = page.locator("#arena-error")
    expect(error).to_contain_text("Try again in")
    assert served_assignment(page).token == second.token
    assert not Vote.objects.filter(assignment=second).exists()

    # A minute passes: the first vote leaves the rate window, and the same pair is voted on.
    Vote.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    wait_until_votable(page)
    page.keyboard.press("a")

    wait_for_next_pair(page, second)
    assert_revealed(page, second, "A (left) is better")
    assert_vote_recorded(second, "left")
    expect(error).to_be_empty()
    # Chromium logs every 4xx response; the refused vote is the only one expected.
    assert len(console_errors) == 1 and "status of 429" in console_errors[0], console_errors


def test_a_failed_or_unsent_vote_says_so_and_the_next_press_votes(
    page: Page, demo_project: Project, console_errors: list[str]
) -> None:
    page.goto(ARENA)
    wait_until_votable(page)
    served = served_assignment(page)
    error = page.locator("#arena-error")
    # A proxy in front of the app answers 502 once, then the connection drops once.
    page.route("**/vote/", lambda route: route.fulfill(status=502, body="Bad Gateway"))
    page.keyboard.press("a")
    expect(error).to_contain_text("could not take your vote (error 502)")
    page.unroute("**/vote/")
    page.route("**/vote/", lambda route: route.abort())
    wait_until_votable(page)
    page.keyboard.press("a")
    expect(error).to_contain_text("did not reach the server")
    assert not Vote.objects.filter(assignment=served).exists()
    page.unroute("**/vote/")
    wait_until_votable(page)
    page.keyboard.press("a")
    wait_for_next_pair(page, served)
    assert_vote_recorded(served, "left")
    expect(error).to_be_empty()
    # Chromium logs the failed requests, and htmx its error events; nothing else went wrong.
    assert all("/vote/" in e or "htmx:" in e for e in console_errors), console_errors
    console_errors.clear()


def test_a_vote_after_logging_in_elsewhere_reloads_the_page_not_nests_one(
    page: Page, demo_project: Project, console_errors: list[str]
) -> None:
    page.goto(ARENA)
    wait_until_votable(page)
    served = served_assignment(page)
    # Logging in in another tab rotates the CSRF cookie this page's form does not carry.
    page.context.clear_cookies(name="csrftoken")
    page.context.add_cookies([{"name": "csrftoken", "value": "x" * 32, "url": page.url}])
    with page.expect_navigation():
        page.keyboard.press("a")
    wait_until_votable(page)
    assert page.locator("h1").count() == 1  # the arena, not a 403 page inside it
    assert served_assignment(page).token == served.token  # the same pair, to vote on again
    page.keyboard.press("a")
    wait_for_next_pair(page, served)
    assert_vote_recorded(served, "left")
    console_errors.clear()  # Chromium logs the refused POST


def test_it_stacks_the_responses_on_a_phone(
    open_page: Callable[..., Page], demo_project: Project, console_errors: list[str]
) -> None:
    page = open_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(ARENA)
    wait_until_votable(page)

    first_turn = page.locator(".turn").first
    left = first_turn.locator("[data-side=left]").bounding_box()
    right = first_turn.locator("[data-side=right]").bounding_box()
    assert left is not None and right is not None
    assert right["y"] >= left["y"] + left["height"] - 1, "B is not below A"
    assert abs(right["x"] - left["x"]) < 1 and left["width"] > 300
    # The vote buttons stay on screen (sticky) while the responses are read.
    button = page.get_by_role("button", name="B is better").bounding_box()
    assert button is not None and button["y"] + button["height"] <= 844
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert console_errors == []


def test_long_words_and_wide_tables_in_a_pair_stay_inside_a_phone_screen(
    open_page: Callable[..., Page], console_errors: list[str]
) -> None:
    """A long unbroken word in the question pushed the page sideways, and a wide table in
    an answer was squeezed until its cells broke after every letter."""
    project = ProjectFactory(slug="wide", title="Wide arena")
    prompt = PromptFactory(project=project, turns=["Explain " + "x" * 300 + " please"])
    header = "| " + " | ".join(f"column{n}" for n in range(12)) + " |"
    table = "\n".join([header, "|" + "---|" * 12, "| " + " | ".join(["value"] * 12) + " |"])
    left, right = (
        CandidateFactory(prompt=prompt, model=ModelEntryFactory(project=project), responses=[table])
        for _ in range(2)
    )
    ComparisonFactory(project=project, prompt=prompt, candidate_a=left, candidate_b=right)
    page = open_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto("/arena/wide/")
    wait_until_votable(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    table_box = page.locator(".response .markdown table").first
    widths = table_box.evaluate("t => [t.scrollWidth, t.clientWidth]")
    assert widths[0] > widths[1], "the table does not scroll in its own box"
    cell = page.locator(".response .markdown th").first.bounding_box()
    assert cell is not None and cell["height"] < 40, "a header cell broke into several lines"
    assert console_errors == []


def test_it_saves_a_screenshot_of_the_voting_page(
    page: Page, demo_project: Project, console_errors: list[str]
) -> None:
    page.goto(ARENA)
    wait_until_votable(page)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)

    page.screenshot(path=SCREENSHOT)

    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 900)
    assert len(data) > 20_000, "the screenshot looks blank"
    assert console_errors == []


def test_it_shows_the_voted_models_on_the_leaderboard_to_the_admin(
    page: Page, demo_project: Project, eager_tasks: None, console_errors: list[str]
) -> None:
    log_in_as_admin(page)

    served: list[Assignment] = []
    for key, choice in (("a", "left"), ("ArrowRight", "right"), ("t", "tie")):
        wait_until_votable(page)
        assignment = served_assignment(page)
        page.keyboard.press(key)
        wait_for_next_pair(page, assignment)
        vote = assert_vote_recorded(assignment, choice)
        assert vote.annotator.user.username == "admin"
        served.append(assignment)
    # The demo mixes in gold pairs (attention checks); they never count on leaderboards.
    rated = [assignment for assignment in served if not assignment.comparison.is_gold]
    expected = Counter(
        name
        for assignment in rated
        for name in (assignment.left.model.name, assignment.right.model.name)
    )

    page.get_by_role("link", name="Leaderboard").click()
    page.wait_for_url(f"**{ARENA}leaderboard/")
    rows = page.locator("#bt-table tbody tr")  # Bradley-Terry table: models with votes
    expect(rows).to_have_count(len(expected))
    votes_by_model = {
        # Each has a few votes: marked provisional.
        cells[1].removesuffix(" provisional"): int(cells[4])
        for cells in (row.locator("td").all_inner_texts() for row in rows.all())
    }
    for name, count in expected.items():
        assert votes_by_model[name] == count > 0
    assert sum(votes_by_model.values()) == 2 * len(rated)
    assert console_errors == []


def test_it_scrolls_wide_tables_in_their_own_box_on_a_phone(
    open_page: Callable[..., Page],
    demo_project: Project,
    eager_tasks: None,
    console_errors: list[str],
) -> None:
    page = open_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    log_in_as_admin(page)
    for _ in range(3):
        wait_until_votable(page)
        assignment = served_assignment(page)
        page.keyboard.press("a")
        wait_for_next_pair(page, assignment)

    reviewed = Annotator.objects.get(user__username="admin").pk
    for path in ("leaderboard/", "exports/", f"review/{reviewed}/", "jobs/"):
        page.goto(f"{ARENA}{path}")
        expect(page.locator("main table").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    # The ratings table is wider than the phone: it scrolls inside its box, all of it reachable.
    page.goto(f"{ARENA}leaderboard/")
    box = page.locator(".table-scroll", has=page.locator("#bt-table"))
    sizes = box.evaluate("box => [box.scrollWidth, box.clientWidth]")
    assert sizes[0] > sizes[1], sizes
    box.evaluate("box => { box.scrollLeft = box.scrollWidth; }")
    last_header = page.locator("#bt-table th").last.bounding_box()
    assert last_header is not None and last_header["x"] + last_header["width"] <= 390
    # The router's page and a decision's, with the demo routed by GPT-4's verdicts.
    policy = routing_services.routing_policy_set(project=demo_project, judge="gpt-4-mtbench")
    routing_services.router_run(project=demo_project, force=True)
    decided = RouteDecision.objects.filter(comparison__project=demo_project).first()
    assert decided is not None and policy.enabled
    for path in ("router/", f"router/decisions/{decided.comparison_id}/"):
        page.goto(f"{ARENA}{path}")
        expect(page.locator("main table").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    assert console_errors == []
