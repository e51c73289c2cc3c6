"""Import votes cast elsewhere (MT-Bench experts, another arena) from JSON Lines.

One vote per line::

    {"annotator": "expert_0", "question_id": 81, "turn": 1, "model_a": "gpt-4",
     "model_b": "claude-v1", "winner": "model_a", "tstamp": 1687000000.5,
     "time_to_vote_ms": 41000, "shown_left": "model_b", "fingerprint": "..."}

or with ``"comparison": 123`` in place of question_id, turn and the models. ``winner`` is one
of model_a, model_b, tie, "tie (bothbad)" in the line's own model order; ``shown_left`` says
which of the line's models was on the left (model_a or model_b), if known. The fingerprint is
stored only as a salted hash.

Imported votes obey the web's rules: the pair must exist in the project, the choice must be
allowed there, and an annotator votes on a pair once (a repeat is skipped and reported, so
importing a file twice adds nothing). A malformed file imports nothing and every problem is
reported with its line number.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotation import services
from annotation.importers import ImportFailed, mtbench_prompt_id, read_jsonl
from annotation.models import MAX_INT, Annotator, Comparison, DataCredit, Project, Vote
from annotation.models import WEB_PSEUDONYM_PREFIX as WEB_PREFIX

WINNERS = {w.value for w in Vote.Winner}
SIDES = ("model_a", "model_b")
# Comparisons per vote-count UPDATE of an import.
UPDATE_CHUNK = 5000
_SWAPPED = {"model_a": "model_b", "model_b": "model_a"}
_CHOICE_OF_WINNER = {"tie": Vote.Choice.TIE, "tie (bothbad)": Vote.Choice.BOTH_BAD}


@dataclass
class VoteImportReport:
    votes_created: int = 0
    votes_skipped: int = 0
    annotators_created: int = 0
    # Lines on pairs the project lacks, left out on request (`skip_unmatched`).
    votes_unmatched: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        unmatched = (
            f", {self.votes_unmatched} on pairs this project lacks left out"
            if self.votes_unmatched
            else ""
        )
        return (
            f"{self.votes_created} votes imported, {self.votes_skipped} skipped "
            f"(already voted){unmatched}, {self.annotators_created} new annotators"
        )


@dataclass(frozen=True)
class _ParsedVote:
    line: int
    annotator: str
    comparison_id: int
    winner: str  # in the comparison's order
    left_is_a: bool | None
    created_at: datetime | None
    time_to_vote_ms: int | None
    fingerprint: str


class _NoPair(str):
    """A line naming two models the project has no comparison of on that prompt (as opposed
    to a malformed line or an unknown comparison id)."""


class _Pairs:
    """Finds a project's comparison from a line, and whether the line lists it reversed."""

    def __init__(self, project: Project) -> None:
        rows = (
            Comparison.objects.for_project(project)
            .rated()
            .values_list(
                "pk",
                "prompt__external_id",
                "candidate_a__model__name",
                "candidate_b__model__name",
            )
        )
        self.by_id = {pk: (a, b) for pk, _, a, b in rows}
        self.by_models: dict[tuple[str, str, str], list[tuple[int, bool]]] = {}
        for pk, prompt, model_a, model_b in rows:
            self.by_models.setdefault((prompt, model_a, model_b), []).append((pk, False))
            self.by_models.setdefault((prompt, model_b, model_a), []).append((pk, True))

    def find(self, record: dict[str, Any]) -> tuple[int, bool] | str:
        if "comparison" in record:
            pk = record["comparison"]
            if not isinstance(pk, int) or isinstance(pk, bool):
                return f"comparison must be an id, not {pk!r}"
            if pk not in self.by_id:
                # A mistyped id, or another project's: an error even with skip_unmatched.
                return f"no comparison {pk!r} in this project"
            return pk, False
        missing = [k for k in ("question_id", "turn", "model_a", "model_b") if k not in record]
        if missing:
            return "needs a comparison id, or question_id, turn, model_a and model_b"
        return self._find_by_models(record)

    def _find_by_models(self, record: dict[str, Any]) -> tuple[int, bool] | str:
        turn = record["turn"]
        if not isinstance(turn, int) or isinstance(turn, bool) or turn < 1:
            return f"turn must be a positive integer, not {turn!r}"
        key = (
            mtbench_prompt_id(record["question_id"], turn),
            str(record["model_a"]),
            str(record["model_b"]),
        )
        if key[1] == key[2]:
            return f"model_a and model_b are the same model ({key[1]!r})"
        found = self.by_models.get(key, [])
        if len(found) == 1:
            return found[0]
        if found:
            return "several comparisons match (two settings of one model?): give its id"
        return _NoPair(
            f"no comparison of {key[1]!r} and {key[2]!r} on question "
            f"{record['question_id']!r} turn {turn} in this project"
        )


def _optional_int(record: dict[str, Any], name: str) -> int | str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
        return f"{name} must be an integer from 0 to {MAX_INT}, not {value!r}"
    return value


def _annotator_problem(annotator: object) -> str | None:
    if not isinstance(annotator, str) or not annotator.strip() or len(annotator) > 32:
        return "annotator must be a name of 1 to 32 characters"
    if not annotator.isprintable():
        return "annotator must not hold control characters"
    # In any case or width ("Anon-", fullwidth letters): names that read as the arena's own.
    if unicodedata.normalize("NFKC", annotator).strip().casefold().startswith(WEB_PREFIX):
        # The arena names its own voters so: an import must not add votes to a web voter.
        return f"annotator names starting {WEB_PREFIX!r} belong to this arena's own voters"
    return None


def _timestamp(record: dict[str, Any]) -> datetime | str | None:
    value = record.get("tstamp")
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return f"tstamp must be Unix seconds, not {value!r}"
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return f"tstamp {value!r} is out of range"


def _field_problem(record: dict[str, Any], allowed: set[str]) -> str | None:
    """What is wrong with the line's own fields, if anything (the pair is checked apart)."""
    annotator = record.get("annotator", record.get("judge"))
    winner = record.get("winner")
    shown_left = record.get("shown_left")
    fingerprint = record.get("fingerprint")
    problems = [
        _annotator_problem(annotator),
        winner not in WINNERS
        and f"winner must be one of {', '.join(sorted(WINNERS))}, not {winner!r}",
        winner in _CHOICE_OF_WINNER
        and _CHOICE_OF_WINNER[winner] not in allowed
        and f"this project does not allow {winner!r} votes",
        shown_left is not None
        and shown_left not in SIDES
        and f"shown_left must be model_a or model_b, not {shown_left!r}",
        fingerprint is not None
        and not isinstance(fingerprint, str)
        and "fingerprint must be a string",
        _optional_int(record, "time_to_vote_ms"),
        _timestamp(record),
    ]
    return next((problem for problem in problems if isinstance(problem, str)), None)


def _parse_line(number: int, record: Any, pairs: _Pairs, allowed: set[str]) -> _ParsedVote | str:
    if not isinstance(record, dict):
        return "expected a JSON object"
    problem = _field_problem(record, allowed)
    if problem is not None:
        return problem
    found = pairs.find(record)
    if isinstance(found, str):
        return found
    comparison_id, reversed_ = found
    winner = record["winner"]
    shown_left = record.get("shown_left")
    if reversed_:
        winner = _SWAPPED.get(winner, winner)
        shown_left = _SWAPPED.get(shown_left, shown_left) if shown_left else None
    return _ParsedVote(
        line=number,
        annotator=record.get("annotator", record.get("judge")).strip(),
        comparison_id=comparison_id,
        winner=winner,
        left_is_a=None if shown_left is None else shown_left == "model_a",
        created_at=_timestamp(record),  # type: ignore[arg-type]
        time_to_vote_ms=_optional_int(record, "time_to_vote_ms"),  # type: ignore[arg-type]
        fingerprint=record.get("fingerprint") or "",
    )


def _choice(winner: str, left_is_a: bool) -> str:
    if winner in _CHOICE_OF_WINNER:
        return _CHOICE_OF_WINNER[winner]
    a_won = winner == "model_a"
    return Vote.Choice.LEFT if a_won == left_is_a else Vote.Choice.RIGHT


def _fingerprint_hash(value: str) -> str:
    if not value:
        return ""
    salted = settings.FINGERPRINT_SALT.encode() + b"import:" + value.encode()
    return hashlib.sha256(salted).hexdigest()


def votes_import(
    *, project: Project, path: Path, credit: str = "", skip_unmatched: bool = False
) -> VoteImportReport:
    """Import a JSON Lines file of votes into the project; all or nothing.

    `credit` (the votes' source and licence) is recorded for export cards. With
    `skip_unmatched`, well-formed votes on pairs the project lacks (say, models it did not
    import) are counted and left out instead of refusing the file.
    """
    errors: list[str] = []
    pairs = _Pairs(project)
    allowed = set(project.allowed_choices)
    parsed: list[_ParsedVote] = []
    unmatched = 0
    for number, record in read_jsonl(path, errors):
        result = _parse_line(number, record, pairs, allowed)
        if isinstance(result, _NoPair) and skip_unmatched:
            unmatched += 1
        elif isinstance(result, str):
            errors.append(f"{path}:{number}: {result}")
        else:
            parsed.append(result)
    if errors:
        raise ImportFailed(errors)
    if not parsed:
        none = "no votes on this project's pairs" if unmatched else "no votes"
        raise ImportFailed([f"{path}: {none} in this file"])
    report = VoteImportReport(votes_unmatched=unmatched)
    with transaction.atomic():
        _write(project, parsed, report)
        DataCredit.record(project=project, kind=DataCredit.Kind.VOTES, text=credit)
    services.elo_schedule_refresh(project=project)
    return report


def _write(project: Project, parsed: list[_ParsedVote], report: VoteImportReport) -> None:
    names = {vote.annotator for vote in parsed}
    annotators = {a.pseudonym: a for a in Annotator.objects.filter(pseudonym__in=names)}
    new = [Annotator(pseudonym=name) for name in sorted(names - set(annotators))]
    Annotator.objects.bulk_create(new)
    report.annotators_created = len(new)
    annotators = {a.pseudonym: a for a in Annotator.objects.filter(pseudonym__in=names)}
    seen = {
        (annotator_id, comparison_id): "an earlier import or the web"
        for annotator_id, comparison_id in Vote.objects.filter(
            comparison__project=project, annotator__in=annotators.values()
        ).values_list("annotator_id", "comparison_id")
    }
    now = timezone.now()
    votes = []
    for item in parsed:
        annotator = annotators[item.annotator]
        key = (annotator.pk, item.comparison_id)
        if key in seen:
            report.votes_skipped += 1
            report.notes.append(
                f"line {item.line}: {item.annotator} already voted on comparison "
                f"{item.comparison_id} ({seen[key]}); skipped"
            )
            continue
        seen[key] = f"line {item.line}"
        left_is_a = True if item.left_is_a is None else item.left_is_a
        votes.append(
            Vote(
                comparison_id=item.comparison_id,
                annotator=annotator,
                left_is_a=left_is_a,
                side_recorded=item.left_is_a is not None,
                choice=_choice(item.winner, left_is_a),
                winner=item.winner,
                time_to_vote_ms=item.time_to_vote_ms,
                client_hash=_fingerprint_hash(item.fingerprint),
                source=Vote.Source.IMPORT,
                created_at=item.created_at or now,
                time_recorded=item.created_at is not None,
            )
        )
    Vote.objects.bulk_create(votes, batch_size=2000)
    report.votes_created = len(votes)
    added = Counter(vote.comparison_id for vote in votes)
    # One UPDATE per distinct number of new votes (in chunks), not one per comparison.
    by_count: defaultdict[int, list[int]] = defaultdict(list)
    for comparison_id, count in added.items():
        by_count[count].append(comparison_id)
    for count, ids in by_count.items():
        for start in range(0, len(ids), UPDATE_CHUNK):
            Comparison.objects.filter(pk__in=ids[start : start + UPDATE_CHUNK]).update(
                vote_count=F("vote_count") + count
            )
