"""Judge evaluation figures: pure scoring on hand-made judgments, plus one real-model run."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from models_backend.judge import JudgeConfig, JudgePair, Judgment, OrderScores, judge_pairs
from models_backend.judge_eval import (
    agreement,
    evaluate_judge,
    human_majority,
    load_records,
    pair_from_record,
    sample_records,
    score_judgments,
)
from models_backend.loaders import get_model
from tests.paths import MTBENCH_DIR

PAIRS_FILE = MTBENCH_DIR / "pairs_human_vs_gpt4.jsonl"

_ONE_HOT = {"a": (1.0, 0.0, 0.0), "b": (0.0, 1.0, 0.0), "tie": (0.0, 0.0, 1.0)}


def _judgment(as_given: str, swapped: str) -> Judgment:
    """A judgment whose two orders said `as_given` and `swapped` (canonical outcomes)."""
    first = OrderScores(False, *_ONE_HOT[as_given], label_mass=1.0)
    second = OrderScores(True, *_ONE_HOT[swapped], label_mass=1.0)
    return Judgment(
        p_a=(first.p_a + second.p_a) / 2,
        p_b=(first.p_b + second.p_b) / 2,
        p_tie=(first.p_tie + second.p_tie) / 2,
        orders=(first, second),
        latency_s=0.1,
    )


def _record(*winners: str, llm_label: str = "model_a") -> dict[str, object]:
    return {
        "prompt": "Q",
        "response_a": "x",
        "response_b": "y",
        "human_votes": [{"judge": f"expert_{i}", "winner": w} for i, w in enumerate(winners)],
        "llm_label": llm_label,
    }


@pytest.mark.parametrize(
    ("winners", "majority"),
    [
        (["model_a"], "a"),
        (["model_b", "model_b", "model_a"], "b"),
        (["tie"], "tie"),
        (["model_a", "model_b"], None),
        ([], None),
    ],
)
def test_human_majority(winners: list[str], majority: str | None) -> None:
    assert human_majority([{"judge": "j", "winner": w} for w in winners]) == majority


def test_agreement_with_and_without_ties() -> None:
    humans: Sequence[str | None] = ["a", "b", "tie", "a", None]
    verdicts = ["a", "a", "tie", "tie", "b"]

    figures = agreement(humans, verdicts)  # type: ignore[arg-type]

    # With ties: 4 scored (None left out), a=a and tie=tie agree.
    assert figures["agreement_with_ties"] == pytest.approx(2 / 4)
    # Without ties: only (a, a) and (b, a) are tie-free on both sides.
    assert figures["agreement_without_ties"] == pytest.approx(1 / 2)
    assert figures["pairs_scored_without_ties"] == 2


def test_score_judgments_reports_consistency_speed_and_reference() -> None:
    records = [
        _record("model_a"),
        _record("model_b", llm_label="model_b"),
        _record("model_a", "model_b"),  # no majority
        _record("tie", llm_label="tie (inconsistent)"),
    ]
    judgments = [
        _judgment("a", "a"),  # consistent, right
        _judgment("a", "b"),  # position-flipped: averages to a tie
        _judgment("b", "b"),
        _judgment("tie", "tie"),
    ]

    report = score_judgments(records, judgments, elapsed_s=2.0)

    assert report["pairs"] == 4
    assert report["pairs_without_human_majority"] == 1
    assert report["position_consistency"] == pytest.approx(3 / 4)
    assert report["agreement_with_ties"] == pytest.approx(2 / 3)  # pairs 1 and 4
    assert report["agreement_without_ties"] == pytest.approx(1.0)  # only pair 1 is tie-free
    assert report["pairs_per_second"] == pytest.approx(2.0)
    assert report["reference_llm_agreement_with_ties"] == pytest.approx(1.0)
    assert report["verdicts"] == {"a": 1, "tie": 2, "b": 1}


def test_score_judgments_needs_one_judgment_per_record() -> None:
    with pytest.raises(ValueError, match="one judgment per record"):
        score_judgments([_record("model_a")], [], elapsed_s=1.0)


def test_records_become_judge_pairs() -> None:
    records = load_records(PAIRS_FILE)
    sample = sample_records(records, 50, seed=1)

    assert len(sample) == 50 and sample == sample_records(records, 50, seed=1)
    multi_turn = next(r for r in sample if r["turn"] == 2)
    pair = pair_from_record(multi_turn)
    assert pair.is_multi_turn
    assert pair.conversation_a[-1]["content"] == multi_turn["response_a"]


def test_evaluate_the_real_judge_on_two_short_pairs() -> None:
    loaded = get_model()
    records = load_records(PAIRS_FILE)
    shortest = sorted(
        (r for r in records if r["turn"] == 1),
        key=lambda r: len(r["prompt"]) + len(r["response_a"]) + len(r["response_b"]),
    )[:2]

    def judge(pairs: Sequence[JudgePair]) -> list[Judgment]:
        return judge_pairs(loaded, pairs, JudgeConfig(batch_size=4))

    report = evaluate_judge(shortest, judge)

    assert report["pairs"] == 2
    assert report["pairs_per_second"] > 0
    assert 0.0 <= report["position_consistency"] <= 1.0
    assert sum(report["verdicts"].values()) == 2
