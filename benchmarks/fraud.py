"""Benchmark: the fraud detector (annotation.fraud) on a simulated arena with planted bots.

    .venv/bin/python benchmarks/fraud.py
    .venv/bin/python benchmarks/fraud.py --honest 300 --seed 1

The simulated arena: a Bradley-Terry truth over 20 models (ratings ~ N(1000, 120)), honest
annotators whose choices follow the truth through a per-annotator temperature, with ties that
keep the expected score exact, a small personal lean to one side, a personal tie habit,
log-normal reading times around ``read_chars`` / their reading speed, sides shown at random,
answer lengths that differ at random (log ratio ~ N(0, 0.6)) and a personal taste for the
longer answer (72 % of the decisive votes between markedly different lengths, as
the MT-Bench experts' 72 %), and 10 % gold pairs. A few honest households share a device
fingerprint. Planted bots:

* ``random``: presses one of the four buttons uniformly, at human-like speed;
* ``always_left``: always picks the left answer, at human-like speed;
* ``always_tie``: always presses "tie", at human-like speed;
* ``longer``: always picks the longer answer, at human-like speed;
* ``shorter``: always picks the shorter answer, at human-like speed;
* ``too_fast``: honest-looking choices, cast in 10-90 % of the reading floor;
* ``promoter``: votes honestly except that one (weak) model always wins when it appears;
* ``sybil``: rings of 3-5 accounts on one fingerprint casting the same votes within seconds,
  promoting a model.

Reported side by side: recall per bot kind and overall precision for annotators with at least
30 votes (and, for reference, for everyone), the false-positive rate on honest annotators, and
the mean absolute rating error against the truth with no bots, with bots, and with flagged
annotators removed. Then the detector on the real MT-Bench expert votes, which carry no timing
and no sides, so those signals are skipped: the share of judges with >= 30 votes flagged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotation.fraud import FraudConfig, VoteRecord, assess, crowd_strength, length_log_ratio
from annotation.ratings import RATING_PER_LOGIT, to_ratings

MTBENCH = Path(__file__).resolve().parents[1].parent / "shared/data/mtbench"
MTBENCH_VOTES = MTBENCH / "votes_human.jsonl"
MTBENCH_PAIRS = MTBENCH / "pairs_human_vs_gpt4.jsonl"
MIN_JUDGED_VOTES = 30
N_MODELS = 20
GOLD_SHARE = 0.1
BOT_KINDS = (
    "random",
    "always_left",
    "always_tie",
    "longer",
    "shorter",
    "too_fast",
    "promoter",
    "sybil",
)


@dataclass
class Arena:
    votes: list[VoteRecord]
    kind: dict[str, str]  # annotator -> "honest" or a bot kind
    truth: np.ndarray  # ratings, mean 1000
    models: list[str]


class Simulator:
    def __init__(self, rng: np.random.Generator, strength: np.ndarray) -> None:
        self.rng = rng
        self.strength = strength
        self.models = [f"model-{i:02d}" for i in range(strength.size)]
        self.votes: list[VoteRecord] = []

    def pairs(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        a = self.rng.integers(0, self.strength.size, n)
        b = self.rng.integers(0, self.strength.size - 1, n)
        return a, b + (b >= a)

    def honest_choices(
        self,
        a: np.ndarray,
        b: np.ndarray,
        left_is_a: np.ndarray,
        temperature: float,
        log_length_ratio: np.ndarray,
    ) -> list[str]:
        """Truth through a temperature; ties keep the expected score of model a exact."""
        rng = self.rng
        lean = rng.normal(0.0, 0.1)  # a personal lean towards the left answer, in log-odds
        taste = rng.normal(1.5, 0.6)  # for the longer answer, in log-odds per log length ratio
        logit = (self.strength[a] - self.strength[b]) / temperature
        logit = logit + np.where(left_is_a, lean, -lean) + taste * log_length_ratio
        p = 1.0 / (1.0 + np.exp(-logit))
        tie_habit = rng.uniform(0.15, 0.6)
        tie = tie_habit * np.minimum(p, 1.0 - p)
        u = rng.random(a.size)
        bothbad = rng.random(a.size) < 0.4
        return [
            "model_a"
            if x < p_i - t
            else ("tie (bothbad)" if bb else "tie")
            if x < p_i + t
            else "model_b"
            for x, p_i, t, bb in zip(u, p, tie, bothbad, strict=True)
        ]

    def timings(
        self, n: int, read_chars: np.ndarray, *, too_fast: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Time to vote (ms) and timestamps of one session."""
        rng = self.rng
        if too_fast:
            floor = np.maximum(1.5, read_chars / 50.0)
            seconds = floor * rng.uniform(0.1, 0.9, n)
        else:
            speed = 20.0 * np.exp(rng.normal(0.0, 0.3))  # chars/s of this reader
            seconds = read_chars / speed * np.exp(rng.normal(0.0, 0.5, n)) + 3.0
        gaps = np.exp(rng.normal(np.log(5.0), 0.5, n))
        start = rng.uniform(0.0, 14 * 86400.0)
        stamps = start + np.cumsum(seconds + gaps)
        return (seconds * 1000).astype(int), stamps

    def add(
        self,
        annotator: str,
        n: int,
        kind: str,
        *,
        fingerprint: str,
        promoted: int | None = None,
    ) -> None:
        rng = self.rng
        a, b = self.pairs(n)
        left_is_a = rng.random(n) < 0.5
        temperature = float(np.exp(rng.normal(0.0, 0.2)))
        log_ratio = rng.normal(0.0, 0.6, n)  # log(length of answer A / answer B)
        winners = self.honest_choices(a, b, left_is_a, temperature, log_ratio)
        gold_accuracy = 1.0 / (1.0 + np.exp(-3.0 / temperature))
        if kind == "random":
            winners = list(rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], n))
            gold_accuracy = 0.25
        elif kind == "always_left":
            winners = ["model_a" if left else "model_b" for left in left_is_a]
            gold_accuracy = 0.5
        elif kind == "always_tie":
            winners = ["tie"] * n
            gold_accuracy = 0.0
        elif kind in ("longer", "shorter"):
            a_wins = log_ratio > 0 if kind == "longer" else log_ratio < 0
            winners = ["model_a" if wins else "model_b" for wins in a_wins]
            gold_accuracy = 0.5
        if promoted is not None:
            winners = [
                "model_a" if x == promoted else "model_b" if y == promoted else w
                for x, y, w in zip(a, b, winners, strict=True)
            ]
        read_chars = np.exp(rng.normal(np.log(2500.0), 0.5, n)).astype(int)
        millis, stamps = self.timings(n, read_chars, too_fast=kind == "too_fast")
        gold = rng.random(n) < GOLD_SHARE
        correct = rng.random(n) < gold_accuracy
        for i in range(n):
            self.votes.append(
                VoteRecord(
                    annotator=annotator,
                    model_a=self.models[a[i]],
                    model_b=self.models[b[i]],
                    winner=str(winners[i]),
                    shown_left_is_a=bool(left_is_a[i]),
                    time_to_vote_ms=int(millis[i]),
                    read_chars=int(read_chars[i]),
                    tstamp=float(stamps[i]),
                    fingerprint=fingerprint,
                    gold_correct=bool(correct[i]) if gold[i] else None,
                    length_log_ratio=float(log_ratio[i]),
                )
            )

    def add_ring(self, names: Sequence[str], n: int, *, promoted: int) -> None:
        """Accounts on one fingerprint copying a leader's votes within a few seconds each."""
        start = len(self.votes)
        fingerprint = f"fp-ring-{names[0]}"
        self.add(names[0], n, "promoter", fingerprint=fingerprint, promoted=promoted)
        leader = self.votes[start:]
        for name in names[1:]:
            for vote in leader:
                flip = bool(self.rng.random() < 0.5)  # each account sees its own sides
                delay = float(self.rng.uniform(0.5, 8.0))
                self.votes.append(
                    VoteRecord(
                        annotator=name,
                        model_a=vote.model_b if flip else vote.model_a,
                        model_b=vote.model_a if flip else vote.model_b,
                        winner={"model_a": "model_b", "model_b": "model_a"}.get(
                            vote.winner, vote.winner
                        )
                        if flip
                        else vote.winner,
                        shown_left_is_a=vote.shown_left_is_a,
                        time_to_vote_ms=(vote.time_to_vote_ms or 0) + int(self.rng.normal(0, 2000)),
                        read_chars=vote.read_chars,
                        tstamp=(vote.tstamp or 0.0) + delay,
                        fingerprint=fingerprint,
                        gold_correct=vote.gold_correct,
                        length_log_ratio=None
                        if vote.length_log_ratio is None
                        else (-vote.length_log_ratio if flip else vote.length_log_ratio),
                    )
                )


def simulate(*, seed: int, honest: int, bots_per_kind: int) -> Arena:
    rng = np.random.default_rng(seed)
    strength = rng.normal(0.0, 120.0, N_MODELS) / RATING_PER_LOGIT
    strength -= strength.mean()
    sim = Simulator(rng, strength)
    kind: dict[str, str] = {}
    for i in range(honest):
        name = f"honest-{i:04d}"
        # Log-normal activity: most people cast a few dozen votes, some several hundred.
        n = int(np.clip(np.exp(rng.normal(np.log(35.0), 0.9)), 3, 600))
        # Every 20th pair of honest people share a household browser.
        fingerprint = f"fp-home-{i // 2}" if i % 40 < 2 else f"fp-{name}"
        sim.add(name, n, "honest", fingerprint=fingerprint)
        kind[name] = "honest"
    weak = np.argsort(strength)[: N_MODELS // 2]
    for bot_kind in BOT_KINDS:
        for j in range(bots_per_kind):
            name = f"{bot_kind}-{j:02d}"
            # A few small bots (under 30 votes) are planted too; they are reported apart.
            small = j >= bots_per_kind - 2
            if bot_kind == "sybil":
                size = int(rng.integers(3, 6))
                names = [f"{name}-{k}" for k in range(size)]
                n = int(rng.integers(10, 30) if small else rng.integers(40, 150))
                sim.add_ring(names, n, promoted=int(rng.choice(weak)))
                kind.update(dict.fromkeys(names, "sybil"))
                continue
            if bot_kind == "promoter":
                # A promoter needs volume: its model shows up in only 1 of 10 random pairs.
                n = int(rng.integers(10, 30) if small else rng.integers(100, 300))
                sim.add(
                    name, n, "promoter", fingerprint=f"fp-{name}", promoted=int(rng.choice(weak))
                )
            else:
                n = int(rng.integers(10, 30) if small else rng.integers(30, 200))
                sim.add(name, n, bot_kind, fingerprint=f"fp-{name}")
            kind[name] = bot_kind
    truth = to_ratings(strength)
    return Arena(votes=sim.votes, kind=kind, truth=truth, models=sim.models)


def rating_error(votes: Sequence[VoteRecord], arena: Arena) -> float:
    strength = crowd_strength(votes, models=arena.models, ridge=1e-3)
    fitted = to_ratings(np.array([strength[m] for m in arena.models]))
    return float(np.abs(fitted - arena.truth).mean())


@dataclass(frozen=True)
class Outcome:
    precision: float
    recall: float
    honest_flagged: int
    error_ratio: float  # filtered / no-bot leaderboard error
    recall_by_kind: dict[str, float]  # bots with >= 30 votes


def report_simulation(arena: Arena, config: FraudConfig, *, verbose: bool) -> Outcome:
    counts = Counter(v.annotator for v in arena.votes)
    started = time.perf_counter()
    results = assess(arena.votes, config=config)
    elapsed = time.perf_counter() - started
    out = print if verbose else (lambda *args, **kwargs: None)
    flagged = {r.annotator for r in results if r.flagged}
    honest = [a for a, k in arena.kind.items() if k == "honest"]
    out(
        f"simulated arena: {len(arena.votes)} votes, {len(honest)} honest annotators, "
        f"{len(arena.kind) - len(honest)} bot accounts; assess took {elapsed:.1f} s"
    )
    out()
    out(f"{'bot kind':<13}{'>=30 votes: flagged/bots':>26}{'recall':>8}{'<30 votes':>12}")
    for bot_kind in BOT_KINDS:
        big = [a for a, k in arena.kind.items() if k == bot_kind and counts[a] >= MIN_JUDGED_VOTES]
        small = [a for a, k in arena.kind.items() if k == bot_kind and counts[a] < MIN_JUDGED_VOTES]
        hit = sum(a in flagged for a in big)
        hit_small = sum(a in flagged for a in small)
        recall = hit / len(big) if big else float("nan")
        out(
            f"{bot_kind:<13}{f'{hit}/{len(big)}':>26}{recall:>8.2f}{f'{hit_small}/{len(small)}':>12}"
        )
    for label, minimum in ((">= 30 votes", MIN_JUDGED_VOTES), ("everyone", 0)):
        judged = [a for a in arena.kind if counts[a] >= minimum]
        bots = [a for a in judged if arena.kind[a] != "honest"]
        tp = sum(a in flagged for a in bots)
        fp = sum(a in flagged for a in judged if arena.kind[a] == "honest")
        n_honest = len(judged) - len(bots)
        precision = tp / (tp + fp) if tp + fp else float("nan")
        out(
            f"{label:<13} precision {precision:.3f}  recall {tp / len(bots):.3f}  "
            f"honest flagged {fp}/{n_honest} (FPR {fp / n_honest:.4f})"
        )
    for r in results:
        if r.flagged and arena.kind[r.annotator] == "honest":
            out(f"  false positive {r.annotator} ({r.votes} votes): {r.reasons}")

    honest_set = set(honest)
    no_bots = [v for v in arena.votes if v.annotator in honest_set]
    filtered = [v for v in arena.votes if v.annotator not in flagged]
    errors = (
        ("no bots", rating_error(no_bots, arena)),
        ("bots, unfiltered", rating_error(arena.votes, arena)),
        ("bots, filtered", rating_error(filtered, arena)),
    )
    out()
    out("leaderboard mean absolute rating error against the truth (rating points):")
    out("".join(f"{name:>20}" for name, _ in errors))
    out("".join(f"{error:>20.2f}" for _, error in errors))
    base = errors[0][1]
    out(f"filtered / no-bot error: {errors[2][1] / base:.3f} (target <= 1.10)")
    judged = [a for a in arena.kind if counts[a] >= MIN_JUDGED_VOTES]
    bots = [a for a in judged if arena.kind[a] != "honest"]
    tp = sum(a in flagged for a in bots)
    fp = sum(a in flagged for a in judged if arena.kind[a] == "honest")
    by_kind = {
        bot_kind: [a in flagged for a in bots if arena.kind[a] == bot_kind]
        for bot_kind in BOT_KINDS
    }
    return Outcome(
        precision=tp / (tp + fp) if tp + fp else float("nan"),
        recall=tp / len(bots),
        honest_flagged=fp,
        error_ratio=errors[2][1] / base,
        recall_by_kind={k: float(np.mean(hits)) for k, hits in by_kind.items() if hits},
    )


def _mtbench_length_ratios(path: Path) -> dict[tuple[int, int, str, str], float | None]:
    """(question, turn, model a, model b) -> log(length of answer A / answer B)."""
    if not path.exists():
        return {}
    with path.open() as handle:
        pairs = [json.loads(line) for line in handle if line.strip()]
    return {
        (p["question_id"], p["turn"], p["model_a"], p["model_b"]): length_log_ratio(
            len(p["response_a"]), len(p["response_b"])
        )
        for p in pairs
    }


def report_mtbench(path: Path) -> None:
    if not path.exists():
        print(f"\nMT-Bench votes not found at {path}; skipped")
        return
    with path.open() as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    # No timing, sides, fingerprints or gold here: those fields stay None and their signals
    # are skipped. Answer lengths come from the pairs file, where it is beside the votes.
    ratios = _mtbench_length_ratios(MTBENCH_PAIRS)
    votes = [
        VoteRecord(
            annotator=row["judge"],
            model_a=row["model_a"],
            model_b=row["model_b"],
            winner=row["winner"],
            length_log_ratio=ratios.get(
                (row["question_id"], row["turn"], row["model_a"], row["model_b"])
            ),
        )
        for row in rows
    ]
    results = assess(votes)
    judged = [r for r in results if r.votes >= MIN_JUDGED_VOTES]
    flagged = [r for r in judged if r.flagged]
    print()
    print(
        f"MT-Bench human votes: {len(votes)} votes, {len(results)} judges, "
        f"{len(judged)} with >= {MIN_JUDGED_VOTES} votes; flagged {len(flagged)} "
        f"({len(flagged) / max(len(judged), 1):.1%}, target <= 2%); "
        f"flagged overall {sum(r.flagged for r in results)}"
    )
    for r in results[:3]:
        print(f"  lowest trust {r.annotator} ({r.votes} votes, trust {r.trust:.2f}): {r.reasons}")


# (name, config, whether the detector sees the answers' lengths): the default, a stricter
# correction, and the default blind to lengths (the detector before it read them).
SETTINGS = (
    ("FDR 5% (default)", FraudConfig(), True),
    ("Holm FWER 1%", FraudConfig(correction="fwer", level=0.01), True),
    ("FDR 5%, lengths unseen", FraudConfig(), False),
)


def without_lengths(arena: Arena) -> Arena:
    """The same arena with every vote's answer lengths unknown."""
    votes = [replace(v, length_log_ratio=None) for v in arena.votes]
    return Arena(votes=votes, kind=arena.kind, truth=arena.truth, models=arena.models)


def report_seeds(seeds: Sequence[int], honest: int, bots_per_kind: int) -> None:
    """Each seed's arena judged in every setting, side by side, then the means."""
    if not seeds:
        return
    print()
    print("per seed, bots with >= 30 votes: precision / recall / honest flagged / error ratio")
    print(f"{'seed':<6}" + "".join(f"{name:>36}" for name, _, _ in SETTINGS))
    outcomes: dict[str, list[Outcome]] = {name: [] for name, _, _ in SETTINGS}
    for seed in seeds:
        arena = simulate(seed=seed, honest=honest, bots_per_kind=bots_per_kind)
        cells = []
        blind = without_lengths(arena)
        for name, config, lengths in SETTINGS:
            outcome = report_simulation(arena if lengths else blind, config, verbose=False)
            outcomes[name].append(outcome)
            cells.append(
                f"{outcome.precision:.3f} / {outcome.recall:.3f} / {outcome.honest_flagged}"
                f" / {outcome.error_ratio:.3f}"
            )
        print(f"{seed:<6}" + "".join(f"{cell:>36}" for cell in cells))
    for label, pick in (("mean", np.mean), ("worst", None)):
        cells = []
        for found in outcomes.values():
            if pick is None:
                values = (
                    min(o.precision for o in found),
                    min(o.recall for o in found),
                    max(o.honest_flagged for o in found),
                    max(o.error_ratio for o in found),
                )
            else:
                values = (
                    pick([o.precision for o in found]),
                    pick([o.recall for o in found]),
                    pick([o.honest_flagged for o in found]),
                    pick([o.error_ratio for o in found]),
                )
            cells.append(f"{values[0]:.3f} / {values[1]:.3f} / {values[2]:.1f} / {values[3]:.3f}")
        print(f"{label:<6}" + "".join(f"{cell:>36}" for cell in cells))
    print("targets: precision >= 0.95, recall >= 0.90, error ratio <= 1.10")
    print()
    print("mean recall per bot kind (>= 30 votes)")
    print(f"{'kind':<13}" + "".join(f"{name:>26}" for name, _, _ in SETTINGS))
    for bot_kind in BOT_KINDS:
        cells = [
            np.mean([o.recall_by_kind.get(bot_kind, np.nan) for o in found])
            for found in outcomes.values()
        ]
        print(f"{bot_kind:<13}" + "".join(f"{cell:>26.2f}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="the arena reported in detail")
    parser.add_argument("--seeds", type=int, default=10, help="arenas in the summary table")
    parser.add_argument("--honest", type=int, default=500)
    parser.add_argument("--bots-per-kind", type=int, default=12)
    args = parser.parse_args()
    started = time.perf_counter()
    arena = simulate(seed=args.seed, honest=args.honest, bots_per_kind=args.bots_per_kind)
    report_simulation(arena, FraudConfig(), verbose=True)
    report_seeds(range(args.seeds), args.honest, args.bots_per_kind)
    report_mtbench(MTBENCH_VOTES)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
