"""The router page in a real browser: an admin turns routing on, routes the judged pairs and
reads why one went to people; hostile prompt text stays inert."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Page, expect

from annotation.models import Comparison, Membership, Project
from models_backend.models import JudgeJob
from routing.models import RouteDecision
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.routing.helpers import JUDGE, judged

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pass-word-123"  # UserFactory's


@pytest.fixture
def routed_arena(transactional_db: None) -> Project:
    project = ProjectFactory(slug="routed", title="Routed arena")
    MembershipFactory(
        project=project, user=UserFactory(username="boss"), role=Membership.Role.ADMIN
    )
    judged(project, 6, p_a=0.95)
    flipped = judged(project, 2, verdict="tie", consistent=False, p_a=0.5)
    flipped[0].prompt.turns = ['<img src=x onerror="alert(1)"> Which answer is kinder?']
    flipped[0].prompt.save()
    project.hostile_pk = flipped[0].pk  # type: ignore[attr-defined]
    return project


def test_an_admin_turns_routing_on_and_reads_why_a_pair_went_to_people(
    page: Page, routed_arena: Project, eager_tasks: None, console_errors: list[str], tmp_path: Path
) -> None:
    dialogs: list[Dialog] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog), dialog.dismiss()))
    router = "/arena/routed/router/"
    page.goto(f"/accounts/login/?next={router}")
    page.locator("#id_username").fill("boss")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form.login button[type=submit]").click()
    page.wait_for_url(f"**{router}")
    expect(page.get_by_text("Routing is off")).to_be_visible()

    page.locator("#id_judge").fill(JUDGE)
    page.locator("#id_budget_share").fill("0.25")
    page.locator("#id_audit_fraction").fill("0")
    page.locator("#id_min_batch").fill("1")
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Routing policy saved.")).to_be_visible()
    page.get_by_role("button", name="Route now").click()
    # The demo's tasks run in the request: the page says what routing did, not "queued".
    expect(page.get_by_text("Routing ran:")).to_be_visible()

    # 25% of 8: the two flipped verdicts go to people, first in the waiting list.
    assert Comparison.objects.filter(project=routed_arena, route="human").count() == 2
    expect(page.locator(".router-figures")).to_contain_text("Human share of routed pairs0.250")
    rows = page.locator("table.leaderboard").last.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("tie (inconsistent)")
    page.screenshot(path=tmp_path / "router.png", full_page=True)

    hostile = RouteDecision.objects.get(comparison_id=routed_arena.hostile_pk)
    page.get_by_role("link", name=str(hostile.comparison_id), exact=True).click()
    expect(page.locator("h1")).to_contain_text("went to human")
    expect(page.get_by_text("verdict_inconsistent")).to_be_visible()
    expect(page.get_by_text('<img src=x onerror="alert(1)">', exact=False)).to_be_visible()
    assert page.locator("img").count() == 0 and dialogs == []
    assert console_errors == []


def test_the_jobs_page_keeps_the_keyboard_focus_while_it_polls(
    page: Page, routed_arena: Project, console_errors: list[str]
) -> None:
    """The page swaps its jobs list every 2 s while a job runs; the focus fell to the page's
    body at each swap, so a keyboard user could not reach a button."""
    job = JudgeJob.objects.create(
        project=routed_arena, judge=JUDGE, judge_spec={"model": "m"}, total=4,
        status=JudgeJob.Status.RUNNING,
    )  # fmt: skip
    jobs = f"/arena/{routed_arena.slug}/jobs/"
    page.goto(f"/accounts/login/?next={jobs}")
    page.locator("#id_username").fill("boss")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form.login button[type=submit]").click()
    page.wait_for_url(f"**{jobs}")
    page.get_by_role("button", name=f"Cancel {job}").focus()
    with page.expect_response(lambda response: response.url.endswith(jobs)):
        pass  # the next poll
    page.wait_for_timeout(300)  # htmx settles, then restores the focus
    focused = "document.activeElement.getAttribute('aria-label')"
    assert page.evaluate(focused) == f"Cancel {job}"
    assert console_errors == []
