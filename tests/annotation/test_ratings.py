"""The pure rating engine: online Elo, Bradley-Terry fits, intervals, and arena-rank parity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotation import ratings
from annotation.ratings import BattleCounts, LengthBattleCounts
from tests.paths import MTBENCH_DIR

MTBENCH = MTBENCH_DIR


def synthetic_battles(
    strength: np.ndarray, votes: int, *, seed: int, tie_rate: float = 0.3
) -> list[dict[str, Any]]:
    """Battles from a Bradley-Terry model whose ties keep the expected score exact.

    For win probability p a vote is a tie with probability 2 t, t = tie_rate * min(p, 1 - p),
    a win with p - t: the expected score of model a is still p, so the strengths fitted with
    half-wins estimate ``strength`` without bias.
    """
    rng = np.random.default_rng(seed)
    n = strength.size
    a = rng.integers(0, n, votes)
    b = rng.integers(0, n - 1, votes)
    b += b >= a
    p = 1.0 / (1.0 + np.exp(-(strength[a] - strength[b])))
    tie = tie_rate * np.minimum(p, 1.0 - p)
    u = rng.random(votes)
    winner = np.select(
        [u < p - tie, u < p, u < p + tie],
        ["model_a", "tie", "tie (bothbad)"],
        default="model_b",
    )
    return [
        {"model_a": f"m{a[i]:02d}", "model_b": f"m{b[i]:02d}", "winner": str(winner[i])}
        for i in range(votes)
    ]


def by_model(board: ratings.Leaderboard) -> dict[str, dict[str, Any]]:
    return {row["model"]: row for row in board.rows}


# --------------------------------------------------------------------------- online Elo


def test_elo_expected_is_symmetric_and_half_for_equal_ratings() -> None:
    assert ratings.elo_expected(1000, 1000) == 0.5
    assert ratings.elo_expected(1400, 1000) == pytest.approx(10 / 11)
    assert ratings.elo_expected(1234, 1100) + ratings.elo_expected(1100, 1234) == pytest.approx(1)


def test_elo_update_follows_fastchat() -> None:
    # K = 4, equal ratings: the winner takes K / 2.
    assert ratings.elo_update(1000, 1000, 1.0) == (1002.0, 998.0)
    assert ratings.elo_update(1000, 1000, 0.5) == (1000.0, 1000.0)
    new_a, new_b = ratings.elo_update(1100, 1000, 0.0, k=32)
    expected_a = 1 / (1 + 10 ** (-100 / 400))
    assert new_a == pytest.approx(1100 - 32 * expected_a)
    assert new_a + new_b == pytest.approx(2100)


def test_compute_online_elo_replays_battles_in_order() -> None:
    battles = [
        {"model_a": "x", "model_b": "y", "winner": "model_a"},
        {"model_a": "y", "model_b": "z", "winner": "tie (bothbad)"},
        {"model_a": "z", "model_b": "x", "winner": "model_a"},
    ]
    x, y = ratings.elo_update(1000, 1000, 1.0)
    y, z = ratings.elo_update(y, 1000, 0.5)
    z, x = ratings.elo_update(z, x, 1.0)
    assert ratings.compute_online_elo(battles) == pytest.approx({"x": x, "y": y, "z": z})


def test_web_vote_path_names_stay_available() -> None:
    # annotation.services uses these names for incremental updates.
    assert ratings.ELO_INITIAL == 1000.0
    assert ratings.winner_score("tie (bothbad)") == 0.5


# --------------------------------------------------------------------------- vote counts


@pytest.mark.parametrize("winner", ["Model_A", "draw", "", "tie(bothbad)"])
def test_unknown_winner_raises(winner: str) -> None:
    battle = {"model_a": "x", "model_b": "y", "winner": winner}
    with pytest.raises(ValueError, match="unknown winner"):
        BattleCounts.from_battles([battle])
    with pytest.raises(ValueError, match="unknown winner"):
        BattleCounts.from_rows([("x", "y", winner, 3)])
    with pytest.raises(ValueError, match="unknown winner"):
        ratings.compute_online_elo([battle])


def test_rows_and_battles_give_the_same_counts() -> None:
    battles = synthetic_battles(np.array([0.5, 0.0, -0.5]), 500, seed=1)
    grouped = Counter((b["model_a"], b["model_b"], b["winner"]) for b in battles)
    from_rows = BattleCounts.from_rows((a, b, w, n) for (a, b, w), n in grouped.items())
    from_battles = BattleCounts.from_battles(battles)
    assert from_rows.models == from_battles.models == ["m00", "m01", "m02"]
    assert from_rows.total_votes == from_battles.total_votes == 500
    np.testing.assert_allclose(
        ratings.win_rate_matrix(from_rows), ratings.win_rate_matrix(from_battles)
    )


def test_battle_counts_rejects_inconsistent_cells() -> None:
    def cells(**overrides: Any) -> dict[str, Any]:
        base = {
            "models": ["x", "y"],
            "model_a": np.array([0]),
            "model_b": np.array([1]),
            "outcome": np.array([1.0]),
            "count": np.array([2]),
        }
        return base | overrides

    BattleCounts(**cells())
    with pytest.raises(ValueError, match="outcome"):
        BattleCounts(**cells(outcome=np.array([0.7])))
    with pytest.raises(ValueError, match="itself"):
        BattleCounts(**cells(model_b=np.array([0])))
    with pytest.raises(ValueError, match="out of range"):
        BattleCounts(**cells(model_b=np.array([2])))
    with pytest.raises(ValueError, match="same length"):
        BattleCounts(**cells(count=np.array([2, 3])))


def test_matrices_count_ties_as_half() -> None:
    counts = BattleCounts.from_rows(
        [("x", "y", "model_a", 3), ("y", "x", "model_a", 1), ("x", "y", "tie", 2)]
    )
    np.testing.assert_array_equal(ratings.battle_count_matrix(counts), [[0, 6], [6, 0]])
    win_rate = ratings.win_rate_matrix(counts)
    assert win_rate[0, 1] == pytest.approx(4 / 6)
    assert win_rate[1, 0] == pytest.approx(2 / 6)
    assert np.isnan(win_rate[0, 0])


# --------------------------------------------------------------------------- Bradley-Terry


def test_fit_recovers_known_strengths() -> None:
    truth = np.linspace(-1.0, 1.0, 6)
    counts = BattleCounts.from_battles(synthetic_battles(truth, 60_000, seed=2))
    strength = ratings.fit_bradley_terry(counts)
    assert strength.mean() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(strength, truth, atol=0.05)
    # The fitted model reproduces the observed score of each model (the likelihood equations).
    predicted = ratings.predicted_win_rates(strength) * ratings.battle_count_matrix(counts)
    observed = ratings.win_rate_matrix(counts) * ratings.battle_count_matrix(counts)
    np.testing.assert_allclose(predicted.sum(axis=1), np.nansum(observed, axis=1), rtol=1e-8)


def test_ratings_have_mean_1000_unless_anchored() -> None:
    counts = BattleCounts.from_battles(synthetic_battles(np.array([1.0, 0.0, -1.0]), 3000, seed=3))
    plain = ratings.leaderboard(counts, bootstrap_rounds=200)
    anchored = ratings.leaderboard(counts, bootstrap_rounds=200, anchor="m01", anchor_rating=1200)
    plain_rows, anchored_rows = by_model(plain), by_model(anchored)
    assert np.mean([row["rating"] for row in plain.rows]) == pytest.approx(1000)
    assert anchored_rows["m01"]["rating"] == pytest.approx(1200)
    shift = 1200 - plain_rows["m01"]["rating"]
    for model, row in plain_rows.items():
        assert anchored_rows[model]["rating"] == pytest.approx(row["rating"] + shift)
    # The anchor is pinned in every bootstrap round, so its own interval is a point.
    assert anchored_rows["m01"]["lower"] == pytest.approx(1200)
    assert anchored_rows["m01"]["upper"] == pytest.approx(1200)
    sandwich = by_model(ratings.leaderboard(counts, ci="sandwich", anchor="m01"))
    assert sandwich["m01"]["upper"] - sandwich["m01"]["lower"] == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="anchor model 'nobody'"):
        ratings.leaderboard(counts, anchor="nobody")


def test_rank_counts_models_clearly_better() -> None:
    lower = np.array([1100.0, 1090.0, 1000.0, 995.0, 900.0])
    upper = np.array([1120.0, 1125.0, 1095.0, 1010.0, 1001.0])
    # Model 2's upper bound 1095 is below the lower bound of model 0 only (1100 > 1095).
    np.testing.assert_array_equal(ratings.ranks_with_uncertainty(lower, upper), [1, 1, 2, 3, 3])


def test_leaderboard_rows_and_timings() -> None:
    counts = BattleCounts.from_rows(
        [
            ("x", "y", "model_a", 30),
            ("y", "x", "tie", 10),
            ("z", "x", "model_b", 25),
            ("y", "z", "model_a", 20),
            ("z", "y", "tie (bothbad)", 5),
            ("y", "z", "model_b", 9),
        ]
    )
    board = ratings.leaderboard(counts, bootstrap_rounds=100)
    assert [row["model"] for row in board.rows] == ["x", "y", "z"]
    x = board.rows[0]
    assert set(x) == {
        "model",
        "rating",
        "lower",
        "upper",
        "rank",
        "votes",
        "wins",
        "ties",
        "win_rate",
        "group",
        "provisional",
    }
    assert (x["votes"], x["wins"], x["ties"], x["win_rate"]) == (65, 55, 10, 60 / 65)
    assert x["lower"] < x["rating"] < x["upper"]
    assert x["rank"] == 1
    assert {"prepare", "fit", "ci", "rank", "total"} <= set(board.timings)
    with pytest.raises(ValueError, match="unknown ci method"):
        ratings.leaderboard(counts, ci="jackknife")  # type: ignore[arg-type]


def test_ridge_keeps_an_unbeaten_model_finite() -> None:
    counts = BattleCounts.from_rows(
        [("x", "y", "model_a", 5), ("y", "z", "model_a", 40), ("z", "y", "model_a", 20)]
    )
    strength = ratings.fit_bradley_terry(counts, ridge=1.0)
    assert np.isfinite(strength).all()
    assert strength[0] > strength[1] > strength[2]


def test_bootstrap_depends_on_the_seed_only() -> None:
    counts = BattleCounts.from_battles(synthetic_battles(np.linspace(-1, 1, 5), 4000, seed=4))
    one = ratings.bootstrap_strengths(counts, rounds=150, seed=7, workers=1)
    two = ratings.bootstrap_strengths(counts, rounds=150, seed=7, workers=2)
    other = ratings.bootstrap_strengths(counts, rounds=150, seed=8, workers=2)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, other)
    np.testing.assert_allclose(one.mean(axis=1), 0.0, atol=1e-12)


def test_resampling_is_multinomial_with_the_total_fixed() -> None:
    count = np.array([7, 0, 1, 40, 3, 15, 2])
    rng = np.random.default_rng(11)
    sample = np.concatenate([ratings._resample_cells(rng, count, 500) for _ in range(100)])
    total, p = count.sum(), count / count.sum()
    assert (sample.sum(axis=1) == total).all()
    assert (sample[:, 1] == 0).all()
    np.testing.assert_allclose(sample.mean(axis=0), total * p, atol=0.05)
    covariance = np.cov(sample, rowvar=False)
    expected = total * (np.diag(p) - np.outer(p, p))
    np.testing.assert_allclose(covariance, expected, atol=0.15)


def test_bootstrap_interval_covers_true_strength_about_95_percent() -> None:
    truth = np.linspace(-1.2, 1.2, 12)
    covered = []
    for seed in range(5):
        counts = BattleCounts.from_battles(synthetic_battles(truth, 8000, seed=seed))
        board = ratings.leaderboard(counts, bootstrap_rounds=400, seed=seed)
        true_rating = ratings.to_ratings(truth - truth.mean())
        for row in board.rows:
            model = int(row["model"][1:])
            covered.append(row["lower"] <= true_rating[model] <= row["upper"])
    assert 0.85 <= np.mean(covered) <= 1.0


def test_sandwich_and_bootstrap_intervals_roughly_agree() -> None:
    counts = BattleCounts.from_battles(synthetic_battles(np.linspace(-1, 1, 8), 20_000, seed=5))
    boot = by_model(ratings.leaderboard(counts, bootstrap_rounds=1000))
    sandwich = by_model(ratings.leaderboard(counts, ci="sandwich"))
    for model, row in boot.items():
        boot_width = row["upper"] - row["lower"]
        sandwich_width = sandwich[model]["upper"] - sandwich[model]["lower"]
        assert 0.8 < boot_width / sandwich_width < 1.25
        assert sandwich[model]["rating"] == row["rating"]


def test_category_leaderboards_fit_each_category_alone() -> None:
    coding = BattleCounts.from_battles(synthetic_battles(np.array([1.0, 0.0, -1.0]), 900, seed=6))
    writing = BattleCounts.from_battles(synthetic_battles(np.array([-1.0, 0.0, 1.0]), 900, seed=7))
    boards = ratings.category_leaderboards(
        {"coding": coding, "writing": writing}, bootstrap_rounds=100
    )
    assert [row["model"] for row in boards["coding"].rows] == ["m00", "m01", "m02"]
    assert [row["model"] for row in boards["writing"].rows] == ["m02", "m01", "m00"]


def test_empty_counts_give_an_empty_leaderboard() -> None:
    board = ratings.leaderboard(BattleCounts.from_rows([]))
    assert board.rows == []


# --------------------------------------------------------------------------- real data


def test_mtbench_human_votes_rank_the_models_as_published() -> None:
    # Fail rather than skip: CI ships this data next to the repository.
    votes = MTBENCH / "votes_human.jsonl"
    assert votes.exists(), f"missing MT-Bench data at {votes}"
    with votes.open() as lines:
        battles = [json.loads(line) for line in lines]
    board = ratings.leaderboard(BattleCounts.from_battles(battles), bootstrap_rounds=500)
    assert [row["model"] for row in board.rows] == [
        "gpt-4",
        "claude-v1",
        "gpt-3.5-turbo",
        "vicuna-13b-v1.2",
        "alpaca-13b",
        "llama-13b",
    ]
    assert sum(row["votes"] for row in board.rows) == 2 * len(battles)


# --------------------------------------------------------------------------- length control


def test_length_diff_bin() -> None:
    assert ratings.length_diff_bin(300, 100) == 10  # (300 - 100) / 400 = 0.5
    assert ratings.length_diff_bin(100, 300) == -10
    assert ratings.length_diff_bin(0, 0) == 0
    assert ratings.length_diff_bin(50, 0) == 20
    assert ratings.length_diff_bin(101, 100, bins_per_unit=100) == 0


def test_length_control_separates_length_from_strength() -> None:
    rng = np.random.default_rng(8)
    truth = np.array([0.6, 0.2, -0.2, -0.6])
    verbosity = np.array([-0.6, 0.6, -0.2, 0.2])  # the weaker m01 writes the longest answers
    beta, votes = 1.5, 40_000
    a = rng.integers(0, 4, votes)
    b = rng.integers(0, 3, votes)
    b += b >= a
    length_a = np.exp(rng.normal(6 + verbosity[a], 0.3))
    length_b = np.exp(rng.normal(6 + verbosity[b], 0.3))
    x = (length_a - length_b) / (length_a + length_b)
    a_wins = rng.random(votes) < 1 / (1 + np.exp(-(truth[a] - truth[b] + beta * x)))
    battles = [
        {
            "model_a": f"m{a[i]:02d}",
            "model_b": f"m{b[i]:02d}",
            "winner": "model_a" if a_wins[i] else "model_b",
            "length_a": length_a[i],
            "length_b": length_b[i],
        }
        for i in range(votes)
    ]
    counts = LengthBattleCounts.from_battles(battles)
    controlled = ratings.length_controlled_leaderboard(counts)
    plain = ratings.leaderboard(counts.cells, ci="sandwich")
    assert controlled.length_coefficient == pytest.approx(beta * ratings.RATING_PER_LOGIT, rel=0.1)
    np.testing.assert_allclose(controlled.strength, truth, atol=0.05)
    # Without the covariate the verbose model looks better than it is.
    assert plain.strength[1] - truth[1] > 0.1
    boot = by_model(
        ratings.length_controlled_leaderboard(counts, ci="bootstrap", bootstrap_rounds=300)
    )
    for model, row in by_model(controlled).items():
        width = row["upper"] - row["lower"]
        assert abs(boot[model]["lower"] - row["lower"]) < 0.2 * width
        assert abs(boot[model]["upper"] - row["upper"]) < 0.2 * width


def test_length_counts_accept_fastchat_metadata_and_rows() -> None:
    battle = {
        "model_a": "x",
        "model_b": "y",
        "winner": "tie",
        "conv_metadata": {"sum_assistant_a_tokens": 300, "sum_assistant_b_tokens": 100},
    }
    from_battles = LengthBattleCounts.from_battles([battle, battle])
    from_rows = LengthBattleCounts.from_rows([("x", "y", "tie", 10, 2)])
    for counts in (from_battles, from_rows):
        assert counts.length_bin.tolist() == [10]
        assert counts.cells.count.tolist() == [2]
    with pytest.raises(ValueError, match="length_bin"):
        LengthBattleCounts.from_rows([("x", "y", "tie", 21, 1)])


# --------------------------------------------------------------------------- arena-rank parity

# Runs in a fresh interpreter: JAX is multithreaded and arena-rank's bootstrap starts a process
# pool, which hangs with Linux's default fork; spawn is set before arena-rank runs. arena-rank
# recompiles and refits each bootstrap round in a worker (seconds per round), so the 1000-round
# reference uses its own loss and L-BFGS optimiser, vmapped over its own multinomial count
# samples; a few rounds through arena-rank's real pool check that this replica is exact.
ARENA_RANK_SCRIPT = r"""
import json, multiprocessing, sys
from functools import partial

multiprocessing.set_start_method("spawn", force=True)
import jax, jax.numpy as jnp, numpy as np, pandas as pd
from arena_rank.models.bradley_terry import BradleyTerry
from arena_rank.utils.data_utils import PairDataset
from arena_rank.utils.math_utils import lbfgs_minimize

job = json.load(open(sys.argv[1]))
repeat = [row[3] for row in job["rows"]]
frame = pd.DataFrame({
    column: np.repeat([row[i] for row in job["rows"]], repeat)
    for i, column in enumerate(["model_a", "model_b", "winner"])
})
dataset = PairDataset.from_pandas(frame)
model = BradleyTerry(n_competitors=len(dataset.competitors))
fit = model.compute_ratings_and_cis(dataset, ci_method="sandwich")

def count_samples(rounds):
    total = jnp.sum(dataset.counts)
    return jax.random.multinomial(
        jax.random.PRNGKey(job["seed"]), n=int(total), p=dataset.counts / total,
        shape=(rounds, dataset.counts.shape[0]), dtype=model.dtype)

def fit_round(counts):
    data = {"pairs": dataset.pairs, "outcomes": dataset.outcomes,
            "opt_weights": counts * dataset.weights}
    start = {"ratings": jnp.zeros(model.n_competitors, dtype=model.dtype)}
    params, _ = lbfgs_minimize(partial(BradleyTerry.loss_function, data=data), start,
                               max_iter=model.max_iter, gtol=model.gtol, ftol=model.ftol)
    return params["ratings"] * model.alpha + model.init_rating

fit_rounds = jax.jit(jax.vmap(fit_round))

def bounds(samples):
    return [np.quantile(samples, q, axis=0).tolist() for q in (0.025, 0.975)]

def interval(result):
    return [np.asarray(result[key]).tolist() for key in ("rating_lower", "rating_upper")]

real = BradleyTerry(n_competitors=len(dataset.competitors)).compute_ratings_and_cis(
    dataset, ci_method="bootstrap", num_bootstrap=job["check_rounds"], seed=job["seed"], n_jobs=1)
json.dump({
    "models": list(dataset.competitors),
    "rating": np.asarray(fit["ratings"]).tolist(),
    "sandwich": interval(fit),
    "bootstrap": bounds(np.asarray(fit_rounds(count_samples(job["rounds"])))),
    "check_real": interval(real),
    "check_replica": bounds(np.asarray(fit_rounds(count_samples(job["check_rounds"])))),
}, open(sys.argv[2], "w"))
"""


def run_arena_rank(counts_rows: list[tuple[str, str, str, int]], tmp_path: Path) -> dict[str, Any]:
    job, result = tmp_path / "job.json", tmp_path / "result.json"
    job.write_text(json.dumps({"rows": counts_rows, "rounds": 1000, "seed": 0, "check_rounds": 2}))
    subprocess.run(
        [sys.executable, "-c", ARENA_RANK_SCRIPT, str(job), str(result)],
        check=True,
        timeout=180,
        env=os.environ | {"JAX_PLATFORMS": "cpu"},
        capture_output=True,
    )
    return json.loads(result.read_text())


@pytest.mark.slow
def test_matches_arena_rank(tmp_path: Path) -> None:
    battles = synthetic_battles(np.linspace(-1.0, 1.0, 10), 20_000, seed=9)
    grouped = Counter((b["model_a"], b["model_b"], b["winner"]) for b in battles)
    rows = [(a, b, winner, n) for (a, b, winner), n in grouped.items()]
    arena = run_arena_rank(rows, tmp_path)
    np.testing.assert_allclose(arena["check_replica"], arena["check_real"], atol=1e-6)

    counts = BattleCounts.from_rows(rows)
    assert counts.models == arena["models"]
    bootstrap = ratings.leaderboard(counts, bootstrap_rounds=1000, seed=0)
    sandwich = ratings.leaderboard(counts, ci="sandwich")
    ours_boot, ours_sandwich = by_model(bootstrap), by_model(sandwich)
    for i, model in enumerate(arena["models"]):
        assert ours_boot[model]["rating"] == pytest.approx(arena["rating"][i], abs=0.5)
        assert ours_sandwich[model]["lower"] == pytest.approx(arena["sandwich"][0][i], abs=0.05)
        assert ours_sandwich[model]["upper"] == pytest.approx(arena["sandwich"][1][i], abs=0.05)
        lower, upper = arena["bootstrap"][0][i], arena["bootstrap"][1][i]
        assert abs(ours_boot[model]["lower"] - lower) <= 0.1 * (upper - lower)
        assert abs(ours_boot[model]["upper"] - upper) <= 0.1 * (upper - lower)


def test_a_model_with_one_lucky_vote_is_provisional_and_ranked_after_the_others() -> None:
    """One winning vote used to top the board, its interval (under the ridge's prior) above
    a model with 200 votes, whose rank it pushed down."""
    counts = BattleCounts.from_rows(
        [
            ("gpt-4", "claude", "model_a", 150),
            ("claude", "gpt-4", "model_a", 50),
            ("newcomer", "claude", "model_a", 1),
        ]
    )
    board = ratings.leaderboard(counts, ci="sandwich", ridge=0.1)
    listed = [(r["model"], r["rank"], r["provisional"]) for r in board.rows]
    assert listed == [("gpt-4", 1, False), ("claude", 2, False), ("newcomer", 3, True)]
    by_model = {row["model"]: row for row in board.rows}
    assert by_model["newcomer"]["rating"] > by_model["gpt-4"]["rating"]  # rated, not ranked

    unranked = ratings.leaderboard(counts, ci="sandwich", ridge=0.1, min_votes=0)
    assert unranked.rows[0]["model"] == "newcomer"  # what the board showed before


@pytest.mark.parametrize("ci", ["sandwich", "bootstrap"])
def test_the_mean_rating_of_1000_is_over_the_models_that_are_not_provisional(ci: str) -> None:
    """A provisional model's far-off rating used to pull every other rating down."""
    established = [("gpt-4", "claude", "model_a", 150), ("claude", "gpt-4", "model_a", 50)]
    alone = ratings.leaderboard(BattleCounts.from_rows(established), ci=ci, ridge=0.1)
    counts = BattleCounts.from_rows([*established, ("newcomer", "claude", "model_a", 1)])

    board = ratings.leaderboard(counts, ci=ci, ridge=0.1, bootstrap_rounds=200)

    by_model = {row["model"]: row for row in board.rows}
    assert by_model["gpt-4"]["rating"] + by_model["claude"]["rating"] == pytest.approx(2000)
    before = {row["model"]: row for row in alone.rows}
    for model in ("gpt-4", "claude"):  # the newcomer moves neither rating nor interval much
        assert by_model[model]["rating"] == pytest.approx(before[model]["rating"], abs=1.0)
        width = by_model[model]["upper"] - by_model[model]["lower"]
        assert width == pytest.approx(before[model]["upper"] - before[model]["lower"], rel=0.15)
    plain = ratings.leaderboard(counts, ci=ci, ridge=0.1, bootstrap_rounds=200, min_votes=0)
    assert np.mean([row["rating"] for row in plain.rows]) == pytest.approx(1000)


def test_models_never_compared_are_told_apart_and_ranked_within_their_groups() -> None:
    """alpaca, compared only with llama, was ranked 1st above gpt-4 with a 'significant'
    interval although the two groups' offset is only the fit's convention."""
    counts = BattleCounts.from_rows(
        [
            ("gpt-4", "claude", "model_a", 30),
            ("claude", "gpt-4", "model_a", 10),
            ("claude", "vicuna", "model_a", 30),
            ("alpaca", "llama", "model_a", 40),
            ("llama", "alpaca", "model_a", 10),
        ]
    )
    board = ratings.leaderboard(counts, bootstrap_rounds=100, ridge=0.1)
    by_model = {row["model"]: row for row in board.rows}
    group = {m: r["group"] for m, r in by_model.items()}
    assert group["gpt-4"] == group["claude"] == group["vicuna"] != group["alpaca"]
    assert group["alpaca"] == group["llama"] and set(group.values()) == {1, 2}
    assert board.rows[0]["group"] == 1  # numbered from the top of the board
    assert by_model["alpaca"]["rank"] == 1 and by_model["llama"]["rank"] == 2  # among themselves
    assert by_model["gpt-4"]["rank"] == 1
