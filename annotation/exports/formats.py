"""Labels as records of each export format; every record is a plain, JSON-ready dict.

Multi-turn prompts: a candidate holds its model's answer to every user turn, so from the
second turn on, two candidates have different histories. TRL DPO and Anthropic HH carry each
side's own history (DPO: the prompt is the first user turn, chosen / rejected continue the
conversation); OpenAI's format needs one shared input, so it exports single-turn comparisons
only and the card counts what it skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from annotation.exports.options import ExportOptions
from annotation.exports.source import DECISIVE, HumanLabel, JudgeLabel, PairLabels

Message = dict[str, str]


def conversation(turns: list[str], responses: list[str]) -> list[Message]:
    """User turns interleaved with one side's answers, up to the last answer."""
    messages: list[Message] = []
    for user, assistant in zip(turns, responses, strict=False):
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": assistant})
    return messages


def _shown_left(left_is_a: bool | None) -> str | None:
    if left_is_a is None:
        return None
    return "model_a" if left_is_a else "model_b"


def _base(pair: PairLabels) -> dict[str, Any]:
    c = pair.context
    return {
        "comparison_id": c.comparison_id,
        "prompt_id": c.prompt_external_id or str(c.prompt_id),
        "category": c.category,
        "prompt": list(c.turns),
        "model_a": c.model_a,
        "model_b": c.model_b,
        "answer_a": list(c.responses_a),
        "answer_b": list(c.responses_b),
    }


def _vote_row(pair: PairLabels, vote: HumanLabel) -> dict[str, Any]:
    return {
        **_base(pair),
        "source": "human",
        "label_id": vote.vote_id,
        "annotator": vote.annotator,
        "channel": vote.channel,
        "shown_left": _shown_left(vote.left_is_a),
        "choice": vote.choice,
        "winner": vote.winner,
        "time_to_vote_ms": vote.time_to_vote_ms,
        "created_at": vote.created_at.isoformat() if vote.created_at else None,
        "annotator_state": vote.annotator_state,
        "excluded": vote.excluded,
        "p_a": None,
        "p_b": None,
        "p_tie": None,
    }


def _judgment_row(pair: PairLabels, judgment: JudgeLabel) -> dict[str, Any]:
    return {
        **_base(pair),
        "source": "judge",
        "label_id": judgment.judgment_id,
        "annotator": judgment.judge,
        "channel": "judge",
        "shown_left": None,
        "choice": None,
        "winner": judgment.verdict,
        "time_to_vote_ms": None,
        "created_at": judgment.created_at.isoformat() if judgment.created_at else None,
        "annotator_state": None,
        "excluded": False,
        **dict(zip(("p_a", "p_b", "p_tie"), judgment.probabilities, strict=True)),
    }


def vote_records(pair: PairLabels, options: ExportOptions) -> Iterator[dict[str, Any]]:
    """Every label the export takes, one row each. With final labels: the human votes where
    people voted, else the judge's verdict (the one `pair.final` reads), never both."""
    if options.source == "final":
        if pair.votes:
            yield from (_vote_row(pair, vote) for vote in pair.votes)
        elif pair.deciding_judgment is not None:
            yield _judgment_row(pair, pair.deciding_judgment)
        return
    for vote in pair.votes:
        yield _vote_row(pair, vote)
    for judgment in pair.judgments:
        yield _judgment_row(pair, judgment)


def pair_record(pair: PairLabels) -> dict[str, Any]:
    counts = pair.counts
    judgment = pair.judgment
    final, final_source = pair.final
    return {
        **_base(pair),
        "votes": len(pair.votes),
        "votes_model_a": counts.get("model_a", 0),
        "votes_model_b": counts.get("model_b", 0),
        "votes_tie": counts.get("tie", 0),
        "votes_both_bad": counts.get("tie (bothbad)", 0),
        "majority": pair.majority,
        "agreement": pair.agreement,
        "judge": judgment.judge if judgment else None,
        "judge_verdict": judgment.verdict if judgment else None,
        **dict(
            zip(
                ("judge_p_a", "judge_p_b", "judge_p_tie"),
                judgment.probabilities if judgment else (None, None, None),
                strict=True,
            )
        ),
        # False where the verdict flipped when the answers were swapped (stored as a tie).
        "judge_consistent": judgment.consistent if judgment else None,
        "route": pair.context.route,
        "audit_chance": pair.context.audit_chance,
        "surely_human": pair.context.surely_human,
        "final_label": final,
        "final_source": final_source,
    }


def preferences(pair: PairLabels, options: ExportOptions) -> Iterator[tuple[str, str]]:
    """(winner "model_a" / "model_b", label source) of each decisive label the export takes."""
    if options.source == "human":
        labels = [(vote.winner, "human") for vote in pair.votes]
    elif options.source == "judge":
        labels = [(judgment.verdict, "judge") for judgment in pair.judgments]
    else:
        final, source = pair.final
        labels = [(final, source)] if final else []
    for winner, source in labels:
        if winner in DECISIVE:
            yield winner, source


def _sides(pair: PairLabels, winner: str) -> tuple[list[str], list[str], str, str]:
    c = pair.context
    if winner == "model_a":
        return c.responses_a, c.responses_b, c.model_a, c.model_b
    return c.responses_b, c.responses_a, c.model_b, c.model_a


def _meta(pair: PairLabels, chosen_model: str, rejected_model: str, source: str) -> dict:
    return {
        "comparison_id": pair.context.comparison_id,
        "chosen_model": chosen_model,
        "rejected_model": rejected_model,
        "label_source": source,
    }


def dpo_record(pair: PairLabels, winner: str, source: str) -> dict[str, Any]:
    chosen, rejected, chosen_model, rejected_model = _sides(pair, winner)
    turns = pair.context.turns
    # The first user turn is shared; each side continues with its own history.
    return {
        "prompt": [{"role": "user", "content": turns[0]}],
        "chosen": conversation(turns, chosen)[1:],
        "rejected": conversation(turns, rejected)[1:],
        **_meta(pair, chosen_model, rejected_model, source),
    }


def openai_record(pair: PairLabels, winner: str, source: str) -> dict[str, Any] | None:
    """None for a multi-turn comparison: the format has no room for two histories."""
    turns = pair.context.turns
    if len(turns) != 1:
        return None
    chosen, rejected, chosen_model, rejected_model = _sides(pair, winner)
    return {
        "input": {
            "messages": [{"role": "user", "content": turns[0]}],
            "tools": [],
            "parallel_tool_calls": True,
        },
        "preferred_output": [{"role": "assistant", "content": chosen[-1]}],
        "non_preferred_output": [{"role": "assistant", "content": rejected[-1]}],
        **_meta(pair, chosen_model, rejected_model, source),
    }


def hh_transcript(turns: list[str], responses: list[str]) -> str:
    return "".join(
        f"\n\nHuman: {user}\n\nAssistant: {assistant}"
        for user, assistant in zip(turns, responses, strict=False)
    )


def hh_record(pair: PairLabels, winner: str, source: str) -> dict[str, Any]:
    chosen, rejected, chosen_model, rejected_model = _sides(pair, winner)
    turns = pair.context.turns
    return {
        "chosen": hh_transcript(turns, chosen),
        "rejected": hh_transcript(turns, rejected),
        **_meta(pair, chosen_model, rejected_model, source),
    }


PAIRWISE_RECORD = {"dpo": dpo_record, "openai": openai_record, "hh": hh_record}


def records(
    pair: PairLabels, options: ExportOptions, skipped: Counter[str]
) -> Iterator[dict[str, Any]]:
    """The records one comparison contributes; what a format cannot take goes to ``skipped``."""
    if options.format == "votes":
        yield from vote_records(pair, options)
        return
    if options.format == "pairs":
        yield pair_record(pair)
        return
    build = PAIRWISE_RECORD[options.format]
    taken = 0
    for winner, source in preferences(pair, options):
        record = build(pair, winner, source)
        if record is None:
            skipped["multi-turn (OpenAI input must be shared)"] += 1
            continue
        taken += 1
        yield record
    labels = len(pair.votes) if options.source == "human" else len(pair.judgments)
    if options.source == "final":
        labels = 1 if pair.final[0] else 0
    undecided = labels - sum(1 for _ in preferences(pair, options))
    if undecided > 0:
        skipped["tie, both bad or split"] += undecided
