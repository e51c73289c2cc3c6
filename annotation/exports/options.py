"""What an export asks for, and the documented rules that follow from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from annotation.flags import parse_flag
from annotation.moments import parse_moment

FORMATS = ("votes", "pairs", "dpo", "openai", "hh")
SOURCES = ("human", "judge", "final")
FILE_TYPES = ("jsonl", "parquet", "hf")

FORMAT_HELP = {
    "votes": "one row per vote (and per judge verdict), ties and both-bad included",
    "pairs": "one row per comparison: votes, majority, agreement, judge, final label",
    "dpo": "TRL conversational preference: prompt, chosen, rejected (lists of messages)",
    "openai": "OpenAI preference fine-tuning: input.messages, preferred / non_preferred_output",
    "hh": "Anthropic HH: chosen and rejected transcripts ('\\n\\nHuman: … \\n\\nAssistant: …')",
}


class ExportRequestInvalid(ValueError):
    """An export request that cannot be run; the message says what to change."""


@dataclass(frozen=True)
class ExportOptions:
    """An export's format and filters.

    Rules (the dataset card repeats them):

    * ``source`` picks the labels: ``human`` votes, ``judge`` verdicts, or ``final``: per
      comparison, the human majority where there are human votes, else the judge's verdict.
    * Votes of flagged and banned annotators are left out unless ``include_flagged``; raw
      votes then carry each vote's exclusion state. Gold pairs are never exported.
    * Ties and both-bad verdicts are kept in ``votes`` and ``pairs``; the pairwise formats
      cannot express them and leave them out.
    * ``min_agreement`` (0 to 1) drops comparisons whose human votes split: the share of the
      most common label among them, at two decimals, must reach it (whatever labels the
      export takes). Comparisons without human votes pass.
    * ``models`` keeps comparisons whose two models are both listed; ``categories`` those
      whose prompt is in one of them; ``since`` / ``until`` bound when the label was cast.
    * ``single_turn`` keeps only comparisons of one-turn prompts (TRL's DPO puts a multi-turn
      row's whole continuation in the loss: the first answer, the next question and the answer
      voted on).
    """

    format: str = "dpo"
    source: str = "human"
    since: datetime | None = None
    until: datetime | None = None
    categories: tuple[str, ...] = field(default_factory=tuple)
    models: tuple[str, ...] = field(default_factory=tuple)
    min_agreement: float = 0.0
    include_flagged: bool = False
    single_turn: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ExportRequestInvalid(
                f"format must be one of {', '.join(FORMATS)}, not {self.format!r}"
            )
        if self.source not in SOURCES:
            raise ExportRequestInvalid(
                f"source must be one of {', '.join(SOURCES)}, not {self.source!r}"
            )
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ExportRequestInvalid("min_agreement must be between 0 and 1")
        if self.since and self.until and self.since >= self.until:
            raise ExportRequestInvalid("since must be before until")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("since", "until"):
            data[key] = data[key].isoformat() if data[key] else None
        data["categories"] = list(self.categories)
        data["models"] = list(self.models)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExportOptions:
        return parse_options(data)


def _moment(value: Any, name: str) -> datetime | None:
    try:
        return parse_moment(value, name)
    except ValueError as exc:
        raise ExportRequestInvalid(str(exc)) from exc


def _flag(value: Any, name: str) -> bool:
    try:
        return parse_flag(value, name)
    except ValueError as exc:
        raise ExportRequestInvalid(str(exc)) from exc


def _listed(data: Mapping[str, Any], key: str) -> list:
    """A query string's or form's every value of `key` (`?models=a&models=b`), else the one,
    as a list; a value that is neither text nor a list of names is an error."""
    getlist = getattr(data, "getlist", None)
    value = getlist(key) if getlist is not None else data.get(key)
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ExportRequestInvalid(
        f"{key} must be a name, names separated by commas, or a list of names"
    )


def split_names(value: Any) -> tuple[str, ...]:
    """Names from a list, a comma-separated string, or a list of comma-separated strings."""
    if value in (None, ""):
        return ()
    items = [value] if isinstance(value, str) else list(value)
    names = {name.strip() for item in items for name in str(item).split(",")}
    return tuple(sorted(name for name in names if name))


def parse_options(data: Mapping[str, Any]) -> ExportOptions:
    """Options from a query string, a form, JSON or command-line arguments.

    Lists may come as lists or comma-separated strings; unknown keys are ignored.
    """
    try:
        agreement = float(data.get("min_agreement") or 0.0)
    except (TypeError, ValueError) as exc:
        raise ExportRequestInvalid("min_agreement must be a number between 0 and 1") from exc
    return ExportOptions(
        format=str(data.get("format") or "dpo"),
        source=str(data.get("source") or "human"),
        since=_moment(data.get("since"), "since"),
        until=_moment(data.get("until"), "until"),
        # "category" as the leaderboard spells it; given with "categories", both count.
        categories=split_names(_listed(data, "categories") + _listed(data, "category")),
        models=split_names(_listed(data, "models")),
        min_agreement=agreement,
        include_flagged=_flag(data.get("include_flagged", False), "include_flagged"),
        single_turn=_flag(data.get("single_turn", False), "single_turn"),
    )
