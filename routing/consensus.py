"""How well a verdict fits the judge's other verdicts: routing features from the whole arena.

Django-free. An arena compares the same models again and again, and the judge labels every
pair before anyone routes it. Its other verdicts therefore tell the router two things about a
pair that its own texts cannot:

- **Consistency.** Score each model by the judge's other verdicts (a win +1, a loss -1, a tie
  0, averaged) and a verdict for the answer the judge usually ranks lower is suspicious: the
  judge contradicts itself across pairs, as a flipped verdict does within one pair (MT-Bench's
  both-orders check, applied across pairs).
- **Closeness.** Two models the judge's other verdicts rank alike are where people often call
  a tie, or split, and where a decisive verdict is a coin toss.
- **Standing on the prompt.** How highly the judge's other verdicts on the same prompt rank the
  two answers together. Where a decisive verdict goes wrong depends on the arena, and the
  fitted model learns which end: on MT-Bench between the prompt's two best answers (people
  call them a tie), on the PandaLM pairs between its two worst.

Three scopes: the same prompt (the other answers to it), the same category, and the whole
arena. A fourth signal follows a conversation: where an arena compares the same two models at
each turn of one conversation (MT-Bench's second turn continues the first), a verdict that
contradicts the judge's verdict on the same two models one turn earlier or later is as
suspicious as one that flips when the answers are swapped.

Every score leaves out the pair itself and any other verdict on the same two answers (the same
models on the same prompt, in either order), so a verdict never vouches for itself, and it uses
verdicts only, never human votes: the features exist before anyone has voted, and the
evaluation may build them from every pair without leaking the held-out humans.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SCOPES = ("prompt", "category", "global")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One judge verdict as the consensus reads it: who met whom on which prompt, who won."""

    pair_id: str
    prompt_key: str | None
    category: str | None
    model_a: str | None
    model_b: str | None
    label: str | None
    # The conversation the prompt belongs to (see `features.conversation_of`) and the prompt's
    # turn in it: prompts that share the key are turns of one conversation. None when unknown.
    conversation_key: str | None = None
    turn: int | None = None


def direction(label: str | None) -> float:
    """+1 when the verdict picked A, -1 for B, 0 for any tie and for no verdict."""
    return {"model_a": 1.0, "model_b": -1.0}.get(label or "", 0.0)


def _scope_key(verdict: Verdict, scope: str) -> Hashable | None:
    """The verdict's group in a scope; None (no group) for the prompt scope without a key."""
    if scope == "prompt":
        return verdict.prompt_key
    if scope == "category":
        return verdict.category or ""
    return ""


def _is_tie(label: str | None) -> bool:
    return bool(label) and label.startswith("tie")  # type: ignore[union-attr]


class _Tally:
    """Per (scope key, model): the sum of signed results and the number of verdicts."""

    def __init__(self) -> None:
        self.total: defaultdict[tuple[Hashable, str], float] = defaultdict(float)
        self.count: defaultdict[tuple[Hashable, str], int] = defaultdict(int)

    def add(self, key: Hashable, verdict: Verdict) -> None:
        d = direction(verdict.label)
        for model, result in ((verdict.model_a, d), (verdict.model_b, -d)):
            self.total[key, model] += result  # type: ignore[index]
            self.count[key, model] += 1  # type: ignore[index]

    def score_without(self, key: Hashable, model: str, left_out: list[Verdict]) -> float:
        """The model's mean result in the scope without the `left_out` verdicts; 0 (neutral)
        when nothing else is known. Reads only: one tally serves every pair."""
        total = self.total.get((key, model), 0.0)
        count = self.count.get((key, model), 0)
        for verdict in left_out:
            if model == verdict.model_a:
                total -= direction(verdict.label)
            elif model == verdict.model_b:
                total += direction(verdict.label)
            else:
                continue
            count -= 1
        return total / count if count > 0 else 0.0


def _usable(verdict: Verdict) -> bool:
    """Whether the verdict says something about its models' standing: two models (not one
    model against itself, say two of its generation settings) and a label."""
    return bool(verdict.model_a and verdict.model_b and verdict.label) and (
        verdict.model_a != verdict.model_b
    )


def _matchup(verdict: Verdict) -> Hashable:
    """What a verdict must not be scored against: itself, and any other verdict on the same two
    answers (the same models on the same prompt, in either order: the judge's same opinion)."""
    if verdict.prompt_key is None or not (verdict.model_a and verdict.model_b):
        return ("pair", verdict.pair_id)
    return ("matchup", verdict.prompt_key, frozenset((verdict.model_a, verdict.model_b)))


class _PromptTies:
    """Per prompt: how many verdicts, how many ties of any kind, how many flipped ones."""

    def __init__(self) -> None:
        self.total: defaultdict[Hashable, int] = defaultdict(int)
        self.ties: defaultdict[Hashable, int] = defaultdict(int)
        self.flips: defaultdict[Hashable, int] = defaultdict(int)

    def add(self, verdict: Verdict) -> None:
        if verdict.prompt_key is None or not verdict.label:
            return
        self.total[verdict.prompt_key] += 1
        self.ties[verdict.prompt_key] += _is_tie(verdict.label)
        self.flips[verdict.prompt_key] += verdict.label == "tie (inconsistent)"

    def shares_without(self, key: Hashable, left_out: list[Verdict]) -> tuple[float, float]:
        """The shares of ties and of flips among the prompt's verdicts but `left_out`."""
        counted = [v for v in left_out if v.prompt_key == key and v.label]
        total = self.total.get(key, 0) - len(counted)
        if total <= 0:
            return 0.0, 0.0
        ties = self.ties[key] - sum(_is_tie(v.label) for v in counted)
        flips = self.flips[key] - sum(v.label == "tie (inconsistent)" for v in counted)
        return ties / total, flips / total


CONVERSATION_COLUMNS = (
    "conversation_known",
    "conversation_agree",
    "conversation_ties",
    "decisive_conversation_ties",
)


class _Conversations:
    """Per conversation and pair of models, and per turn within it: how many verdicts, their
    signed sum (seen from the alphabetically first model's side) and their ties. Reading a
    verdict's other turns subtracts its own turn's share, so every read is O(1).

    A turn is the verdict's `turn` when known, else its prompt: the same prompt in the other
    order, or a copy of the prompt (the same conversation imported twice), is the judge's
    same opinion, never another turn."""

    def __init__(self) -> None:
        self.count: defaultdict[Hashable, int] = defaultdict(int)
        self.signed: defaultdict[Hashable, float] = defaultdict(float)
        self.ties: defaultdict[Hashable, int] = defaultdict(int)

    @staticmethod
    def _keys(verdict: Verdict) -> tuple[Hashable, Hashable, float] | None:
        """(conversation and models, the same at this turn, +1 or -1 to turn the verdict's
        direction to the first model's side); None without a conversation or models."""
        if verdict.conversation_key is None or not _usable(verdict):
            return None
        models = (verdict.model_a, verdict.model_b)
        group = (verdict.conversation_key, min(models), max(models))  # type: ignore[type-var]
        side = 1.0 if verdict.model_a == group[1] else -1.0
        if verdict.turn is not None:
            return group, (group, "turn", verdict.turn), side
        return group, (group, "prompt", verdict.prompt_key), side

    def add(self, verdict: Verdict) -> None:
        keys = self._keys(verdict)
        if keys is None:
            return
        group, at_turn, side = keys
        for key in (group, at_turn):
            self.count[key] += 1
            self.signed[key] += side * direction(verdict.label)
            self.ties[key] += _is_tie(verdict.label)

    def other_turns(self, verdict: Verdict) -> tuple[int, float, int]:
        """The same two models' verdicts at the conversation's other turns: (how many, their
        mean direction seen from the verdict's answer A, how many ties)."""
        keys = self._keys(verdict)
        if keys is None:
            return 0, 0.0, 0
        group, at_turn, side = keys
        count = self.count[group] - self.count[at_turn]
        if count <= 0:
            return 0, 0.0, 0
        signed = self.signed[group] - self.signed[at_turn]
        return count, side * signed / count, self.ties[group] - self.ties[at_turn]


def _conversation_columns(
    targets: Sequence[Verdict], pool: Mapping[str, Verdict], conversations: _Conversations
) -> dict[str, np.ndarray]:
    n = len(targets)
    columns = {name: np.zeros(n) for name in CONVERSATION_COLUMNS}
    for i, target in enumerate(targets):
        own = pool[target.pair_id]
        count, mean_direction, ties = conversations.other_turns(own)
        if not count:
            continue
        d = direction(own.label)
        tie_share = ties / count
        columns["conversation_known"][i] = 1.0
        columns["conversation_agree"][i] = d * mean_direction
        columns["conversation_ties"][i] = tie_share
        columns["decisive_conversation_ties"][i] = abs(d) * tie_share
    return columns


def consensus_columns(
    targets: Sequence[Verdict], context: Iterable[Verdict] = ()
) -> dict[str, np.ndarray]:
    """Consensus features for each target verdict, from the targets and the `context` (every
    other verdict of the same judge in the arena; a pair in both is counted once, the
    context's copy winning).

    Per scope: `{scope}_consensus` (+ when the verdict picked the answer the other verdicts
    rank higher, - when it picked the lower one), `{scope}_abs_gap` (how far apart the two
    models rank) and `tie_{scope}_gap` (a tie between models ranked far apart). Per prompt also
    the share of the other verdicts on it that are ties and that flipped, and
    `prompt_standing`: the two models' mean score there (+ both ranked high, - both low), with
    `decisive_prompt_standing` the same for a decisive verdict only. A pair without a prompt
    key has no prompt scope (zeros).

    Per conversation (`Verdict.conversation_key`), the judge's verdicts on the same two models
    at the conversation's other turns: whether there are any, how far they agree with this
    verdict (+1 all the same way, -1 all the other way, 0 for a tie), their share of ties,
    and that share when this verdict is decisive.
    """
    pool = {v.pair_id: v for v in targets}
    pool.update((v.pair_id, v) for v in context)
    tallies = {scope: _Tally() for scope in SCOPES}
    prompt_ties = _PromptTies()
    matchups: defaultdict[Hashable, list[Verdict]] = defaultdict(list)
    conversations = _Conversations()
    for verdict in pool.values():
        matchups[_matchup(verdict)].append(verdict)
        prompt_ties.add(verdict)
        conversations.add(verdict)
        if _usable(verdict):
            for scope, tally in tallies.items():
                tally.add(_scope_key(verdict, scope), verdict)

    n = len(targets)
    columns = {
        name: np.zeros(n)
        for scope in SCOPES
        for name in (f"{scope}_consensus", f"{scope}_abs_gap", f"tie_{scope}_gap")
    }
    columns["prompt_judge_ties"] = np.zeros(n)
    columns["prompt_judge_flips"] = np.zeros(n)
    columns["prompt_standing"] = np.zeros(n)
    columns["decisive_prompt_standing"] = np.zeros(n)
    for i, target in enumerate(targets):
        own = pool[target.pair_id]  # the copy that was pooled
        left_out = matchups[_matchup(own)]
        usable_left_out = [v for v in left_out if _usable(v)]
        d = direction(own.label)
        for scope, tally in tallies.items():
            key = _scope_key(own, scope)
            if key is None or not (own.model_a and own.model_b):
                continue
            same_scope = [v for v in usable_left_out if _scope_key(v, scope) == key]
            score_a = tally.score_without(key, own.model_a, same_scope)
            score_b = tally.score_without(key, own.model_b, same_scope)
            gap = score_a - score_b
            columns[f"{scope}_consensus"][i] = d * gap
            columns[f"{scope}_abs_gap"][i] = abs(gap)
            columns[f"tie_{scope}_gap"][i] = _is_tie(own.label) * abs(gap)
            if scope == "prompt":
                standing = (score_a + score_b) / 2
                columns["prompt_standing"][i] = standing
                columns["decisive_prompt_standing"][i] = abs(d) * standing
        if own.prompt_key is not None:
            ties, flips = prompt_ties.shares_without(own.prompt_key, left_out)
            columns["prompt_judge_ties"][i] = ties
            columns["prompt_judge_flips"][i] = flips
    columns.update(_conversation_columns(targets, pool, conversations))
    return columns
