"""The consensus features: how a verdict fits the judge's other verdicts in the arena."""

from __future__ import annotations

import pytest

from routing.consensus import Verdict, consensus_columns


def verdict(pk: str, a: str, b: str, label: str | None, *, prompt: str = "p", cat: str = "c"):
    return Verdict(pk, prompt, cat, a, b, label)


def one_prompt(results: str) -> list[Verdict]:
    """Verdicts on prompt "p" from "xz>" (x beat z), "xz<" (z beat x), "zw=" (a tie) and
    "zw~" (flipped)."""
    labels = {">": "model_a", "<": "model_b", "=": "tie", "~": "tie (inconsistent)"}
    return [verdict(r[:2], r[0], r[1], labels[r[2]]) for r in results.split()]


# The judge ranks strong above weak on four other prompts of the category.
CONTEXT = [verdict(f"ctx{i}", "strong", "weak", "model_a", prompt=f"q{i}") for i in range(4)]


def test_a_verdict_against_the_judges_own_ranking_scores_below_one_that_agrees() -> None:
    targets = [
        verdict("with", "strong", "weak", "model_a", prompt="new"),
        verdict("against", "weak", "strong", "model_a", prompt="new2"),
        verdict("tie", "strong", "weak", "tie", prompt="new3"),
    ]
    columns = consensus_columns(targets, CONTEXT)
    agrees, contradicts, tie = columns["global_consensus"]
    assert agrees > 0 > contradicts
    assert columns["category_consensus"][1] < 0
    # A tie between models ranked far apart is marked as such, and has no direction.
    assert tie == 0.0
    assert columns["tie_global_gap"][2] > 0
    assert columns["tie_global_gap"][0] == 0.0


def test_a_verdict_never_vouches_for_itself() -> None:
    alone = consensus_columns([verdict("only", "x", "y", "model_a")])
    assert all(values[0] == 0.0 for values in alone.values())
    # Listing the pair in the context as well does not count it twice (or at all).
    target = verdict("ctx0", "strong", "weak", "model_a", prompt="q0")
    columns = consensus_columns([target], CONTEXT)
    # Three other verdicts, not four: strong scores 1, weak -1.
    assert columns["global_consensus"][0] == pytest.approx(2.0)
    assert columns["prompt_consensus"][0] == 0.0  # nothing else on its prompt


def test_the_prompt_scope_reads_the_other_answers_to_the_same_prompt() -> None:
    # On one prompt x beat z and w, and both beat y: "y beat x" breaks transitivity most.
    same = one_prompt("xz> xw> zy> wy> yx> zw~")
    columns = consensus_columns(same)
    consensus = list(columns["prompt_consensus"])
    assert consensus[4] == min(consensus) == pytest.approx(-2.0)
    # The share of the *other* verdicts on the prompt that are ties or flipped.
    assert columns["prompt_judge_flips"][0] == pytest.approx(1 / 5)
    assert columns["prompt_judge_flips"][5] == 0.0
    assert columns["prompt_judge_ties"][5] == 0.0
    # Another category's verdicts do not enter the category scope, but enter the global one.
    other = [verdict(f"o{i}", "y", "x", "model_a", prompt=f"o{i}", cat="maths") for i in range(3)]
    with_other = consensus_columns(same, other)
    assert with_other["category_consensus"][4] == columns["category_consensus"][4]
    assert with_other["global_consensus"][4] > columns["global_consensus"][4]
    assert with_other["prompt_consensus"][4] == columns["prompt_consensus"][4]


def test_pairs_without_models_or_verdict_are_neutral() -> None:
    targets = [
        Verdict("anon", "p", "c", None, None, "model_a"),
        verdict("unjudged", "strong", "weak", None, prompt="q9"),
    ]
    columns = consensus_columns(targets, CONTEXT)
    assert all(values[0] == 0.0 for values in columns.values())
    # An unjudged pair has no direction, but how far apart its models rank is known.
    assert columns["global_consensus"][1] == 0.0
    assert columns["global_abs_gap"][1] == pytest.approx(2.0)


def test_the_same_matchup_in_the_other_order_does_not_vouch_for_the_verdict() -> None:
    # MT-Bench lists a comparison in both orders, with one verdict behind both records: the
    # mirror must be left out with the pair, or the verdict would confirm itself.
    mirrored = [
        verdict("ab", "a", "b", "model_a", prompt="q"),
        verdict("ba", "b", "a", "model_b", prompt="q"),
    ]
    columns = consensus_columns(mirrored)
    assert all(values.tolist() == [0.0, 0.0] for values in columns.values())
    # A flip and its mirror: the prompt's other verdicts show no flip.
    flips = [
        verdict("ab", "a", "b", "tie (inconsistent)", prompt="q"),
        verdict("ba", "b", "a", "tie (inconsistent)", prompt="q"),
        verdict("ac", "a", "c", "model_a", prompt="q"),
    ]
    assert consensus_columns(flips)["prompt_judge_flips"].tolist() == [0.0, 0.0, 1.0]


def test_a_missing_verdict_is_not_a_tie() -> None:
    targets = [
        verdict("none", "strong", "weak", None, prompt="n1"),
        verdict("tie", "strong", "weak", "tie", prompt="n2"),
    ]
    columns = consensus_columns(targets, CONTEXT)
    assert columns["tie_global_gap"][0] == 0.0 < columns["tie_global_gap"][1]


def test_pairs_without_a_prompt_key_have_no_prompt_scope() -> None:
    loose = [
        Verdict("p1", None, "c", "x", "y", "model_a"),
        Verdict("p2", None, "c", "x", "y", "model_a"),
    ]
    columns = consensus_columns(loose)
    assert columns["prompt_consensus"].tolist() == [0.0, 0.0]
    assert columns["prompt_abs_gap"].tolist() == [0.0, 0.0]
    # The other scopes still read each other's verdicts.
    assert columns["global_consensus"].tolist() == [2.0, 2.0]


def turn(pk: str, a: str, b: str, label: str | None, *, prompt: str, conversation: str | None):
    return Verdict(pk, prompt, "c", a, b, label, conversation)


def test_a_verdict_is_read_against_the_same_two_models_at_the_conversations_other_turn() -> None:
    # Turn 1: the judge preferred x over y (listed the other way round, y first).
    first = turn("t1", "y", "x", "model_b", prompt="q/1", conversation="q")
    targets = [
        turn("same", "x", "y", "model_a", prompt="q/2", conversation="q"),
        turn("flipped", "x", "y", "model_b", prompt="q/2b", conversation="q"),
        turn("tie", "x", "y", "tie", prompt="q/2c", conversation="q"),
        turn("elsewhere", "x", "y", "model_b", prompt="r/2", conversation="r"),
    ]
    columns = consensus_columns(targets, [first])
    # Each target also sees the other targets of its conversation: "same" sees t1 (+1),
    # "flipped" (-1) and "tie" (0), on average for x.
    assert columns["conversation_agree"][0] == pytest.approx(0.0)
    assert columns["conversation_known"].tolist() == [1.0, 1.0, 1.0, 0.0]
    alone = consensus_columns([targets[1]], [first])
    assert alone["conversation_agree"][0] == -1.0  # against turn 1's verdict
    assert alone["conversation_ties"][0] == 0.0
    # A decisive verdict where the judge called a tie at the other turn.
    decisive = consensus_columns([targets[0]], [targets[2]])
    assert decisive["decisive_conversation_ties"][0] == 1.0
    assert decisive["conversation_agree"][0] == 0.0
    tie = consensus_columns([targets[2]], [first])
    assert tie["decisive_conversation_ties"][0] == 0.0 and tie["conversation_agree"][0] == 0.0


def test_the_same_prompt_in_the_other_order_is_not_another_turn() -> None:
    # The mirrored copy of a pair on the same prompt is the same opinion, not a second turn;
    # no conversation key, no conversation signal.
    mirrored = [
        turn("ab", "x", "y", "model_a", prompt="q/1", conversation="q"),
        turn("ba", "y", "x", "model_a", prompt="q/1", conversation="q"),
        turn("loose", "x", "y", "model_a", prompt="q/2", conversation=None),
    ]
    columns = consensus_columns(mirrored)
    assert columns["conversation_known"].tolist() == [0.0, 0.0, 0.0]
    assert columns["conversation_agree"].tolist() == [0.0, 0.0, 0.0]


def test_a_copy_of_the_prompt_is_the_same_turn_not_another() -> None:
    # The same conversation imported twice: two prompts, both at turn 2. The copy's verdict is
    # the judge's same opinion on the same texts, so it does not count as another turn.
    copies = [
        Verdict("orig", "p1", "c", "x", "y", "model_a", "conv", 2),
        Verdict("copy", "p2", "c", "x", "y", "model_a", "conv", 2),
        Verdict("first", "p0", "c", "y", "x", "model_b", "conv", 1),
    ]
    columns = consensus_columns(copies)
    assert columns["conversation_known"].tolist() == [1.0, 1.0, 1.0]
    # Each second-turn verdict sees turn 1 only (x preferred there too); turn 1 sees both.
    assert columns["conversation_agree"].tolist() == [1.0, 1.0, 1.0]
    disagreeing = consensus_columns(
        [Verdict("orig", "p1", "c", "x", "y", "model_b", "conv", 2)], copies[1:2]
    )
    assert disagreeing["conversation_known"][0] == 0.0


def test_the_prompt_standing_says_how_highly_the_judge_ranks_both_answers() -> None:
    # On one prompt the judge ranks x and z above w and y (every other verdict agrees).
    # "zx<" is the x-z matchup listed again in the other order: left out with it.
    same = one_prompt("xz> xw> xy> zw> zy> wy= zx<")
    columns = consensus_columns(same)
    standing = columns["prompt_standing"]
    # x vs z, their own verdict and its mirror left out: x and z score 1 (two wins each), the
    # two best. (With the mirror counted, z would score 1/3.)
    assert standing[0] == pytest.approx(1.0)
    # w vs y, the tie left out: w and y score -1 (losses to x and z), the two worst.
    assert standing[5] == pytest.approx(-1.0)
    # x vs w, their verdict left out: x 1 (over z, listed twice, and y), w -1/2 (a loss to
    # z, the tie with y).
    assert standing[1] == pytest.approx(0.25)
    assert standing[0] > standing[1] > standing[5]
    # Only a decisive verdict carries it into the decisive column.
    assert columns["decisive_prompt_standing"][0] == pytest.approx(1.0)
    assert columns["decisive_prompt_standing"][5] == 0.0
    # Another prompt's verdicts do not enter it.
    other = [verdict(f"o{i}", "y", "x", "model_a", prompt=f"o{i}") for i in range(3)]
    assert consensus_columns(same, other)["prompt_standing"].tolist() == standing.tolist()


def test_a_model_against_itself_says_nothing_about_its_standing() -> None:
    # Two generation settings of one model compared on a prompt: no winner among models.
    self_pair = [verdict("mm", "m", "m", "model_a"), verdict("mo", "m", "o", "tie")]
    columns = consensus_columns(self_pair)
    assert columns["prompt_standing"].tolist() == [0.0, 0.0]
    assert columns["prompt_consensus"].tolist() == [0.0, 0.0]
