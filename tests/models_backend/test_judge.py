"""The pairwise judge with the real default model, on short pairs so it stays fast on a CPU."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models_backend.judge import (
    LABELS,
    JudgeConfig,
    JudgePair,
    Judgment,
    OrderScores,
    judge_pairs,
    judge_pairs_by_generation,
    label_token_ids,
    parse_verdict,
    render_judge_prompt,
)
from models_backend.loaders import LoadedModel, get_model

GOOD_BAD = JudgePair(
    prompt="What is the capital of France?",
    response_a="The capital of France is Paris.",
    response_b="I like turtles.",
)
MATH = JudgePair(
    prompt="What is 2 + 2?",
    response_a="5",
    response_b="2 + 2 = 4.",
    reference_answer="4",
)


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    return get_model()


@pytest.fixture(scope="module")
def judged(loaded: LoadedModel) -> list[Judgment]:
    # GOOD_BAD in both orientations, batched together with another pair.
    return judge_pairs(loaded, [GOOD_BAD, GOOD_BAD.swapped(), MATH], JudgeConfig(batch_size=6))


def test_label_probabilities_sum_to_one_in_each_order(judged: list[Judgment]) -> None:
    for judgment in judged:
        for order in judgment.orders:
            assert order.p_a + order.p_b + order.p_tie == pytest.approx(1.0, abs=1e-6)
            assert 0.0 < order.label_mass <= 1.0
        assert judgment.p_a + judgment.p_b + judgment.p_tie == pytest.approx(1.0, abs=1e-6)
        assert judgment.latency_s > 0


def test_second_order_is_mapped_back_to_the_canonical_orientation(
    judged: list[Judgment],
) -> None:
    forward, backward, _ = judged

    # (x, y) and (y, x) are the same two prompts: the results must mirror each other.
    assert forward.p_a == pytest.approx(backward.p_b, abs=1e-4)
    assert forward.p_b == pytest.approx(backward.p_a, abs=1e-4)
    assert forward.p_tie == pytest.approx(backward.p_tie, abs=1e-4)
    assert forward.orders[0].p_a == pytest.approx(backward.orders[1].p_b, abs=1e-4)
    assert forward.orders[1].p_a == pytest.approx(backward.orders[0].p_b, abs=1e-4)
    assert forward.consistent == backward.consistent
    mirrored = {"a": "b", "b": "a", "tie": "tie"}
    assert backward.verdict == mirrored[forward.verdict]


def test_order_average_is_the_mean_of_the_two_orders(judged: list[Judgment]) -> None:
    for judgment in judged:
        as_given, swapped = judgment.orders
        assert not as_given.swapped and swapped.swapped
        assert judgment.p_a == pytest.approx((as_given.p_a + swapped.p_a) / 2)
        assert judgment.consistent == (as_given.verdict == swapped.verdict)


def test_batch_size_does_not_change_the_probabilities(
    loaded: LoadedModel, judged: list[Judgment]
) -> None:
    one_by_one = judge_pairs(loaded, [GOOD_BAD, MATH], JudgeConfig(batch_size=1))

    for alone, batched in zip(one_by_one, [judged[0], judged[2]], strict=True):
        assert alone.p_a == pytest.approx(batched.p_a, abs=1e-4)
        assert alone.p_tie == pytest.approx(batched.p_tie, abs=1e-4)


def test_rationale_mode_adds_an_explanation(loaded: LoadedModel) -> None:
    config = JudgeConfig(rationale=True, rationale_max_new_tokens=8)

    [judgment] = judge_pairs(loaded, [GOOD_BAD], config)

    assert isinstance(judgment.rationale, str)


def test_generate_then_parse_baseline_returns_judgments(loaded: LoadedModel) -> None:
    [judgment] = judge_pairs_by_generation(loaded, [GOOD_BAD], max_new_tokens=8)

    for order in judgment.orders:
        assert order.p_a + order.p_b + order.p_tie == pytest.approx(1.0)
    assert judgment.verdict in {"a", "b", "tie"}


def test_labels_are_single_distinct_tokens(loaded: LoadedModel) -> None:
    ids = label_token_ids(loaded.tokenizer)

    assert len(ids) == len(set(ids)) == len(LABELS)


def test_prompt_is_neutral_and_ends_at_the_verdict(loaded: LoadedModel) -> None:
    text = render_judge_prompt(loaded.tokenizer, MATH, max_response_tokens=None)

    assert text.endswith("Final verdict: [[")
    assert "Avoid any position biases" in text
    assert "length of the responses" in text
    assert "Do not favor certain names" in text
    assert "[The Start of Reference Answer]\n4\n" in text
    assert text.index("Assistant A's Answer]\n5\n") < text.index("Assistant B's Answer]\n2 + 2")


def test_multi_turn_prompt_shows_both_conversations(loaded: LoadedModel) -> None:
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    pair = JudgePair(
        prompt="And now in French?",
        response_a="Bonjour !",
        response_b="Hola",
        conversation_a=[
            *history,
            {"role": "user", "content": "And now in French?"},
            {"role": "assistant", "content": "Bonjour !"},
        ],
        conversation_b=[
            *history,
            {"role": "user", "content": "And now in French?"},
            {"role": "assistant", "content": "Hola"},
        ],
    )

    text = render_judge_prompt(loaded.tokenizer, pair, max_response_tokens=None)

    assert "last user question" in text
    assert "### Assistant A:\nBonjour !" in text
    assert "### Assistant B:\nHola" in text


def test_long_answers_are_cut_to_the_token_budget(loaded: LoadedModel) -> None:
    pair = JudgePair(prompt="Count.", response_a="one two " * 500, response_b="three")

    text = render_judge_prompt(loaded.tokenizer, pair, max_response_tokens=20)

    assert "[...]" in text
    assert len(loaded.tokenizer(text)["input_ids"]) < 400


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Assistant A is more accurate. [[A]]", "A"),
        ("[[B]]", "B"),
        ("Both are fine, so [[C]].", "C"),
        ("I prefer A", None),
        ("[[D]] then [[B]]", "B"),
    ],
)
def test_parse_verdict(text: str, label: str | None) -> None:
    assert parse_verdict(text) == label


@given(st.text().filter(lambda t: "[[" not in t))
def test_parse_verdict_finds_nothing_without_brackets(text: str) -> None:
    assert parse_verdict(text) is None


@given(st.text(), st.sampled_from(LABELS), st.text())
def test_parse_verdict_takes_the_first_verdict(before: str, label: str, after: str) -> None:
    if parse_verdict(before) is None and not before.endswith("[") and not before.endswith("[["):
        assert parse_verdict(f"{before}[[{label}]]{after}") == label


def test_an_unparsed_order_is_not_consistent() -> None:
    unparsed = OrderScores(False, 0.0, 0.0, 1.0, label_mass=0.0, parsed=False)
    also_unparsed = OrderScores(True, 0.0, 0.0, 1.0, label_mass=0.0, parsed=False)
    judgment = Judgment(
        p_a=0.0, p_b=0.0, p_tie=1.0, orders=(unparsed, also_unparsed), latency_s=1.0
    )

    assert judgment.verdict == "tie"
    assert not judgment.consistent
