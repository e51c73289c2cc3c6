"""`import_votes` and `fraud_report`: votes from elsewhere, under the web's rules."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotation.importers import ImportFailed, mtbench_import
from annotation.models import Annotator, Comparison, Project, Vote
from annotation.vote_import import votes_import
from tests.factories import ComparisonFactory, ModelEntryFactory, PromptFactory
from tests.paths import MTBENCH_DIR

pytestmark = pytest.mark.django_db

HUMAN_VOTED = ["alpaca-13b", "claude-v1", "gpt-3.5-turbo", "gpt-4", "llama-13b", "vicuna-13b-v1.2"]


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def pair(project: Project) -> Comparison:
    prompt = PromptFactory(project=project, external_id="mtbench-81-t1")
    return ComparisonFactory(
        project=project,
        prompt=prompt,
        candidate_a__model=ModelEntryFactory(project=project, name="gpt-4"),
        candidate_b__model=ModelEntryFactory(project=project, name="claude-v1"),
    )


def test_votes_import_by_question_and_models_in_either_order(
    project: Project, pair: Comparison, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "votes.jsonl",
        [
            {"annotator": "expert_0", "question_id": 81, "turn": 1, "model_a": "claude-v1",
             "model_b": "gpt-4", "winner": "model_a", "shown_left": "model_a",
             "time_to_vote_ms": 30500, "tstamp": 1687000000.5, "fingerprint": "device-1"},
            {"judge": "expert_1", "comparison": pair.pk, "winner": "tie (bothbad)"},
        ],
    )  # fmt: skip
    report = votes_import(project=project, path=path)
    assert (report.votes_created, report.votes_skipped, report.annotators_created) == (2, 0, 2)
    first, second = Vote.objects.order_by("annotator__pseudonym")
    # The line listed the pair reversed: claude-v1 is the comparison's model_b.
    assert (first.winner, first.left_is_a, first.side_recorded) == ("model_b", False, True)
    assert first.choice == "left" and first.time_to_vote_ms == 30500
    assert first.created_at.timestamp() == pytest.approx(1687000000.5)
    assert len(first.client_hash) == 64 and "device-1" not in first.client_hash
    assert first.source == Vote.Source.IMPORT
    assert (second.winner, second.choice, second.side_recorded) == (
        "tie (bothbad)",
        "both_bad",
        False,
    )
    # Importing the same file again adds nothing: one vote per annotator and pair.
    again = votes_import(project=project, path=path)
    assert (again.votes_created, again.votes_skipped) == (0, 2)
    assert "already voted" in again.notes[0]
    assert Vote.objects.count() == 2
    pair.refresh_from_db()
    assert pair.vote_count == 2


def test_an_import_counts_each_comparisons_new_votes(project: Project, tmp_path: Path) -> None:
    busy, quiet = ComparisonFactory(project=project), ComparisonFactory(project=project)
    Comparison.objects.filter(pk=busy.pk).update(vote_count=1)  # one vote cast in the arena
    rows = [{"annotator": f"a{i}", "comparison": busy.pk, "winner": "model_a"} for i in range(3)]
    rows.append({"annotator": "a0", "comparison": quiet.pk, "winner": "tie"})
    votes_import(project=project, path=write_jsonl(tmp_path / "votes.jsonl", rows))
    counts = dict(Comparison.objects.values_list("pk", "vote_count"))
    assert (counts[busy.pk], counts[quiet.pk]) == (4, 1)


def test_a_malformed_file_imports_nothing_and_names_every_bad_line(
    project: Project, pair: Comparison, tmp_path: Path
) -> None:
    project.allow_tie = False
    project.save()
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"annotator": "ok", "comparison": pair.pk, "winner": "model_a"},
            "{not json",
            {"annotator": "x", "comparison": pair.pk, "winner": "model_c"},
            {"annotator": "x", "comparison": 999999, "winner": "model_a"},
            {"annotator": "x", "question_id": 81, "turn": 1, "model_a": "gpt-4",
             "model_b": "nobody", "winner": "model_a"},
            {"annotator": "x", "comparison": pair.pk, "winner": "tie"},
            {"annotator": "y" * 40, "comparison": pair.pk, "winner": "model_a"},
            {"annotator": "x", "comparison": pair.pk, "winner": "model_a", "shown_left": "up"},
            {"annotator": "x", "comparison": pair.pk, "winner": "model_a", "time_to_vote_ms": -1},
            [1, 2],
            {"annotator": "x", "comparison": pair.pk, "winner": "model_a", "time_to_vote_ms": 1e20},
            {"annotator": "x", "comparison": pair.pk, "winner": "model_a",
             "time_to_vote_ms": 9999999999},
            {"annotator": "anon-0a1b3b2e70ba", "comparison": pair.pk, "winner": "model_a"},
            {"annotator": "qa\u0007y", "comparison": pair.pk, "winner": "model_a"},
            {"annotator": "\uff21\uff2e\uff2f\uff2e-x", "comparison": pair.pk, "winner": "model_a"},
        ],
    )  # fmt: skip
    with pytest.raises(ImportFailed) as failed:
        votes_import(project=project, path=path)
    lines = sorted(int(error.split(":")[1]) for error in failed.value.errors)
    assert lines == list(range(2, 16))
    text = str(failed.value)
    for fragment in (
        "invalid JSON",
        "winner must be one of",
        "no comparison 999999",
        "'nobody'",
        "does not allow 'tie'",
        "1 to 32 characters",
        "shown_left must be",
        "time_to_vote_ms must be",
        "expected a JSON object",
        "time_to_vote_ms must be an integer from 0 to 2147483647, not 9999999999",
        "names starting 'anon-' belong to this arena's own voters",
        "must not hold control characters",
    ):
        assert fragment in text
    assert Vote.objects.count() == 0 and Annotator.objects.count() == 0


def test_import_votes_command_reports_and_fails_loudly(
    project: Project, pair: Comparison, tmp_path: Path
) -> None:
    good = write_jsonl(
        tmp_path / "ok.jsonl", [{"annotator": "a", "comparison": pair.pk, "winner": "model_b"}]
    )
    out = io.StringIO()
    call_command("import_votes", str(good), project=project.slug, credit="Team A, CC0", stdout=out)
    assert "1 votes imported" in out.getvalue()
    assert [str(c) for c in project.credits.all()] == ["Votes: Team A, CC0"]
    with pytest.raises(CommandError, match="no project"):
        call_command("import_votes", str(good), project="nope")
    with pytest.raises(CommandError, match="cannot open"):
        call_command("import_votes", str(tmp_path / "missing.jsonl"), project=project.slug)


def test_skip_unmatched_leaves_out_votes_on_pairs_the_project_lacks(
    project: Project, pair: Comparison, tmp_path: Path
) -> None:
    """As after importing three of MT-Bench's six models: without the flag the file is
    refused; with it the votes on its pairs land and the rest are counted."""
    lines = [
        {"annotator": "a", "comparison": pair.pk, "winner": "model_b"},
        {"annotator": "a", "question_id": 81, "turn": 1, "model_a": "gpt-4",
         "model_b": "llama-13b", "winner": "model_a"},
        {"annotator": "b", "question_id": 81, "turn": 2, "model_a": "alpaca-13b",
         "model_b": "gpt-4", "winner": "tie"},
    ]  # fmt: skip
    path = write_jsonl(tmp_path / "votes.jsonl", lines)
    with pytest.raises(CommandError, match="no comparison of 'gpt-4' and 'llama-13b'"):
        call_command("import_votes", str(path), project=project.slug)
    assert Vote.objects.count() == 0

    out = io.StringIO()
    call_command("import_votes", str(path), project=project.slug, skip_unmatched=True, stdout=out)

    assert "1 votes imported" in out.getvalue()
    assert "2 on pairs this project lacks left out" in out.getvalue()
    assert list(Vote.objects.values_list("comparison_id", flat=True)) == [pair.pk]
    # A malformed line, an unknown comparison id or a self-pair still refuses the file.
    for bad_line, message in (
        ({"comparison": "x"}, "comparison must be an id, not 'x'"),
        ({"comparison": 999999}, "no comparison 999999 in this project"),
        (
            {"question_id": 81, "turn": 1, "model_a": "gpt-4", "model_b": "gpt-4"},
            "model_a and model_b are the same model",
        ),
    ):
        bad = write_jsonl(
            tmp_path / "bad.jsonl", [*lines, {"annotator": "c", "winner": "tie", **bad_line}]
        )
        with pytest.raises(CommandError, match=message):
            call_command("import_votes", str(bad), project=project.slug, skip_unmatched=True)
    only_unmatched = write_jsonl(tmp_path / "none.jsonl", lines[1:])
    with pytest.raises(CommandError, match="no votes on this project's pairs"):
        call_command("import_votes", str(only_unmatched), project=project.slug, skip_unmatched=True)


@pytest.mark.slow
def test_real_mtbench_expert_votes_import_and_almost_nobody_is_flagged(tmp_path: Path) -> None:
    """The issue's contract: at most 2% of experts with 30+ votes flagged (it is 0 here)."""
    mtbench_import(directory=MTBENCH_DIR, project_slug="mtbench", models=HUMAN_VOTED)
    out = io.StringIO()
    call_command(
        "import_votes", str(MTBENCH_DIR / "votes_human.jsonl"), project="mtbench", stdout=out
    )
    # One expert judged one pair twice: the repeat is skipped, as on the web.
    assert "3354 votes imported, 1 skipped" in out.getvalue()
    out = io.StringIO()
    call_command("fraud_report", project="mtbench", format="json", stdout=out)
    report = json.loads(out.getvalue())
    judged = [row for row in report["annotators"] if row["votes"] >= 30]
    flagged = [row for row in judged if row["suspicious"]]
    assert len(judged) >= 30
    assert len(flagged) <= 0.02 * len(judged)
    row = judged[0]
    assert {"annotator", "votes", "trust", "state", "reasons", "signals"} <= row.keys()
    assert 0 < row["trust"] <= 1 and row["state"] == "active"
    assert "crowd_disagreement_p" in row["signals"]


def test_fraud_report_apply_flags_and_the_table_lists_everyone(
    project: Project, pair: Comparison, tmp_path: Path
) -> None:
    call_command(
        "fraud_report", project=project.slug, apply=True, stdout=io.StringIO(), stderr=io.StringIO()
    )
    assert not Annotator.objects.exclude(state="active").exists()
    records = [{"annotator": f"p{i}", "comparison": pair.pk, "winner": "model_a"} for i in range(3)]
    votes_import(project=project, path=write_jsonl(tmp_path / "v.jsonl", records))
    out = io.StringIO()
    call_command("fraud_report", project=project.slug, stdout=out)
    table = out.getvalue().splitlines()
    assert table[0].split()[:4] == ["annotator", "votes", "trust", "state"]
    assert sorted(line.split()[0] for line in table[1:]) == ["p0", "p1", "p2"]
