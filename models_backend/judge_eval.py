"""How well a pairwise judge agrees with people, on MT-Bench-style records.

A record (one line of `pairs_human_vs_gpt4.jsonl`) holds `prompt`, `response_a`, `response_b`,
`human_votes` ([{judge, winner: model_a | model_b | tie}]), optional `reference_answer`,
`conversation_a` / `conversation_b` and `category`, and optionally `llm_label` (GPT-4's verdict in
the released data), which is scored alongside as a reference point.

Agreement follows the MT-Bench paper (Zheng et al. 2023, section 4.2): "with ties" compares the
three-way verdict with the human majority; "without ties" keeps only pairs where neither the
human majority nor the judge says tie. Pairs whose human votes have no strict majority are left
out of both and counted.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from models_backend.judge import JudgePair, Judgment, Outcome
from prefarena import jsontext

JudgeFn = Callable[[Sequence[JudgePair]], Sequence[Judgment]]

_WINNER_TO_OUTCOME: dict[str, Outcome] = {"model_a": "a", "model_b": "b", "tie": "tie"}


def load_records(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as lines:
        return [jsontext.loads(line) for line in lines if line.strip()]


def sample_records(
    records: Sequence[Mapping[str, Any]], n: int | None, *, seed: int = 0
) -> list[Mapping[str, Any]]:
    """A seeded random sample; the file is sorted by question, so its head is one category."""
    if n is None or n >= len(records):
        return list(records)
    return random.Random(seed).sample(list(records), n)  # noqa: S311 - not for security


def pair_from_record(record: Mapping[str, Any]) -> JudgePair:
    return JudgePair(
        prompt=record["prompt"],
        response_a=record["response_a"],
        response_b=record["response_b"],
        reference_answer=record.get("reference_answer") or None,
        conversation_a=record.get("conversation_a") or None,
        conversation_b=record.get("conversation_b") or None,
    )


def outcome_from_label(label: str | None) -> Outcome | None:
    """`model_a` / `model_b` / `tie` (and GPT-4's "tie (inconsistent)") as an outcome."""
    if label is None:
        return None
    if label.startswith("tie"):
        return "tie"
    return _WINNER_TO_OUTCOME.get(label)


def human_majority(votes: Iterable[Mapping[str, str]]) -> Outcome | None:
    """The outcome most human votes chose, or None when the top count is shared."""
    counts = Counter(
        outcome for vote in votes if (outcome := outcome_from_label(vote.get("winner")))
    )
    if not counts:
        return None
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def agreement(
    majorities: Sequence[Outcome | None], verdicts: Sequence[Outcome]
) -> dict[str, float | int | None]:
    """Agreement of verdicts with human majorities, with and without ties."""
    scored = [(h, v) for h, v in zip(majorities, verdicts, strict=True) if h is not None]
    no_ties = [(h, v) for h, v in scored if h != "tie" and v != "tie"]
    return {
        "agreement_with_ties": _share(sum(h == v for h, v in scored), len(scored)),
        "agreement_without_ties": _share(sum(h == v for h, v in no_ties), len(no_ties)),
        "pairs_scored_with_ties": len(scored),
        "pairs_scored_without_ties": len(no_ties),
    }


def score_judgments(
    records: Sequence[Mapping[str, Any]], judgments: Sequence[Judgment], elapsed_s: float
) -> dict[str, Any]:
    """All figures for judgments already made (pure: no model involved)."""
    if len(records) != len(judgments):
        raise ValueError("one judgment per record is needed")
    majorities = [human_majority(r.get("human_votes", ())) for r in records]
    verdicts = [j.verdict for j in judgments]
    per_order_verdicts = [[j.orders[k].verdict for j in judgments] for k in (0, 1)]
    report: dict[str, Any] = {
        "pairs": len(records),
        "pairs_without_human_majority": sum(m is None for m in majorities),
        **agreement(majorities, verdicts),
        "position_consistency": _share(sum(j.consistent for j in judgments), len(judgments)),
        # How often each single order would agree: shows how much averaging the orders helps.
        "agreement_with_ties_order_as_given": agreement(majorities, per_order_verdicts[0])[
            "agreement_with_ties"
        ],
        "agreement_with_ties_order_swapped": agreement(majorities, per_order_verdicts[1])[
            "agreement_with_ties"
        ],
        "verdicts": dict(Counter(verdicts)),
        "human_majorities": dict(Counter(m or "none" for m in majorities)),
        "unparsed_orders": sum(not o.parsed for j in judgments for o in j.orders),
        "elapsed_s": elapsed_s,
        "pairs_per_second": _share(len(judgments), elapsed_s),
    }
    llm_labels = [outcome_from_label(r.get("llm_label")) for r in records]
    if all(label is not None for label in llm_labels):
        reference = agreement(majorities, llm_labels)  # type: ignore[arg-type]
        report["reference_llm_agreement_with_ties"] = reference["agreement_with_ties"]
        report["reference_llm_agreement_without_ties"] = reference["agreement_without_ties"]
    return report


def evaluate_judge(records: Sequence[Mapping[str, Any]], judge: JudgeFn) -> dict[str, Any]:
    """Run `judge` on all records at once (it batches internally) and score it."""
    pairs = [pair_from_record(record) for record in records]
    started = time.perf_counter()
    judgments = judge(pairs)
    elapsed = time.perf_counter() - started
    return score_judgments(records, judgments, elapsed)


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None
