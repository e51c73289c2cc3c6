"""The dataset card (README.md) written with every export."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from annotation.exports.options import FORMAT_HELP, ExportOptions
from annotation.exports.source import PairLabels


@dataclass
class ExportStats:
    """Counts gathered while the export streams, for the card and the job."""

    rows: int = 0
    comparisons: int = 0
    human_votes: int = 0
    judge_verdicts: int = 0
    excluded_votes: int = 0
    models: set[str] = field(default_factory=set)
    categories: Counter[str] = field(default_factory=Counter)
    label_sources: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    agreements: list[float] = field(default_factory=list)  # one float per multi-vote pair
    judge_agreeing: int = 0
    judge_compared: int = 0
    channels: Counter[str] = field(default_factory=Counter)  # human votes by how they came
    row_comparisons: set[int] = field(default_factory=set)  # the comparisons rows came from
    empty_answers: int = 0  # pairwise rows where the chosen or rejected answer is blank

    def add_pair(self, pair: PairLabels) -> None:
        self.comparisons += 1
        self.human_votes += len(pair.votes)
        self.judge_verdicts += len(pair.judgments)
        self.excluded_votes += sum(vote.excluded for vote in pair.votes)
        self.channels.update(vote.channel for vote in pair.votes)
        self.models.update((pair.context.model_a, pair.context.model_b))
        self.categories[pair.context.category or "(none)"] += 1
        if len(pair.votes) >= 2 and pair.agreement is not None:
            self.agreements.append(pair.agreement)
        judgment, majority = pair.judgment, pair.majority
        if judgment is not None and majority not in (None, "split"):
            self.judge_compared += 1
            # A judge has no "both bad": it says tie there, as the router counts it.
            human = "tie" if majority == "tie (bothbad)" else majority
            self.judge_agreeing += judgment.verdict == human

    def add_record(self, record: dict) -> None:
        self.rows += 1
        if _has_empty_answer(record):
            self.empty_answers += 1
        if "comparison_id" in record:
            self.row_comparisons.add(record["comparison_id"])
        source = record.get("label_source") or record.get("source") or record.get("final_source")
        self.label_sources[source or "none"] += 1


# The answer fields of the pairwise formats: lists of messages (dpo, openai) or transcripts.
_ANSWERS = ("chosen", "rejected", "preferred_output", "non_preferred_output")


def _has_empty_answer(record: dict) -> bool:
    for key in _ANSWERS:
        value = record.get(key)
        if isinstance(value, list):
            if any(
                m.get("role") == "assistant" and not str(m.get("content", "")).strip()
                for m in value
            ):
                return True
        elif isinstance(value, str) and any(
            not part.split("\n\nHuman:")[0].strip() for part in value.split("\n\nAssistant:")[1:]
        ):
            return True
    return False


def _shown(value: object) -> str:
    if value in (None, [], ""):
        return "any"
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _provenance(channels: Counter[str]) -> str:
    """Where the human votes came from: cast in this arena, or imported (whose source and
    licence the lines above name, and a derived dataset must credit)."""
    imported = channels.get("import", 0)
    cast = sum(channels.values()) - imported
    if not imported and not cast:
        return "none in this export"
    if not imported:
        return "cast in this prefarena arena"
    return (
        f"{cast} cast in this prefarena arena, {imported} imported from elsewhere (credit "
        "their source under its licence, listed above where the import recorded it)"
    )


def _credit_lines(stats: ExportStats, credits: dict[str, list[str]]) -> list[str]:
    """The recorded credits of the kinds of label this export read."""
    lines = []
    if stats.channels.get("import", 0):
        lines += [f"- Votes: {text}" for text in credits.get("votes", [])]
    if stats.judge_verdicts:
        lines += [f"- Judge verdicts: {text}" for text in credits.get("judgments", [])]
    return lines


# Characters a YAML document may not hold as they are (C1 controls, the byte-order mark, the
# non-characters) or would read as a line break (NEL, the line and paragraph separators).
_YAML_ESCAPE = re.compile("[\x80-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def yaml_string(text: str) -> str:
    """`text` as a YAML double-quoted scalar that reads back exactly: a JSON string (escaped C0
    controls, quotes and backslashes) with what YAML forbids escaped as well."""
    quoted = json.dumps(text, ensure_ascii=False)
    return _YAML_ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def _percent(part: int | float, whole: int | float) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def dataset_card(
    *,
    project_title: str,
    project_slug: str,
    options: ExportOptions,
    file_type: str,
    stats: ExportStats,
    licenses: list[str],
    credits: dict[str, list[str]] | None = None,
    created_at: datetime | None = None,
) -> str:
    created = (created_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    filters = options.to_json()
    agreement = (
        f"{sum(stats.agreements) / len(stats.agreements):.3f} mean share of the majority label "
        f"over {len(stats.agreements)} comparisons with 2+ votes; "
        f"{_percent(sum(a == 1.0 for a in stats.agreements), len(stats.agreements))} unanimous"
        if stats.agreements
        else "no comparison has two or more human votes"
    )
    lines = [
        "---",
        f"pretty_name: {yaml_string(f'{project_title} ({options.format})')}",
        "tags: [preference, pairwise-comparison, prefarena]",
        "---",
        "",
        f"# {project_title}: {options.format} export",
        "",
        f"Exported from the prefarena project `{project_slug}` on {created} as {file_type}.",
        f"Format `{options.format}`: {FORMAT_HELP[options.format]}.",
        "",
        "## Counts",
        "",
        f"- rows: {stats.rows}",
        f"- comparisons read (with a label the export takes): {stats.comparisons}, "
        f"{len(stats.row_comparisons)} of them in the rows",
        f"- human votes read: {stats.human_votes} "
        f"({stats.excluded_votes} of flagged or banned annotators)",
        f"- judge verdicts read: {stats.judge_verdicts}",
        "- label sources of the rows: "
        + (", ".join(f"{k} {v}" for k, v in sorted(stats.label_sources.items())) or "none"),
        *(
            [
                f"- rows where an answer is empty: {stats.empty_answers} "
                "(kept; the vote was cast on it)"
            ]
            if stats.empty_answers
            else []
        ),
        "- left out: "
        + (", ".join(f"{v} {k}" for k, v in sorted(stats.skipped.items())) or "nothing"),
        "",
        "## Models",
        "",
        ", ".join(sorted(stats.models)) or "none",
        "",
        "## Categories (comparisons read)",
        "",
        ", ".join(f"{k} ({v})" for k, v in sorted(stats.categories.items())) or "none",
        "",
        "## Agreement",
        "",
        f"- human agreement: {agreement}",
        f"- judge agrees with the human majority on "
        f"{_percent(stats.judge_agreeing, stats.judge_compared)} of "
        f"{stats.judge_compared} comparisons with both (a both-bad majority counts as a tie; "
        "comparisons where people split evenly are left out)",
        "",
        "## Filters",
        "",
        *[f"- {key}: {_shown(value)}" for key, value in filters.items()],
        "",
        "## Rules",
        "",
        "- Labels: `human` votes, `judge` verdicts, or `final` (per comparison, the human "
        "majority where people voted, else the judge's verdict).",
        "- Flagged and banned annotators' votes are left out unless include_flagged; raw votes "
        "then carry `annotator_state` and `excluded`. Gold (attention-check) pairs are never "
        "exported.",
        "- Ties and both-bad are kept in `votes` and `pairs` and left out of the pairwise "
        "formats (dpo, openai, hh), which cannot express them.",
        "- The pairwise formats have one row per decisive label: with `human` labels one per "
        "vote, so a comparison people disagreed on gives rows both ways, as its votes do; with "
        "`judge` labels one per verdict of every judge; with `final` labels one per "
        "comparison, and a split human majority is left out.",
        "- min_agreement drops comparisons whose human votes split below that share, compared "
        "at two decimals (say 0.67 to keep comparisons where two thirds of the votes or more "
        "agree), whatever labels the export takes.",
        "- since/until take only labels with a recorded time: votes and verdicts imported "
        "without one (their `created_at` is null) are left out of a dated export.",
        "- Winners are canonical: `model_a` / `model_b` name the comparison's candidates, "
        "whatever side each annotator saw on the left (`shown_left`).",
        "- Multi-turn prompts: dpo and hh carry each side's own earlier answers; openai exports "
        "single-turn comparisons only. In dpo, a multi-turn row's chosen and rejected hold the "
        "first answer, the next question and the answer voted on, and TRL's DPOTrainer puts all "
        "of it in the loss (and cuts a long row from its end at max_length): train with a "
        "max_length that holds the whole conversation, or export with single_turn.",
        "",
        "## Sources and licences",
        "",
        *(
            [f"- {text}" for text in licenses]
            or ["- prompts entered in the arena (no source recorded)"]
        ),
        *_credit_lines(stats, credits or {}),
        f"- Votes: {_provenance(stats.channels)}; model outputs are the models' own, under "
        "their providers' terms.",
        "",
    ]
    return "\n".join(lines)
