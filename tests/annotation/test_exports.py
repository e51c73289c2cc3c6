"""Preference dataset exports: every format, the rules, filters, the card, jobs, the command."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from django.core.management import CommandError, call_command
from django.http import QueryDict
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation import moderation, selectors
from annotation.exports.card import yaml_string
from annotation.exports.options import ExportRequestInvalid, parse_options
from annotation.exports.service import export_job_create, export_to_path
from annotation.models import (
    Annotator,
    Assignment,
    Candidate,
    Comparison,
    DataCredit,
    ExportJob,
    Project,
    Vote,
)
from annotation.vote_import import votes_import
from models_backend.models import Judgment
from tests.factories import (
    AnnotatorFactory,
    ComparisonFactory,
    JudgmentFactory,
    ModelEntryFactory,
    PromptFactory,
    RouteDecisionFactory,
)

pytestmark = pytest.mark.django_db


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def vote(comparison: Comparison, winner: str, *, annotator=None, left_is_a=True, minutes=0) -> Vote:
    annotator = annotator or AnnotatorFactory()
    choice = {"tie": "tie", "tie (bothbad)": "both_bad"}.get(winner) or (
        "left" if (winner == "model_a") == left_is_a else "right"
    )
    return Vote.objects.create(
        comparison=comparison,
        annotator=annotator,
        left_is_a=left_is_a,
        choice=choice,
        winner=winner,
        time_to_vote_ms=12000,
        created_at=timezone.now() - timedelta(minutes=minutes),
    )


@pytest.fixture
def arena(project: Project) -> dict[str, Comparison]:
    gpt, claude, llama = (
        ModelEntryFactory(project=project, name=name) for name in ("gpt", "claude", "llama")
    )
    single = PromptFactory(
        project=project, category="math", turns=["What is 2+2?"], source="Unit tests, CC0"
    )
    double = PromptFactory(
        project=project, category="writing", turns=["Write a haiku.", "Now shorter."]
    )
    return {
        "single": ComparisonFactory(
            project=project,
            prompt=single,
            candidate_a__model=gpt,
            candidate_a__responses=["4"],
            candidate_b__model=claude,
            candidate_b__responses=["5"],
        ),
        "double": ComparisonFactory(
            project=project,
            prompt=double,
            candidate_a__model=claude,
            candidate_a__responses=["haiku one", "short one"],
            candidate_b__model=llama,
            candidate_b__responses=["haiku two", "short two"],
        ),
    }


def test_web_votes_round_trip_through_dpo_into_datasets(
    client: Client, project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    project.votes_per_comparison = 10
    project.save()
    Comparison.objects.update(votes_wanted=10)
    choices = ["left", "right", "tie", "left", "both_bad", "right"]
    for choice in choices:
        browser = Client()
        browser.get(reverse("annotation:arena", args=[project.slug]))
        assignment = Assignment.objects.filter(vote__isnull=True).latest("served_at")
        response = browser.post(
            reverse("annotation:arena-vote", args=[project.slug]),
            {"assignment": str(assignment.token), "choice": choice},
        )
        assert response.status_code == 302
    out = tmp_path / "dpo"
    call_command(
        "export_dataset",
        project=project.slug,
        format="dpo",
        out=out,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    dataset = datasets.load_from_disk(str(out))
    decisive = list(
        Vote.objects.filter(winner__in=["model_a", "model_b"])
        .select_related("comparison__candidate_a", "comparison__candidate_b")
        .order_by("comparison_id", "id")
    )
    assert len(dataset) == len(decisive) == 4
    for row, cast in zip(dataset, decisive, strict=True):
        c = cast.comparison
        winner, loser = (
            (c.candidate_a, c.candidate_b)
            if cast.winner == "model_a"
            else (c.candidate_b, c.candidate_a)
        )
        assert row["comparison_id"] == c.pk
        assert row["prompt"] == [{"role": "user", "content": c.prompt.turns[0]}]
        assert [m["content"] for m in row["chosen"] if m["role"] == "assistant"] == winner.responses
        assert [
            m["content"] for m in row["rejected"] if m["role"] == "assistant"
        ] == loser.responses
        assert (row["chosen_model"], row["rejected_model"]) == (winner.model.name, loser.model.name)
        assert row["label_source"] == "human"
    card = (out / "README.md").read_text()
    assert "rows: 4" in card and "2 tie, both bad or split" in card


def test_raw_votes_keep_ties_sides_and_exclusion_state(
    project: Project, arena: dict[str, Comparison], tmp_path: Path, admin_user_of_project
) -> None:
    single = arena["single"]
    shown_right = vote(single, "model_a", left_is_a=False)
    vote(single, "tie")
    flagged = vote(single, "model_b")
    moderation.annotator_set_state(
        annotator=flagged.annotator, state="flagged", actor=admin_user_of_project, reason="test"
    )
    Judgment.objects.create(
        comparison=single,
        judge="judge-lm",
        verdict="model_a",
        p_a=0.7,
        p_b=0.2,
        p_tie=0.1,
        consistent=True,
    )
    default = export_to_path(project, parse_options({"format": "votes"}), tmp_path / "v.jsonl")
    rows = read_jsonl(default.data)
    assert [r["winner"] for r in rows] == ["model_a", "tie"]
    first = rows[0]
    assert (first["shown_left"], first["choice"], first["winner"]) == (
        "model_b",
        "right",
        "model_a",
    )
    assert (
        first["label_id"] == shown_right.pk
        and first["annotator"] == shown_right.annotator.pseudonym
    )
    assert first["answer_a"] == ["4"] and first["prompt"] == ["What is 2+2?"]
    assert first["excluded"] is False and first["time_to_vote_ms"] == 12000
    Judgment.objects.create(
        comparison=arena["double"], judge="judge-lm", verdict="model_b",
        p_a=0.2, p_b=0.7, p_tie=0.1, consistent=True,
    )  # fmt: skip
    both = export_to_path(
        project,
        parse_options({"format": "votes", "source": "judge"}),
        tmp_path / "judge.jsonl",
    )
    assert [r["winner"] for r in read_jsonl(both.data)] == ["model_a", "model_b"]
    final = export_to_path(
        project,
        parse_options({"format": "votes", "source": "final", "include_flagged": "true"}),
        tmp_path / "final.jsonl",
    )
    rows = read_jsonl(final.data)
    # Final labels: people's votes where they voted (not the judge's verdict on that pair
    # too), the judge's verdict where nobody did.
    assert [(r["source"], r["winner"], r["excluded"]) for r in rows] == [
        ("human", "model_a", False),
        ("human", "tie", False),
        ("human", "model_b", True),
        ("judge", "model_b", False),
    ]
    assert rows[-1]["p_b"] == 0.7 and rows[-1]["comparison_id"] == arena["double"].pk
    assert rows[2]["annotator_state"] == "flagged"


def test_pairs_aggregate_votes_judge_and_final_label(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    for winner in ("model_a", "model_a", "model_b"):
        vote(arena["single"], winner)
    Judgment.objects.create(
        comparison=arena["double"],
        judge="j",
        verdict="model_b",
        p_a=0.1,
        p_b=0.8,
        p_tie=0.1,
        consistent=True,
    )
    result = export_to_path(project, parse_options({"format": "pairs"}), tmp_path / "pairs.parquet")
    rows = pq.read_table(result.data).to_pylist()
    single, double = rows
    assert (single["votes"], single["votes_model_a"], single["majority"]) == (3, 2, "model_a")
    assert single["agreement"] == pytest.approx(2 / 3)
    assert (single["final_label"], single["final_source"]) == ("model_a", "human")
    assert (double["votes"], double["judge_verdict"], double["judge_p_b"]) == (0, "model_b", 0.8)
    assert double["judge_consistent"] is True and single["judge_consistent"] is None
    assert (double["final_label"], double["final_source"], double["route"]) == (
        "model_b",
        "judge",
        "human",
    )
    assert single["audit_chance"] is None and single["surely_human"] is None  # never routed
    RouteDecisionFactory(
        comparison=arena["single"], route="both", audit_chance=0.125, surely_human=True
    )
    Comparison.objects.filter(pk=arena["single"].pk).update(route="both")
    result = export_to_path(project, parse_options({"format": "pairs"}), tmp_path / "p.jsonl")
    audited = read_jsonl(result.data)[0]
    assert (audited["route"], audited["audit_chance"], audited["surely_human"]) == (
        "both",
        0.125,
        True,
    )
    unanimous = export_to_path(
        project, parse_options({"format": "pairs", "min_agreement": 0.9}), tmp_path / "u.jsonl"
    )
    assert [r["comparison_id"] for r in read_jsonl(unanimous.data)] == [arena["double"].pk]


def test_min_agreement_keeps_two_thirds_applies_to_judge_labels_and_the_card_counts_it(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    for winner in ("model_a", "model_a", "model_b"):  # two thirds agree
        vote(arena["single"], winner)
    for comparison in arena.values():
        JudgmentFactory(comparison=comparison)
    cheat = AnnotatorFactory(state=Annotator.State.FLAGGED)
    vote(arena["double"], "model_b", annotator=cheat)

    def export(name: str, **options: object) -> tuple[list[dict], str]:
        result = export_to_path(project, parse_options(options), tmp_path / name)
        return read_jsonl(result.data), result.card.read_text()

    rows, _ = export("a.jsonl", format="pairs", min_agreement=0.67)
    assert len(rows) == 2  # 2/3 = 0.6667 reaches 0.67 at two decimals
    rows, card = export("j.jsonl", format="dpo", source="judge", min_agreement=1.0)
    assert [r["comparison_id"] for r in rows] == [arena["double"].pk]  # the split pair goes
    assert "left out: 1 comparisons below min_agreement, 1 votes of flagged" in card
    votes, _ = export("v.jsonl", format="votes", source="judge", min_agreement=1.0)
    assert {r["source"] for r in votes} == {"judge"}  # votes read for the agreement only


def test_single_turn_leaves_out_multi_turn_comparisons_in_every_format(
    client: Client, project: Project, arena: dict[str, Comparison], tmp_path: Path, researcher_user
) -> None:
    """TRL's DPO puts all of a multi-turn row's chosen/rejected in the loss (the first answer,
    the next question and the answer voted on) and cuts long rows from the end: a trainer may
    want only the comparisons of one turn, with the card saying what was left out."""
    vote(arena["single"], "model_b")
    vote(arena["double"], "model_a")
    vote(arena["double"], "tie")
    for format in ("dpo", "hh", "pairs", "votes"):
        result = export_to_path(
            project, parse_options({"format": format, "single_turn": "1"}), tmp_path / "s.jsonl"
        )
        rows = read_jsonl(result.data)
        assert {row["comparison_id"] for row in rows if "comparison_id" in row} <= {
            arena["single"].pk
        }, format
        assert len(rows) == 1, format
        card = result.card.read_text()
        assert "left out: 1 multi-turn comparisons (single_turn)" in card, format
        assert "single_turn: True" in card
    assert ExportJob(options={"single_turn": True}).filters_summary.endswith("single-turn only")
    # Counted in the card: the comparisons read, and how many gave rows.
    both = export_to_path(project, parse_options({"format": "dpo"}), tmp_path / "b.jsonl")
    assert "comparisons read (with a label the export takes): 2, 2 of them in the rows" in (
        both.card.read_text()
    )
    # The same option through the API, the stream and the command.
    client.force_login(researcher_user)
    stream = reverse("api:export-stream", args=[project.slug])
    streamed = client.get(f"{stream}?format=dpo&single_turn=true").streaming_content
    lines = b"".join(streamed).decode().splitlines()
    assert [json.loads(line)["comparison_id"] for line in lines] == [arena["single"].pk]
    out = tmp_path / "cli.jsonl"
    call_command("export_dataset", project=project.slug, out=out, single_turn=True)
    assert len(read_jsonl(out)) == 1


def test_the_card_counts_rows_whose_answer_is_empty(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    """MT-Bench has empty answers (llama-13b on question 127): the rows are kept, as the
    votes were cast on them, and the card says how many a trainer may want to drop."""
    Candidate.objects.filter(pk=arena["single"].candidate_b_id).update(responses=["  "])
    vote(arena["single"], "model_a")
    vote(arena["double"], "model_a")
    for format in ("dpo", "openai", "hh"):
        result = export_to_path(project, parse_options({"format": format}), tmp_path / "e.jsonl")
        card = result.card.read_text()
        assert "- rows where an answer is empty: 1 (kept; the vote was cast on it)" in card, format
    card = export_to_path(
        project, parse_options({"format": "dpo", "models": "claude,llama"}), tmp_path / "n.jsonl"
    ).card.read_text()
    assert "rows where an answer is empty" not in card


def test_openai_and_hh_formats(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    vote(arena["single"], "model_b")
    vote(arena["double"], "model_a")
    openai = export_to_path(project, parse_options({"format": "openai"}), tmp_path / "o.jsonl")
    (row,) = read_jsonl(openai.data)
    assert row["input"] == {
        "messages": [{"role": "user", "content": "What is 2+2?"}],
        "tools": [],
        "parallel_tool_calls": True,
    }
    assert row["preferred_output"] == [{"role": "assistant", "content": "5"}]
    assert row["non_preferred_output"] == [{"role": "assistant", "content": "4"}]
    assert openai.stats.skipped == {"multi-turn (OpenAI input must be shared)": 1}
    assert "1 multi-turn" in openai.card.read_text()
    hh = export_to_path(project, parse_options({"format": "hh"}), tmp_path / "hh.parquet")
    rows = pq.read_table(hh.data).to_pylist()
    assert rows[1]["chosen"] == (
        "\n\nHuman: Write a haiku.\n\nAssistant: haiku one"
        "\n\nHuman: Now shorter.\n\nAssistant: short one"
    )
    assert rows[1]["rejected"].endswith("Assistant: short two")


def test_filters_by_model_category_and_date(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    vote(arena["single"], "model_a", minutes=60 * 24 * 3)
    vote(arena["double"], "model_a")

    def exported(**filters) -> list[int]:
        result = export_to_path(
            project, parse_options({"format": "votes", **filters}), tmp_path / "f.jsonl"
        )
        return [r["comparison_id"] for r in read_jsonl(result.data)]

    single, double = arena["single"].pk, arena["double"].pk
    assert exported() == [single, double]
    assert exported(models="gpt,claude") == [single]
    assert exported(categories=["writing"]) == [double]
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    assert exported(since=yesterday) == [double]
    assert exported(until=yesterday) == [single]


def test_a_dated_export_leaves_out_labels_imported_without_a_time(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    """An imported vote or verdict with no timestamp is stored at the import's time; a
    since/until filter used to take it as cast then, and its export said so."""
    timed = vote(arena["single"], "model_a")
    untimed = vote(arena["double"], "model_b")
    Vote.objects.filter(pk=untimed.pk).update(source="import", time_recorded=False)
    judged = JudgmentFactory(comparison=arena["double"], verdict="model_a", time_recorded=False)

    def exported(**options) -> tuple[list[dict], str]:
        result = export_to_path(
            project, parse_options({"format": "pairs", **options}), tmp_path / "t.jsonl"
        )
        return read_jsonl(result.data), result.card.read_text()

    rows, _ = exported()
    assert [r["comparison_id"] for r in rows] == [timed.comparison_id, judged.comparison_id]
    votes, _ = exported(format="votes")
    assert [v["created_at"] is None for v in votes] == [False, True]
    verdicts, _ = exported(format="votes", source="judge")
    assert [v["created_at"] for v in verdicts] == [None]
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    rows, card = exported(since=yesterday)
    assert [r["comparison_id"] for r in rows] == [timed.comparison_id]
    assert "since/until take only labels with a recorded time" in card
    # The leaderboard's date filter reads them the same way.
    dated = selectors.LeaderboardFilters(since=timezone.now() - timedelta(days=1), source="all")
    assert selectors.battle_counts(project, dated).total_votes == 1
    assert (
        selectors.battle_counts(project, selectors.LeaderboardFilters(source="all")).total_votes
        == 3
    )


def test_the_card_names_counts_filters_and_licences(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    vote(arena["single"], "model_a")
    vote(arena["single"], "model_a")
    result = export_to_path(
        project, parse_options({"format": "dpo", "models": "gpt,claude"}), tmp_path / "d.jsonl"
    )
    card = result.card.read_text()
    assert result.card.name == "d.jsonl.README.md"
    for fragment in (
        "rows: 2",
        "comparisons read (with a label the export takes): 1",
        "claude, gpt",
        "models: claude, gpt",
        "1.000 mean share of the majority label",
        "Unit tests, CC0",
        "Ties and both-bad",
        "with `human` labels one per vote",
        "Votes: cast in this prefarena arena",
    ):
        assert fragment in card
    Vote.objects.filter(pk=vote(arena["single"], "model_a").pk).update(source="import")
    result = export_to_path(project, parse_options({"format": "dpo"}), tmp_path / "i.jsonl")
    assert "Votes: 2 cast in this prefarena arena, 1 imported from elsewhere" in (
        result.card.read_text()
    )
    # A Parquet export of the same name keeps its own card beside the JSON Lines one's.
    parquet = export_to_path(
        project, parse_options({"format": "dpo", "models": "gpt,claude"}), tmp_path / "d.parquet"
    )
    assert parquet.card.name == "d.parquet.README.md" and result.card.exists()


def test_the_card_credits_imported_votes_and_verdicts_and_is_valid_yaml(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    """Imported labels were never credited (MT-Bench's judgments are CC-BY-4.0, which asks
    for it), a judge-only card said its votes were "cast in this prefarena arena", and a
    title with ": " broke the card's YAML header."""
    project.title = "Arena: round #2 [beta]"
    project.save()
    JudgmentFactory(comparison=arena["single"], judge="gpt-4", verdict="model_a")
    votes_file = tmp_path / "votes.jsonl"
    votes_file.write_text(
        json.dumps({"annotator": "expert-1", "comparison": arena["single"].pk, "winner": "model_a"})
        + "\n"
    )
    votes_import(project=project, path=votes_file, credit="Expert votes, CC-BY-4.0")
    DataCredit.record(project=project, kind="judgments", text="GPT-4 verdicts (lmsys),\n CC-BY-4.0")

    judge_only = export_to_path(
        project, parse_options({"format": "dpo", "source": "judge"}), tmp_path / "j.jsonl"
    ).card.read_text()
    header = yaml.safe_load(judge_only.split("---")[1])
    assert header["pretty_name"] == "Arena: round #2 [beta] (dpo)"
    assert "- Judge verdicts: GPT-4 verdicts (lmsys), CC-BY-4.0" in judge_only
    assert "Expert votes" not in judge_only  # no imported vote is in this export
    assert "- Votes: none in this export" in judge_only

    human = export_to_path(
        project, parse_options({"format": "votes"}), tmp_path / "h.jsonl"
    ).card.read_text()
    assert "- Votes: Expert votes, CC-BY-4.0" in human
    assert "0 cast in this prefarena arena, 1 imported from elsewhere" in human
    assert "GPT-4 verdicts" not in human


@pytest.mark.parametrize(
    "title",
    [
        'Arena: v2 # "test" \x9b[31m',
        "a\x85b\u2028c\u2029",
        "Ärena [beta]: #1 {x}",
        "tab\tbom\ufeff",
    ],
)
def test_the_card_title_reads_back_exactly_as_yaml(title: str) -> None:
    """A C1 control in a title (U+009B) made the card's header unreadable; U+0085 read back
    as a space."""
    assert yaml.safe_load(f"pretty_name: {yaml_string(title)}")["pretty_name"] == title


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"format": "csv"}, "format must be one of"),
        ({"source": "robots"}, "source must be one of"),
        ({"categories": 5}, "categories must be a name, names separated by commas, or a list"),
        ({"models": [{"a": 1}]}, "models must be a name, names separated by commas, or a list"),
        ({"min_agreement": "2"}, "between 0 and 1"),
        ({"min_agreement": "most"}, "between 0 and 1"),
        ({"since": "yesterday"}, "ISO date"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "since must be before until"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options: dict, message: str) -> None:
    with pytest.raises(ExportRequestInvalid, match=message):
        parse_options(options)


def test_export_command_fails_loudly(project: Project, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"write \.jsonl, \.parquet, or a folder"):
        call_command("export_dataset", project=project.slug, out=tmp_path / "x.csv")
    with pytest.raises(CommandError, match="no project"):
        call_command("export_dataset", project="nope", out=tmp_path / "x.jsonl")


def test_an_export_never_clobbers_a_folder_or_file_it_did_not_write(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    thesis = tmp_path / "work" / "thesis.tex"
    thesis.parent.mkdir()
    thesis.write_text("months of work")
    with pytest.raises(CommandError, match="holds other files"):
        call_command("export_dataset", project=project.slug, out=thesis.parent)
    assert thesis.read_text() == "months of work"
    (tmp_path / "work" / "notes").write_text("kept")
    with pytest.raises(CommandError, match="is a file"):
        call_command("export_dataset", project=project.slug, out=tmp_path / "work" / "notes")
    assert (tmp_path / "work" / "notes").read_text() == "kept"
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(CommandError, match="is a folder"):
        call_command("export_dataset", project=project.slug, out=tmp_path / "dir.jsonl")
    with pytest.raises(CommandError, match="cannot write"):  # a file where a folder is due
        call_command("export_dataset", project=project.slug, out=tmp_path / "work/notes/d.jsonl")
    # An earlier export in the folder is replaced, as is an empty folder.
    folder = tmp_path / "dpo"
    call_command("export_dataset", project=project.slug, out=folder)
    call_command("export_dataset", project=project.slug, out=folder, format="hh")
    assert set(datasets.load_from_disk(str(folder)).column_names) >= {"chosen", "rejected"}


def test_an_export_with_no_rows_is_an_empty_dataset_with_its_columns(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    options = parse_options({"format": "dpo", "since": "2999-01-01"})
    result = export_to_path(project, options, tmp_path / "empty")
    loaded = datasets.load_from_disk(str(result.data))
    assert len(loaded) == 0
    assert loaded.column_names[:3] == ["prompt", "chosen", "rejected"]


def test_export_job_runs_with_progress_and_files(
    project: Project,
    arena: dict[str, Comparison],
    settings,
    tmp_path: Path,
    django_capture_on_commit_callbacks,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    vote(arena["single"], "model_a")
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(
            project=project, options=parse_options({"format": "dpo"}), file_type="hf"
        )
    job.refresh_from_db()
    assert (job.status, job.rows, job.total, job.completed, job.percent) == ("done", 1, 2, 2, 100)
    assert job.download_path.endswith(".zip") and (tmp_path / job.download_path).exists()
    assert "rows: 1" in (tmp_path / job.card_path).read_text()


def test_a_failing_export_job_records_why(
    project: Project, settings, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    settings.MEDIA_ROOT = tmp_path
    with django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(
            project=project, options=parse_options({"format": "dpo"}), file_type="jsonl"
        )
    job = ExportJob.objects.get(pk=job.pk)
    assert job.status == "done" and job.rows == 0
    ExportJob.objects.filter(pk=job.pk).update(status="queued", options={"format": "nonsense"})
    from annotation.tasks import export_run_task

    export_run_task(job_pk=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "format must be one of" in job.error


def test_export_page_runs_a_job_and_serves_its_files(
    client: Client,
    project: Project,
    *,
    arena: dict[str, Comparison],
    researcher_user,
    annotator_user,
    settings,
    tmp_path: Path,
    django_capture_on_commit_callbacks,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    vote(arena["single"], "model_a")
    page = reverse("annotation:exports", args=[project.slug])
    client.force_login(annotator_user)
    assert client.get(page).status_code == 403
    client.force_login(researcher_user)
    html = client.get(page).content.decode()
    assert 'value="gpt"' in html and 'value="math"' in html
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            page,
            {
                "format": "dpo",
                "file_type": "parquet",
                "source": "human",
                "models": ["gpt", "claude"],
            },
        )
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert job.status == "done" and job.options["models"] == ["claude", "gpt"]
    listing = client.get(page, HTTP_HX_REQUEST="true").content.decode()
    assert f'data-export="{job.pk}"' in listing and "<html" not in listing
    assert "human labels; models claude, gpt" in listing  # which export this was
    assert reverse("models_backend:jobs", args=[project.slug]) in client.get(page).content.decode()
    download = client.get(
        reverse("annotation:export-file", args=[project.slug, job.pk, "download"])
    )
    assert download.status_code == 200
    assert download["Content-Type"] == "application/vnd.apache.parquet"
    rows = pq.read_table(io.BytesIO(b"".join(download.streaming_content))).to_pylist()
    assert len(rows) == 1 and rows[0]["chosen_model"] == "gpt"
    card = client.get(reverse("annotation:export-file", args=[project.slug, job.pk, "card"]))
    assert b"rows: 1" in b"".join(card.streaming_content)
    assert card["Content-Type"] == "text/plain; charset=utf-8"  # read in the browser
    other = reverse("annotation:export-file", args=[project.slug, job.pk, "anything"])
    assert client.get(other).status_code == 404
    bad = client.post(page, {"format": "dpo", "file_type": "csv", "source": "human"})
    assert bad.status_code == 400 and ExportJob.objects.count() == 1


def test_a_verdict_imported_without_probabilities_exports_none_not_zero(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    Judgment.objects.create(
        comparison=arena["single"], judge="gpt-4-mtbench", verdict="tie",
        p_a=0.0, p_b=0.0, p_tie=0.0, consistent=False,
    )  # fmt: skip
    options = {"source": "judge"}
    pairs = export_to_path(
        project, parse_options({**options, "format": "pairs"}), tmp_path / "p.jsonl"
    )
    (row,) = read_jsonl(pairs.data)
    assert (row["judge_p_a"], row["judge_p_b"], row["judge_p_tie"]) == (None, None, None)
    assert (row["judge_verdict"], row["judge_consistent"]) == ("tie", False)
    votes = export_to_path(
        project, parse_options({**options, "format": "votes"}), tmp_path / "v.parquet"
    )
    (vote_row,) = pq.read_table(votes.data).to_pylist()
    assert (vote_row["p_a"], vote_row["p_b"], vote_row["p_tie"]) == (None, None, None)


def test_the_card_counts_a_both_bad_majority_against_a_judge_tie_as_agreement(
    project: Project, arena: dict[str, Comparison], tmp_path: Path
) -> None:
    for winner in ("tie (bothbad)", "tie (bothbad)", "model_a"):
        vote(arena["single"], winner)
    vote(arena["double"], "model_a")
    vote(arena["double"], "model_b")  # split: left out
    for comparison in arena.values():
        Judgment.objects.create(
            comparison=comparison, judge="j", verdict="tie",
            p_a=0.3, p_b=0.3, p_tie=0.4, consistent=True,
        )  # fmt: skip
    result = export_to_path(project, parse_options({"format": "pairs"}), tmp_path / "p.jsonl")
    card = result.card.read_text()
    assert "judge agrees with the human majority on 100.0% of 1 comparisons with both" in card
    assert "a both-bad majority counts as a tie" in card


@pytest.mark.usefixtures("arena")
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"categories": "math,nosuch"}, "categories: this arena has no 'nosuch'"),
        ({"models": "gpt,gpt-5"}, "models: this arena has no 'gpt-5'"),
        ({"models": "gpt"}, "models: list two or more"),
        ({"include_flagged": "maybe"}, "include_flagged must be true or false"),
    ],
)
def test_a_typo_in_a_filter_is_an_error_not_an_empty_dataset(
    client: Client, project: Project, researcher_user, *, tmp_path: Path, query: dict, message: str
) -> None:
    client.force_login(researcher_user)
    stream = client.get(reverse("api:export-stream", args=[project.slug]), query)
    assert stream.status_code == 400 and message in stream.json()["detail"]
    job = client.post(
        reverse("api:exports", args=[project.slug]),
        {"format": "dpo", **query},
        content_type="application/json",
    )
    # The job API reads booleans as DRF does ("maybe" is no boolean there either).
    assert job.status_code == 400 and next(iter(query)) in json.dumps(job.json())
    with pytest.raises(CommandError, match=message):
        call_command("export_dataset", project=project.slug, out=tmp_path / "x.jsonl", **query)
    assert not ExportJob.objects.exists()
    # Known names still export.
    ok = client.get(reverse("api:export-stream", args=[project.slug]), {"categories": "math"})
    assert ok.status_code == 200


@pytest.mark.usefixtures("arena")
def test_export_filters_take_repeated_and_comma_separated_names(
    client: Client, project: Project, researcher_user
) -> None:
    client.force_login(researcher_user)
    stream = reverse("api:export-stream", args=[project.slug])
    for query in (
        "models=gpt&models=claude",
        "models=gpt,claude",
        "models=gpt&models=claude,llama",
    ):
        response = client.get(f"{stream}?{query}&format=pairs")
        assert response.status_code == 200, query
    job = client.post(
        reverse("api:exports", args=[project.slug]),
        "format=dpo&models=gpt,claude&categories=math",
        content_type="application/x-www-form-urlencoded",
    )
    assert job.status_code == 202
    assert ExportJob.objects.get().options["models"] == ["claude", "gpt"]
    # "category" (as the leaderboard spells it) and "categories" together: both count.
    both = parse_options(QueryDict("categories=math&category=writing&categories=code"))
    assert both.categories == ("code", "math", "writing")


def test_a_queued_export_cancelled_from_the_page_never_runs(
    client: Client,
    project: Project,
    *,
    arena: dict[str, Comparison],
    researcher_user,
    settings,
    tmp_path: Path,
) -> None:
    settings.MEDIA_ROOT = tmp_path
    job = export_job_create(
        project=project, options=parse_options({"format": "votes"}), file_type="jsonl"
    )
    page = reverse("annotation:exports", args=[project.slug])
    client.force_login(researcher_user)
    assert f'id="cancel-export-{job.pk}"' in client.get(page).content.decode()

    cancel = reverse("annotation:export-cancel", args=[project.slug, job.pk])
    listing = client.post(cancel, HTTP_HX_REQUEST="true").content.decode()

    job.refresh_from_db()
    assert job.status == "cancelled" and job.error == f"Cancelled by {researcher_user.username}."
    assert f'id="cancel-export-{job.pk}"' not in listing and "cancelled" in listing
    from annotation.tasks import export_run_task

    export_run_task(job_pk=job.pk)  # its message arrives after all
    job.refresh_from_db()
    assert job.status == "cancelled" and not (tmp_path / "exports" / str(job.pk)).exists()
    assert client.post(cancel).status_code == 302  # an ended job is left as it is


def test_an_export_cancelled_while_it_runs_stops_and_leaves_no_files(
    project: Project, arena: dict[str, Comparison], settings, tmp_path: Path, monkeypatch
) -> None:
    from annotation.exports import service

    settings.MEDIA_ROOT = tmp_path
    vote(arena["single"], "model_a")
    job = export_job_create(
        project=project, options=parse_options({"format": "votes"}), file_type="jsonl"
    )
    real_export = service.export_to_path

    def cancelled_on_the_way(*args, **kwargs):  # a researcher clicks Cancel as it starts
        assert service.export_job_cancel(job=job, by="someone")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(service, "export_to_path", cancelled_on_the_way)

    finished = service.export_job_run(job)

    assert (finished.status, finished.error, finished.download_path) == (
        "cancelled",
        "Cancelled by someone.",
        "",
    )
    assert not (tmp_path / "exports" / str(job.pk)).exists()


def test_an_export_is_cancelled_over_the_api_once(
    project: Project, arena: dict[str, Comparison], researcher_user
) -> None:
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(researcher_user)
    job = export_job_create(
        project=project, options=parse_options({"format": "votes"}), file_type="jsonl"
    )
    url = reverse("api:export-cancel", args=[project.slug, job.pk])

    first = api.post(url)
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    again = api.post(url)
    assert again.status_code == 409
    assert again.json() == {"detail": "This export had already ended (cancelled).", "status": 409}


def test_an_export_delivered_twice_is_written_once_by_the_later_run(
    project: Project, arena: dict[str, Comparison], settings, tmp_path: Path, monkeypatch
) -> None:
    """A second delivery while the first runs (a redelivery; beat sending a queued job again)
    takes the job over; the first stops without marking it done or touching the files. It used
    to end "done" with its folder deleted by the run that lost the race."""
    from annotation.exports import service

    settings.MEDIA_ROOT = tmp_path
    vote(arena["single"], "model_a")
    job = export_job_create(
        project=project, options=parse_options({"format": "votes"}), file_type="jsonl"
    )
    real_export = service.export_to_path
    second: list[ExportJob] = []

    def overtaken(*args, **kwargs):
        if not second:  # the first run, as it starts: the second delivery runs to the end
            monkeypatch.setattr(service, "export_to_path", real_export)
            second.append(service.export_job_run(ExportJob.objects.get(pk=job.pk)))
        return real_export(*args, **kwargs)

    monkeypatch.setattr(service, "export_to_path", overtaken)

    first = service.export_job_run(job)

    assert second[0].status == first.status == "done"
    assert (tmp_path / first.download_path).is_file() and (tmp_path / first.card_path).is_file()
    assert len(read_jsonl(tmp_path / first.download_path)) == 1
