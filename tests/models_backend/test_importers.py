"""Importing an LLM judge's MT-Bench verdicts as judgments of the arena's comparisons."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotation.importers import ImportFailed, mtbench_import
from annotation.models import Comparison, Project
from models_backend.importers import judgments_import
from models_backend.models import Judgment
from tests.paths import DEMO_DIR, MTBENCH_DIR

pytestmark = pytest.mark.django_db

JUDGE = "gpt-4-mtbench"


@pytest.fixture
def arena() -> Project:
    mtbench_import(
        directory=DEMO_DIR, project_slug="judged", models=["gpt-4", "llama-13b"], questions=["81"]
    )
    return Project.objects.get(slug="judged")


def comparison_of(project: Project, turn: int, model_a: str) -> Comparison:
    return Comparison.objects.get(
        project=project,
        prompt__external_id=f"mtbench-81-t{turn}",
        candidate_a__model__name=model_a,
    )


def lines(*records: object) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r) for r in records]


def test_verdicts_land_on_their_comparison_turned_to_its_sides(arena: Project) -> None:
    first = comparison_of(arena, 1, "gpt-4")
    a, b = first.candidate_a.model.name, first.candidate_b.model.name
    report = judgments_import(
        project=arena,
        judge=JUDGE,
        lines=lines(
            # Given in the comparison's order, then the other turn given the other way round.
            {"question_id": 81, "turn": 1, "model_a": a, "model_b": b, "winner": "model_a"},
            {"question_id": 81, "turn": 2, "model_a": b, "model_b": a, "winner": "model_a"},
            {"question_id": 82, "turn": 1, "model_a": a, "model_b": b, "winner": "tie"},
            {"question_id": 81, "turn": 1, "model_a": a, "model_b": "claude-v1", "winner": "tie"},
        ),
    )
    assert (report.created, report.already_there, report.unmatched) == (2, 0, 2)
    assert Judgment.objects.get(comparison=first).verdict == "model_a"
    second = Judgment.objects.get(comparison=comparison_of(arena, 2, a))
    assert second.verdict == "model_b"  # b won, and b is the comparison's second answer
    assert second.consistent and second.judge == JUDGE and second.p_a == 0.0


def test_a_flipped_verdict_is_an_inconsistent_tie_and_a_rerun_changes_nothing(
    arena: Project,
) -> None:
    comparison = comparison_of(arena, 1, "gpt-4")
    a, b = comparison.candidate_a.model.name, comparison.candidate_b.model.name
    record = {"question_id": "81", "turn": 1, "model_a": a, "model_b": b}
    judgments_import(
        project=arena, judge=JUDGE, lines=lines({**record, "winner": "tie (inconsistent)"})
    )
    again = judgments_import(
        project=arena, judge=JUDGE, lines=lines({**record, "winner": "model_a"})
    )
    assert (again.created, again.already_there) == (0, 1)
    judgment = Judgment.objects.get(comparison=comparison)
    assert (judgment.verdict, judgment.consistent) == ("tie", False)


def test_two_different_verdicts_on_one_pair_in_a_file_are_refused(arena: Project) -> None:
    """The second of two contradicting verdicts was counted "already there" without a word,
    and the first kept, whichever was right."""
    comparison = comparison_of(arena, 1, "gpt-4")
    a, b = comparison.candidate_a.model.name, comparison.candidate_b.model.name
    record = {"question_id": 81, "turn": 1, "model_a": a, "model_b": b, "winner": "model_a"}
    same = {**record, "model_a": b, "model_b": a, "winner": "model_b"}  # the same, swapped
    assert judgments_import(project=arena, judge=JUDGE, lines=lines(record, same)).created == 1
    Judgment.objects.all().delete()
    other = {**record, "model_a": b, "model_b": a, "winner": "model_a"}
    with pytest.raises(ImportFailed, match="judgments:2: a second, different verdict on"):
        judgments_import(project=arena, judge=JUDGE, lines=lines(record, other))
    assert not Judgment.objects.exists()


def test_a_malformed_file_names_every_bad_line_and_stores_nothing(arena: Project) -> None:
    comparison = comparison_of(arena, 1, "gpt-4")
    a, b = comparison.candidate_a.model.name, comparison.candidate_b.model.name
    good = {"question_id": 81, "turn": 1, "model_a": a, "model_b": b, "winner": "model_a"}
    with pytest.raises(ImportFailed) as failed:
        judgments_import(
            project=arena,
            judge=JUDGE,
            source="verdicts.jsonl",
            lines=lines(
                good,
                "[" * 100_000,
                {**good, "winner": "A"},
                {**good, "turn": 0},
                {**good, "model_b": a},
                [1, 2],
            ),
        )
    assert [error.split(":")[1] for error in failed.value.errors] == ["2", "3", "4", "5", "6"]
    assert "not JSON (nested too deeply)" in failed.value.errors[0]
    assert "'winner' must be one of model_a, model_b, tie" in failed.value.errors[1]
    assert not Judgment.objects.exists()


def test_the_command_imports_the_published_gpt4_verdicts(tmp_path: Path) -> None:
    assert MTBENCH_DIR.is_dir(), f"the shared MT-Bench data is missing at {MTBENCH_DIR}"
    mtbench_import(directory=MTBENCH_DIR, project_slug="mt", questions=["81", "130"])
    project = Project.objects.get(slug="mt")
    verdicts = str(MTBENCH_DIR / "votes_gpt4_pair.jsonl")
    out = StringIO()
    call_command(
        "import_judgments",
        verdicts,
        project="mt",
        judge=JUDGE,
        credit="lmsys/mt_bench_human_judgments, CC-BY-4.0",
        stdout=out,
    )
    assert [str(c) for c in project.credits.all()] == [
        "Judge verdicts: lmsys/mt_bench_human_judgments, CC-BY-4.0"
    ]
    # GPT-4 judged the 15 pairs of six models on both turns of each question; the arena's
    # other 33 - 6 models' pairs have no verdict.
    assert Judgment.objects.filter(comparison__project=project).count() == 2 * 2 * 15
    assert "60 verdicts imported" in out.getvalue()
    with pytest.raises(CommandError, match="no project"):
        call_command("import_judgments", verdicts, project="x", judge=JUDGE)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": 81}\n')
    with pytest.raises(CommandError, match=r"(?s)nothing was imported.*bad.jsonl:1: 'model_a'"):
        call_command("import_judgments", str(bad), project="mt", judge=JUDGE)
