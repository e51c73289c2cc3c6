"""Importers: MT-Bench folders and general JSONL, all-or-nothing with line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation.importers import ImportFailed, candidates_import, prompts_import
from annotation.models import Candidate, Comparison, ModelEntry, Project, Prompt
from models_backend.models import Judgment
from tests.paths import DEMO_DIR, MTBENCH_DIR

pytestmark = pytest.mark.django_db

MTBENCH = MTBENCH_DIR
DEMO = DEMO_DIR


def write_jsonl(path: Path, lines: list[object | str]) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    )
    return path


def test_import_mtbench_creates_prompts_candidates_and_comparisons() -> None:
    assert MTBENCH.is_dir(), f"the shared MT-Bench data is missing at {MTBENCH}"
    call_command(
        "import_mtbench",
        str(MTBENCH),
        "--project",
        "mt",
        "--models",
        "gpt-4,claude-v1,llama-13b",
        "--questions",
        "81,101",
    )
    project = Project.objects.get(slug="mt")
    assert Prompt.objects.filter(project=project).count() == 4  # 2 questions x 2 turns
    assert ModelEntry.objects.filter(project=project).count() == 3
    assert Candidate.objects.filter(prompt__project=project).count() == 12
    assert Comparison.objects.filter(project=project).count() == 12  # 4 prompts x 3 pairs
    turn2 = Prompt.objects.get(project=project, external_id="mtbench-101-t2")
    assert len(turn2.turns) == 2 and turn2.category == "reasoning"
    assert turn2.reference_answer  # GPT-4 reference for reasoning questions
    answer = Candidate.objects.get(prompt=turn2, model__name="gpt-4")
    assert len(answer.responses) == 2


def test_import_mtbench_twice_creates_nothing_new() -> None:
    call_command("import_mtbench", str(DEMO), "--project", "demo2", "--models", "gpt-4,llama-13b")
    counts = (Prompt.objects.count(), Candidate.objects.count(), Comparison.objects.count())
    call_command("import_mtbench", str(DEMO), "--project", "demo2", "--models", "gpt-4,llama-13b")
    assert (Prompt.objects.count(), Candidate.objects.count(), Comparison.objects.count()) == counts


def test_import_mtbench_unknown_model_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"no answers for model .nope."):
        call_command("import_mtbench", str(DEMO), "--project", "x", "--models", "gpt-4,nope")
    assert Project.objects.count() == 0
    with pytest.raises(CommandError, match=r"no question\.jsonl"):
        call_command("import_mtbench", str(tmp_path), "--project", "x")


def test_import_mtbench_malformed_answer_line_names_it_and_imports_nothing(tmp_path: Path) -> None:
    (tmp_path / "model_answer").mkdir()
    write_jsonl(tmp_path / "question.jsonl", [{"question_id": 1, "turns": ["Hi?", "And?"]}])
    write_jsonl(
        tmp_path / "model_answer" / "m1.jsonl",
        [{"question_id": 1, "choices": [{"turns": ["a", "b"]}]}],
    )
    write_jsonl(tmp_path / "model_answer" / "m2.jsonl", [{"question_id": 1}, "{oops"])
    with pytest.raises(CommandError) as error:
        call_command("import_mtbench", str(tmp_path), "--project", "x")
    assert "m2.jsonl:1" in str(error.value)
    assert Project.objects.count() == 0 and Prompt.objects.count() == 0


@pytest.mark.parametrize(
    ("questions", "answers", "arguments", "message"),
    [
        ([], [{"question_id": 1, "choices": [{"turns": ["a"]}]}], [], "no questions in it"),
        (None, None, ["--questions", "999"], "no question '999'"),
        (None, [{"question_id": 1, "choices": [{"turns": "hello"}]}], [], "a list of strings"),
        (None, [{"question_id": 1, "choices": [{"turns": [{"x": 1}]}]}], [], "list of strings"),
        (
            [{"question_id": 1, "turns": ["Hi?"]}, {"question_id": 1, "turns": ["Again?"]}],
            None,
            [],
            "question_id 1 appears twice",
        ),
        (None, None, ["--votes-per-comparison", "0"], "must be 1 or more"),
    ],
)
def test_import_mtbench_refuses_what_would_import_garbage_or_nothing(
    tmp_path: Path, *, questions: list | None, answers: list | None, arguments: list, message: str
) -> None:
    (tmp_path / "model_answer").mkdir()
    default = [{"question_id": 1, "turns": ["Hi?"]}]
    write_jsonl(tmp_path / "question.jsonl", default if questions is None else questions)
    good = [{"question_id": 1, "choices": [{"turns": ["Hello."]}]}]
    write_jsonl(tmp_path / "model_answer" / "m1.jsonl", answers or good)
    write_jsonl(tmp_path / "model_answer" / "m2.jsonl", good)
    with pytest.raises(CommandError, match=message):
        call_command("import_mtbench", str(tmp_path), "--project", "x", *arguments)
    assert Project.objects.count() == 0


def test_import_mtbench_reports_a_broken_reference_file(tmp_path: Path) -> None:
    (tmp_path / "model_answer").mkdir()
    (tmp_path / "reference_answer").mkdir()
    write_jsonl(tmp_path / "question.jsonl", [{"question_id": 1, "turns": ["Hi?"]}])
    write_jsonl(
        tmp_path / "model_answer" / "m1.jsonl",
        [{"question_id": 1, "choices": [{"turns": ["Hello."]}]}],
    )
    write_jsonl(tmp_path / "reference_answer" / "gpt-4.jsonl", [{"question_id": 1}])
    with pytest.raises(CommandError, match=r"gpt-4\.jsonl:1: needs 'question_id'"):
        call_command("import_mtbench", str(tmp_path), "--project", "x")
    assert Project.objects.count() == 0


def test_import_prompts_and_candidates(tmp_path: Path, project: Project) -> None:
    prompts = write_jsonl(
        tmp_path / "prompts.jsonl",
        [
            {"id": "q1", "category": "math", "turns": ["What is 2+2?"]},
            {"id": "q2", "prompt": "Name a colour."},
            {"id": "q3", "conversation": [{"role": "user", "content": "Hi"}]},
        ],
    )
    call_command("import_prompts", str(prompts), "--project", project.slug)
    candidates = write_jsonl(
        tmp_path / "candidates.jsonl",
        [
            {"prompt_id": "q1", "model": "m-a", "response": "4"},
            {"prompt_id": "q1", "model": "m-b", "responses": ["5"]},
            {"prompt_id": "q2", "model": "m-a", "response": "red", "metadata": {"t": 1}},
        ],
    )
    call_command("import_candidates", str(candidates), "--project", project.slug)
    assert Prompt.objects.filter(project=project).count() == 3
    assert Prompt.objects.get(external_id="q3").turns == ["Hi"]
    assert Candidate.objects.count() == 3
    assert Comparison.objects.filter(project=project).count() == 1  # only q1 has two models


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[" * 100_000, "invalid JSON: nested too deeply"),
        ('["a list"]', "expected a JSON object"),
        ('{"id": "x"}', "needs 'turns'"),
        ('{"turns": []}', "needs 'turns'"),
        ('{"turns": ["ok"], "category": ["bad"]}', "'id', 'category' and 'reference_answer' must"),
        # Text no database column can hold: a NUL, or half of a UTF-16 pair (a cut emoji). An
        # answer holding "\ud800" imported, and then every page serving its pair was a 500.
        ('{"turns": ["a\\u0000b"]}', "holds a NUL character or an unpaired surrogate"),
        ('{"turns": ["cut emoji \\ud83d"]}', "holds a NUL character or an unpaired surrogate"),
        ('{"id": "\\udfff", "turns": ["x"]}', "holds a NUL character or an unpaired surrogate"),
        # Cut to fit without a word, two long ids that shared 200 characters were one prompt.
        ('{"id": "' + "x" * 201 + '", "turns": ["x"]}', "'id' is 201 characters; at most 200"),
        ('{"category": "' + "c" * 101 + '", "turns": ["x"]}', "'category' is 101 characters"),
    ],
)
def test_malformed_prompt_line_is_reported_with_its_number_and_nothing_imported(
    tmp_path: Path, project: Project, line: str, message: str
) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "good", "turns": ["fine"]}, "", line])
    with pytest.raises(ImportFailed) as error:
        prompts_import(project=project, path=path)
    assert f"p.jsonl:3: {message}" in str(error.value)
    assert Prompt.objects.count() == 0


def test_a_prompt_without_an_id_is_imported_once_however_often_the_file_is(
    tmp_path: Path, project: Project
) -> None:
    """An id-less prompt was created again on every run (the README promises nothing twice):
    it gets an id from its text, which candidates can name too."""
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [{"turns": ["Name a colour."]}, {"id": None, "prompt": "Name a colour."}, {"turns": ["x"]}],
    )
    assert prompts_import(project=project, path=path).prompts_created == 2
    assert prompts_import(project=project, path=path).prompts_created == 0
    colour = Prompt.objects.get(turns=["Name a colour."])
    assert colour.external_id.startswith("auto-") and len(colour.external_id) == 21
    answers = write_jsonl(
        tmp_path / "c.jsonl",
        [{"prompt_id": colour.external_id, "model": m, "response": "red"} for m in ("a", "b")],
    )
    candidates_import(project=project, path=answers)
    assert Comparison.objects.filter(prompt=colour).count() == 1


def test_a_file_saved_with_a_byte_order_mark_imports(tmp_path: Path, project: Project) -> None:
    """Editors on Windows save UTF-8 with a BOM; its first line was 'invalid JSON'."""
    path = tmp_path / "bom.jsonl"
    path.write_text('\ufeff{"id": "q1", "turns": ["Hi"]}\r\n', encoding="utf-8")
    assert prompts_import(project=project, path=path).prompts_created == 1


def test_an_answer_no_database_can_hold_is_refused_with_its_line(
    tmp_path: Path, project: Project
) -> None:
    prompts_import(
        project=project, path=write_jsonl(tmp_path / "p.jsonl", [{"id": "q1", "turns": ["x"]}])
    )
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"prompt_id": "q1", "model": "m", "response": "fine"},
            '{"prompt_id": "q1", "model": "n", "response": "half an emoji \\ud83d"}',
        ],
    )
    with pytest.raises(ImportFailed, match=r"c\.jsonl:2: holds a NUL character or an unpaired"):
        candidates_import(project=project, path=path)
    assert Candidate.objects.count() == 0


def test_candidate_for_unknown_prompt_fails_the_whole_file(
    tmp_path: Path, project: Project
) -> None:
    prompts_import(
        project=project, path=write_jsonl(tmp_path / "p.jsonl", [{"id": "q1", "turns": ["x"]}])
    )
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"prompt_id": "q1", "model": "m", "response": "ok"},
            {"prompt_id": "missing", "model": "m", "response": "ok"},
            {"prompt_id": "q1", "model": "m", "response": "again"},
        ],
    )
    with pytest.raises(CommandError) as error:
        call_command("import_candidates", str(path), "--project", project.slug)
    assert "c.jsonl:2: no prompt with id 'missing'" in str(error.value)
    assert "c.jsonl:3: a second answer" in str(error.value)
    assert Candidate.objects.count() == 0 and ModelEntry.objects.count() == 0


def test_import_into_unknown_project_is_an_error(tmp_path: Path, db: None) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"turns": ["x"]}])
    with pytest.raises(CommandError, match="no project 'ghost'"):
        call_command("import_prompts", str(path), "--project", "ghost")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=20).map(repr)), max_size=5)
)
def test_prompt_import_never_half_imports(
    tmp_path: Path, project: Project, lines: list[str]
) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(line.replace("\n", " ") for line in lines), encoding="utf-8")
    before = Prompt.objects.count()
    try:
        report = prompts_import(project=project, path=path)
    except ImportFailed as failed:
        assert failed.errors and all("fuzz.jsonl" in e for e in failed.errors)
        assert Prompt.objects.count() == before
    else:
        assert Prompt.objects.count() == before + report.prompts_created


def test_load_demo_is_repeatable(db: None) -> None:
    call_command("load_demo", admin_password="pw-for-test-1")
    call_command("load_demo", admin_password="pw-for-test-2")
    project = Project.objects.get(slug="mt-bench-demo")
    assert Comparison.objects.filter(project=project, is_gold=False).count() == 480
    assert Comparison.objects.filter(project=project, is_gold=True).count() == 10
    assert project.gold_rate == 0.05
    assert project.memberships.get().role == "admin"
    assert project.models.filter(backend="transformers").count() == 2
    # GPT-4's published verdicts on every demo pair, once: the router can route the demo.
    judged = Judgment.objects.filter(comparison__project=project, judge="gpt-4-mtbench")
    assert judged.count() == 480 and judged.filter(consistent=False).exists()
    # Credited (CC-BY-4.0 asks for it) in the card of every export that holds them.
    assert [c.text for c in project.credits.filter(kind="judgments")] == [
        "GPT-4's MT-Bench pairwise verdicts, from the Hugging Face dataset "
        "lmsys/mt_bench_human_judgments (Zheng et al. 2023, arXiv:2306.05685), CC-BY-4.0"
    ]
