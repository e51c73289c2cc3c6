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

Three scopes: the same prompt (the other answers to it), the same category, and the whole
arena. Every score leaves the pair itself out, so a verdict never vouches for itself, and it
uses verdicts only, never human votes: the features exist before anyone has voted, and the
evaluation may build them from every pair without leaking the held-out humans.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
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


def direction(label: str | None) -> float:
    """+1 when the verdict picked A, -1 for B, 0 for any tie and for no verdict."""
    return {"model_a": 1.0, "model_b": -1.0}.get(label or "", 0.0)


def _scope_key(verdict: Verdict, scope: str) -> Hashable | None:
    if scope == "prompt":
        return verdict.prompt_key
    if scope == "category":
        return verdict.category or ""
    return ""


class _Tally:
    """Per (scope key, model): the sum of signed results and the number of verdicts."""

    def __init__(self) -> None:
        self.total: defaultdict[tuple[Hashable, str], float] = defaultdict(float)
        self.count: defaultdict[tuple[Hashable, str], int] = defaultdict(int)

    def add(self, key: Hashable, verdict: Verdict, sign: float = 1.0) -> None:
        d = direction(verdict.label)
        for model, result in ((verdict.model_a, d), (verdict.model_b, -d)):
            self.total[key, model] += sign * result  # type: ignore[index]
            self.count[key, model] += int(sign)  # type: ignore[index]

    def score(self, key: Hashable, model: str) -> float:
        """The model's mean result in the scope; 0 (neutral) when nothing is known."""
        count = self.count.get((key, model), 0)
        return self.total.get((key, model), 0.0) / count if count > 0 else 0.0


def _usable(verdict: Verdict) -> bool:
    return bool(verdict.model_a and verdict.model_b and verdict.label is not None)


def _prompt_ties(verdicts: Iterable[Verdict]) -> tuple[dict, dict, dict]:
    """Per prompt: how many verdicts, how many ties of any kind, how many flipped ones."""
    total: defaultdict[Hashable, int] = defaultdict(int)
    ties: defaultdict[Hashable, int] = defaultdict(int)
    flips: defaultdict[Hashable, int] = defaultdict(int)
    for verdict in verdicts:
        if verdict.prompt_key is None or verdict.label is None:
            continue
        total[verdict.prompt_key] += 1
        ties[verdict.prompt_key] += verdict.label.startswith("tie")
        flips[verdict.prompt_key] += verdict.label == "tie (inconsistent)"
    return total, ties, flips


def consensus_columns(
    targets: Sequence[Verdict], context: Iterable[Verdict] = ()
) -> dict[str, np.ndarray]:
    """Consensus features for each target verdict, from the targets and the `context` (every
    other verdict of the same judge in the arena; a pair in both is counted once).

    Per scope: `{scope}_consensus` (+ when the verdict picked the answer the other verdicts
    rank higher, - when it picked the lower one), `{scope}_abs_gap` (how far apart the two
    models rank) and `tie_{scope}_gap` (a tie between models ranked far apart). Per prompt also
    the share of the other verdicts on it that are ties and that flipped.
    """
    pool = {v.pair_id: v for v in targets}
    pool.update((v.pair_id, v) for v in context)
    usable = [v for v in pool.values() if _usable(v)]
    tallies = {scope: _Tally() for scope in SCOPES}
    for verdict in usable:
        for scope, tally in tallies.items():
            tally.add(_scope_key(verdict, scope), verdict)
    prompt_total, prompt_ties, prompt_flips = _prompt_ties(pool.values())

    n = len(targets)
    columns = {
        name: np.zeros(n)
        for scope in SCOPES
        for name in (f"{scope}_consensus", f"{scope}_abs_gap", f"tie_{scope}_gap")
    }
    columns["prompt_judge_ties"] = np.zeros(n)
    columns["prompt_judge_flips"] = np.zeros(n)
    for i, target in enumerate(targets):
        # The pair's own verdict as pooled (the context's copy wins), left out of its scores.
        own = pool[target.pair_id]
        counted = _usable(own)
        d = direction(target.label)
        for scope, tally in tallies.items():
            key = _scope_key(own, scope)
            if counted:
                tally.add(key, own, sign=-1.0)
            if target.model_a and target.model_b:
                gap = tally.score(key, target.model_a) - tally.score(key, target.model_b)
                columns[f"{scope}_consensus"][i] = d * gap
                columns[f"{scope}_abs_gap"][i] = abs(gap)
                columns[f"tie_{scope}_gap"][i] = (1.0 - abs(d)) * abs(gap)
            if counted:
                tally.add(key, own)
        key = own.prompt_key
        if key is not None:
            mine = own.label is not None
            others = prompt_total.get(key, 0) - mine
            if others > 0:
                own_tie = mine and own.label.startswith("tie")  # type: ignore[union-attr]
                own_flip = own.label == "tie (inconsistent)"
                columns["prompt_judge_ties"][i] = (prompt_ties[key] - own_tie) / others
                columns["prompt_judge_flips"][i] = (prompt_flips[key] - own_flip) / others
    return columns
