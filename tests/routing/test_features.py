from __future__ import annotations

import numpy as np
import pytest

from routing.features import (
    FeatureConfig,
    RoutingPair,
    build_features,
    conversation_of,
    feature_meaning,
    feature_names,
    pair_from_record,
)


def _pair(**fields: object) -> RoutingPair:
    base: dict[str, object] = {
        "id": "p1",
        "prompt": "What is 2 + 2? Show the `code`.",
        "response_a": "It is 4.",
        "response_b": "The answer is four, because two plus two makes four.",
        "llm_label": "model_a",
    }
    return RoutingPair(**{**base, **fields})  # type: ignore[arg-type]


def test_verdict_one_hot_covers_inconsistent_and_null() -> None:
    labels = ["model_a", "model_b", "tie", "tie (inconsistent)", None]
    features = build_features([_pair(id=str(i), llm_label=lab) for i, lab in enumerate(labels)])
    one_hot = np.column_stack(
        [
            features.column(name)
            for name in (
                "verdict_a",
                "verdict_b",
                "verdict_tie",
                "verdict_inconsistent",
                "verdict_null",
            )
        ]
    )
    assert (one_hot == np.eye(5)).all()


def test_features_are_finite_with_fixed_columns() -> None:
    pairs = [_pair(id="a"), _pair(id="b", response_a="", response_b="", category="unknown")]
    features = build_features(pairs)
    assert features.matrix.shape == (2, len(features.names))
    assert np.isfinite(features.matrix).all()
    assert features.ids == ("a", "b")
    assert features.column("category_other").tolist() == [1.0, 1.0]
    assert features.column("answer_empty").tolist() == [0.0, 1.0]
    # Two empty answers are the same text.
    assert features.column("answers_jaccard")[1] == 1.0
    assert build_features([]).matrix.shape == (0, len(features.names))


def test_identical_answers_are_fully_similar() -> None:
    features = build_features([_pair(response_a="Same words here", response_b="same words HERE")])
    assert features.column("answers_jaccard")[0] == pytest.approx(1.0)
    assert features.column("answers_cosine")[0] == pytest.approx(1.0)
    assert features.column("decisive_on_similar")[0] == pytest.approx(1.0)


def test_picked_longer_is_signed_by_the_verdict() -> None:
    short, long = "Four.", "Four, because two and two make four, as counting shows."
    features = build_features(
        [
            _pair(id="1", response_a=long, response_b=short, llm_label="model_a"),
            _pair(id="2", response_a=long, response_b=short, llm_label="model_b"),
            _pair(id="3", response_a=long, response_b=short, llm_label="tie"),
        ]
    )
    picked_longer = features.column("picked_longer")
    assert picked_longer[0] > 0 > picked_longer[1]
    assert picked_longer[2] == 0
    assert picked_longer[0] == pytest.approx(-picked_longer[1])


def test_margin_from_probability_and_from_both_orders() -> None:
    features = build_features(
        [
            _pair(id="1", llm_prob_a=0.9),
            _pair(id="2", llm_prob_a_orders=(0.8, 0.4)),
            _pair(id="3"),
        ]
    )
    assert features.column("margin_known").tolist() == [1.0, 1.0, 0.0]
    assert features.column("margin") == pytest.approx([0.8, 0.2, 0.0])
    assert features.column("margin_order_gap") == pytest.approx([0.0, 0.4, 0.0])


def test_prompt_tags() -> None:
    features = build_features(
        [
            _pair(id="1", prompt="Write a python function to sort a list."),
            _pair(id="2", prompt="Solve 3x + 2 = 11."),
            _pair(id="3", prompt="Describe a sunset."),
        ]
    )
    assert features.column("prompt_code").tolist() == [1.0, 0.0, 0.0]
    assert features.column("prompt_math").tolist() == [0.0, 1.0, 0.0]
    assert features.column("prompt_digit_ratio")[2] == 0.0


def test_model_pair_is_off_unless_configured() -> None:
    pairs = [_pair(id="1", model_a="gpt-4", model_b="llama-13b"), _pair(id="2", model_a="x")]
    assert not any(name.startswith("model_") for name in build_features(pairs).names)
    config = FeatureConfig.with_models_of(pairs)
    features = build_features(pairs, config)
    assert features.column("model_gpt-4").tolist() == [1.0, 0.0]
    assert features.column("model_x").tolist() == [0.0, 1.0]


def test_pair_from_record_reads_the_mtbench_schema() -> None:
    pair = pair_from_record(
        {
            "id": "q1",
            "prompt": "p",
            "response_a": "a",
            "response_b": "b",
            "llm_label": "tie (inconsistent)",
            "category": "math",
            "turn": 2,
            "reference_answer": "42",
            "model_a": "m1",
        }
    )
    assert pair.llm_label == "tie (inconsistent)"
    assert pair.turn == 2
    assert pair.has_reference
    assert pair.llm_prob_a is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("prompt", None), ("llm_label", "model_c"), ("llm_prob_a", "high"), ("turn", "two")],
)
def test_pair_from_record_names_the_bad_field(field: str, value: object) -> None:
    record = {"id": "q1", "prompt": "p", "response_a": "a", "response_b": "b", field: value}
    with pytest.raises(ValueError, match=field):
        pair_from_record(record)


def test_verdict_features_are_enough_for_the_cold_start_rule() -> None:
    from routing.disagreement import ColdStartRule
    from routing.features import verdict_features

    pairs = [_pair(id=str(i), llm_label=lab) for i, lab in enumerate(["tie", None, "model_b"])]
    rule = ColdStartRule()
    assert (
        rule.predict_proba(verdict_features(pairs)) == rule.predict_proba(build_features(pairs))
    ).all()


def test_every_feature_has_a_meaning_for_the_decision_page() -> None:
    names = feature_names(FeatureConfig(include_models=True, models=("gpt-4",)))
    assert [name for name in names if not feature_meaning(name)] == []


def test_a_record_names_its_conversation_by_question_else_by_its_opening() -> None:
    record = {
        "id": "q1-t2",
        "prompt": "Now shorter.",
        "response_a": "a",
        "response_b": "b",
        "turn": 2,
        "conversation_a": [
            {"role": "user", "content": "Plan a trip."},
            {"role": "assistant", "content": "..."},
        ],
    }
    assert pair_from_record(record).conversation_key == conversation_of("Plan a trip.")
    # MT-Bench names the question both turns belong to, with or without the conversation.
    assert pair_from_record({**record, "question_id": 1}).conversation_key == "question 1"
    single = {key: record[key] for key in ("id", "prompt", "response_a", "response_b")}
    assert pair_from_record(single).conversation_key == conversation_of("Now shorter.")


@pytest.mark.parametrize(
    ("answer", "refuses"),
    [
        ("I'm sorry, but I cannot help with that request.", True),
        ("As an AI language model, I have no feelings.", True),
        ("I am unable to diagnose medical conditions.", True),
        ("I apologize, but I do not actually have a visual perception.", True),
        ("I can\u2019t provide that information.", True),  # a typographic apostrophe
        ("I'm sorry, I don't understand the question.", True),
        ("I don't have access to real-time data.", True),
        # Answers that merely say "can't", "sorry" or "don't have" are no refusals.
        ("What a trip! I can't wait to return to the islands again!", False),
        ("I'm sorry to hear that you're experiencing conflicts at home.", False),
        ("I like dancing but I don't have a favorite style.", False),
        ("The function cannot return None here.", False),
        ("I am able to help you with that.", False),
        ("I'm able to provide details.", False),
        ("I'm sorry, I misread the question: here is the answer.", False),
        ("I can't help but laugh at this one.", False),
        ("I can't see why not.", False),
    ],
)
def test_refusals_are_refusals_and_not_any_cant_or_sorry(answer: str, refuses: bool) -> None:
    features = build_features([_pair(response_a=answer, response_b="A plain answer.")])
    assert features.column("answers_one_refuses").tolist() == [float(refuses)]
