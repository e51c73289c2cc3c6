"""Verdicts an LLM judge gave elsewhere, imported as `Judgment` rows of a named judge.

The format is MT-Bench's pairwise judgments (FastChat's `gpt-4_pair.jsonl`, the `gpt4_pair`
split of the Hugging Face dataset `lmsys/mt_bench_human_judgments`), one verdict per line:

    {"question_id": 81, "turn": 1, "model_a": "alpaca-13b", "model_b": "claude-v1",
     "winner": "model_b"}

`winner` is `model_a`, `model_b`, `tie` or `tie (inconsistent)` (the verdict flipped when the
answers were swapped: stored as a tie that is not consistent). A verdict is matched to the
arena's comparison of the two models on the prompt `mtbench_import` made of that question and
turn, in either order. Such files carry no label probabilities: they are stored as 0, which
the router reads as "margin unknown". Other fields are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from annotation.importers import ImportFailed, mtbench_prompt_id
from annotation.models import Comparison, DataCredit, Project
from models_backend.models import Judgment
from prefarena import jsontext

WINNERS = {
    "model_a": ("model_a", True),
    "model_b": ("model_b", True),
    "tie": ("tie", True),
    "tie (inconsistent)": ("tie", False),
}
SWAPPED = {"model_a": "model_b", "model_b": "model_a", "tie": "tie"}


@dataclass
class JudgmentImport:
    created: int = 0
    already_there: int = 0
    # Verdicts on a question, turn or model pair the arena has no comparison for.
    unmatched: int = 0

    def summary(self) -> str:
        return (
            f"{self.created} verdicts imported, {self.already_there} already there, "
            f"{self.unmatched} without a matching comparison"
        )


@dataclass(frozen=True, slots=True)
class _Verdict:
    prompt_id: str
    models: tuple[str, str]
    winner: str
    consistent: bool


def _parsed(record: Any, where: str) -> _Verdict | str:
    if not isinstance(record, dict):
        return f"{where}: expected a JSON object"
    question, turn = record.get("question_id"), record.get("turn", 1)
    model_a, model_b = record.get("model_a"), record.get("model_b")
    if not isinstance(question, int | str) or isinstance(question, bool):
        return f"{where}: 'question_id' must be a number or a string"
    if not isinstance(turn, int) or isinstance(turn, bool) or turn < 1:
        return f"{where}: 'turn' must be a whole number from 1"
    if not isinstance(model_a, str) or not isinstance(model_b, str) or model_a == model_b:
        return f"{where}: 'model_a' and 'model_b' must name two different models"
    if record.get("winner") not in WINNERS:
        return f"{where}: 'winner' must be one of {', '.join(WINNERS)}"
    winner, consistent = WINNERS[record["winner"]]
    return _Verdict(mtbench_prompt_id(question, turn), (model_a, model_b), winner, consistent)


def _canonical(verdict: _Verdict) -> tuple[tuple[str, str, str], tuple[str, bool]]:
    """The pair a verdict is on, whichever model came first, and what it says of it."""
    a, b = verdict.models
    if a <= b:
        return (verdict.prompt_id, a, b), (verdict.winner, verdict.consistent)
    return (verdict.prompt_id, b, a), (SWAPPED[verdict.winner], verdict.consistent)


def _read(lines: Iterable[str], source: str) -> list[_Verdict]:
    verdicts, errors = [], []
    said: dict[tuple[str, str, str], tuple[str, bool]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            parsed = _parsed(jsontext.loads(line, storable=True), where)
        except jsontext.JSONTextError as exc:
            unstorable = isinstance(exc, jsontext.UnstorableText)
            parsed = f"{where}: {exc.msg}" if unstorable else f"{where}: not JSON ({exc.msg})"
        if isinstance(parsed, str):
            errors.append(parsed)
            continue
        pair, verdict = _canonical(parsed)
        if said.setdefault(pair, verdict) != verdict:
            errors.append(
                f"{where}: a second, different verdict on {pair[1]} and {pair[2]} at "
                f"{pair[0]} in this file"
            )
            continue
        verdicts.append(parsed)
    if errors:
        raise ImportFailed(errors)
    return verdicts


@transaction.atomic
def judgments_import(
    *,
    project: Project,
    judge: str,
    lines: Iterable[str],
    source: str = "judgments",
    credit: str = "",
) -> JudgmentImport:
    """Store each verdict of `lines` as `judge`'s judgment of the matching comparison.

    All or nothing: a malformed line raises `ImportFailed` (every bad line named) and stores
    nothing. A comparison `judge` has already judged keeps its verdict, so importing the same
    file again changes nothing. `credit` (the verdicts' source and licence) is recorded for
    export cards when the file matched any comparison.
    """
    if not judge.strip():
        raise ImportFailed(["the judge needs a name"])
    verdicts = _read(lines, source)
    comparisons: dict[tuple[str, str, str], tuple[Comparison, bool]] = {}
    for comparison in Comparison.objects.filter(
        project=project,
        is_gold=False,
        prompt__external_id__in={v.prompt_id for v in verdicts},
    ).select_related("prompt", "candidate_a__model", "candidate_b__model"):
        a, b = comparison.candidate_a.model.name, comparison.candidate_b.model.name
        comparisons[(comparison.prompt.external_id, a, b)] = (comparison, False)
        comparisons[(comparison.prompt.external_id, b, a)] = (comparison, True)
    judged = set(
        Judgment.objects.filter(comparison__project=project, judge=judge).values_list(
            "comparison_id", flat=True
        )
    )
    report, rows = JudgmentImport(), []
    for verdict in verdicts:
        match = comparisons.get((verdict.prompt_id, *verdict.models))
        if match is None:
            report.unmatched += 1
            continue
        comparison, swapped = match
        if comparison.pk in judged:
            report.already_there += 1
            continue
        judged.add(comparison.pk)
        rows.append(
            Judgment(
                comparison=comparison,
                judge=judge,
                verdict=SWAPPED[verdict.winner] if swapped else verdict.winner,
                p_a=0.0,
                p_b=0.0,
                p_tie=0.0,
                consistent=verdict.consistent,
                rationale=f"imported from {source}",
                time_recorded=False,  # the format carries no time: created_at is the import's
            )
        )
    Judgment.objects.bulk_create(rows, batch_size=1000)
    report.created = len(rows)
    if report.created or report.already_there:
        DataCredit.record(project=project, kind=DataCredit.Kind.JUDGMENTS, text=credit)
    return report
