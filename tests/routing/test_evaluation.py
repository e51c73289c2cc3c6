from __future__ import annotations

import json
import random
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from routing.allocation import allocate
from routing.disagreement import ColdStartRule
from routing.evaluation import (
    PairsFileError,
    auroc,
    cross_fit,
    evaluate_routing,
    group_folds,
    human_majority,
    judge_wrong,
    labelled_pairs_from_lines,
    load_labelled_pairs,
    routing_outcome,
)
from routing.features import FeatureConfig, PairFeatures, build_features
from tests.paths import MTBENCH_DIR

PAIRS_FILE = MTBENCH_DIR / "pairs_human_vs_gpt4.jsonl"
# A second public dataset in the same schema (another judge, other models and prompts).
PANDALM_FILE = Path(__file__).resolve().parents[2] / "benchmarks/data/pandalm_subset/pairs.jsonl"
needs_pairs = pytest.mark.skipif(not PAIRS_FILE.is_file(), reason=f"no {PAIRS_FILE}")


def _record(i: int, label: str | None, votes: list[str], question: int | None = None) -> str:
    return json.dumps(
        {
            "id": f"r{i}",
            "prompt": f"prompt {i % 7}",
            "response_a": "a " * (i % 5 + 1),
            "response_b": "b " * (i % 3 + 1),
            "human_votes": [{"judge": f"h{j}", "winner": w} for j, w in enumerate(votes)],
            "llm_label": label,
            "question_id": question if question is not None else i,
        }
    )


@pytest.mark.parametrize(
    ("votes", "majority"),
    [
        (["model_a"], ("model_a", False)),
        (["model_a", "model_a", "tie"], ("model_a", False)),
        (["model_a", "model_b"], (None, True)),
        (["tie", "model_b"], (None, True)),
        ([], (None, False)),
    ],
)
def test_human_majority(votes: list[str], majority: tuple[str | None, bool]) -> None:
    assert human_majority({"winner": w} for w in votes) == majority


def test_splits_count_as_tie_or_are_skipped_and_no_votes_are_skipped() -> None:
    lines = [
        _record(0, "model_a", ["model_a", "model_b"]),
        _record(1, "tie (inconsistent)", ["tie"]),
        _record(2, None, ["model_b"]),
        _record(3, "model_a", []),
        "",
    ]
    loaded = labelled_pairs_from_lines(lines)
    assert (loaded.records, loaded.skipped_no_votes, loaded.splits) == (4, 1, 1)
    assert [lp.truth for lp in loaded.pairs] == ["tie", "tie", "model_b"]
    # The judge's inconsistent tie counts as a tie; a missing label is wrong.
    assert judge_wrong(loaded.pairs).tolist() == [1.0, 0.0, 1.0]
    skipped = labelled_pairs_from_lines(lines, split_rule="skip")
    assert skipped.skipped_splits == 1
    assert [lp.pair.id for lp in skipped.pairs] == ["r1", "r2"]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "line 2"),
        ("[" * 100_000, "line 2: nested too deeply"),
        ('["a list"]', "line 2: not a JSON object"),
        (_record(9, "model_z", ["model_a"]), "line 2: field 'llm_label'"),
        (_record(9, "tie", ["model_c"]), "line 2: human_votes"),
    ],
)
def test_malformed_lines_are_reported_by_number(bad_line: str, message: str) -> None:
    with pytest.raises(PairsFileError, match=message):
        labelled_pairs_from_lines([_record(0, "tie", ["tie"]), bad_line])


class _MemorisingFitter:
    """Remembers every id it was trained on and refuses to score any of them."""

    def __init__(self) -> None:
        self.scored: list[str] = []

    def __call__(
        self, features: PairFeatures, y: np.ndarray, human_tie: np.ndarray | None = None
    ) -> _MemorisingFitter.Scorer:
        return self.Scorer(set(features.ids), self.scored)

    class Scorer:
        def __init__(self, trained_on: set[str], scored: list[str]) -> None:
            self.trained_on, self.scored = trained_on, scored

        def predict_proba(self, features: PairFeatures) -> np.ndarray:
            leaked = self.trained_on & set(features.ids)
            assert not leaked, f"scored pairs it was trained on: {sorted(leaked)[:3]}"
            self.scored.extend(features.ids)
            return np.full(len(features), 0.5)


def test_cross_fitting_never_scores_a_pair_with_a_model_trained_on_it() -> None:
    lines = [_record(i, "model_a", ["model_b"], question=i // 3) for i in range(60)]
    labelled = labelled_pairs_from_lines(lines).pairs
    features = build_features([lp.pair for lp in labelled])
    fitter = _MemorisingFitter()
    fold_of = group_folds([lp.group for lp in labelled], 5, seed=0)
    cross_fit(features, judge_wrong(labelled), fold_of, fitter)
    assert sorted(fitter.scored) == sorted(features.ids)  # every pair once
    # And through the whole evaluation.
    evaluate_routing(labelled, budgets=[0.5], folds=4, fitter=_MemorisingFitter())


def test_the_router_as_it_runs_is_averaged_over_audit_draws() -> None:
    """Each draw of the random audit catches other errors: the figure is their mean."""
    winners = ["model_a", "model_b", "tie"]
    lines = [_record(i, winners[i % 3], [winners[i % 2]], question=i // 3) for i in range(90)]
    labelled = labelled_pairs_from_lines(lines).pairs
    wrong = judge_wrong(labelled)

    def flat(x: PairFeatures, y: np.ndarray, tie: np.ndarray | None) -> _Flat:
        return _Flat()

    def router(draws: int) -> dict:
        report = evaluate_routing(
            labelled, budgets=[0.3], folds=3, audit_fraction=0.2, audit_draws=draws, fitter=flat
        )
        return report["budgets"][0]["router"]

    singles = [
        routing_outcome(
            allocate(np.full(90, 0.5), budget=0.3, audit_fraction=0.2, seed=7919 * j).to_human,
            wrong,
        )
        for j in range(3)
    ]
    assert router(1)["error_capture"] == pytest.approx(singles[0]["error_capture"], abs=1e-4)
    mean = np.mean([o["error_capture"] for o in singles])
    assert router(3)["error_capture"] == pytest.approx(mean, abs=1e-4)
    assert len({o["error_capture"] for o in singles}) > 1  # the draws did differ
    with pytest.raises(ValueError, match="audit_draws must be at least 1"):
        router(0)


class _Flat:
    """The same P(disagree) for every pair: routing is all audit draw and tie-breaks."""

    def predict_proba(self, features: PairFeatures) -> np.ndarray:
        return np.full(len(features), 0.5)


def test_folds_keep_a_question_together() -> None:
    groups = [i // 4 for i in range(100)]
    fold_of = group_folds(groups, 5, seed=2)
    for g in set(groups):
        assert len({fold_of[i] for i in range(100) if groups[i] == g}) == 1
    assert sorted(np.bincount(fold_of)) == [20] * 5
    with pytest.raises(ValueError, match="folds"):
        group_folds(groups, 26, seed=0)


def test_auroc_and_routing_outcome() -> None:
    y = np.array([0, 0, 1, 1])
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert auroc(np.array([0.5, 0.5, 0.5, 0.5]), y) == 0.5
    assert auroc(np.array([0.1, 0.2]), np.array([1, 1])) is None
    outcome = routing_outcome(np.array([True, False, True, False]), y)
    assert outcome == {"accuracy": 0.75, "error_capture": 0.5}


def test_baselines_in_a_synthetic_run() -> None:
    # Inconsistent verdicts are always wrong and decisive ones always right: the judge
    # confidence baseline captures every error, random routing about its budget's share.
    lines = []
    for i in range(400):
        inconsistent = i % 4 == 0
        label = "tie (inconsistent)" if inconsistent else "model_a"
        lines.append(_record(i, label, ["model_b" if inconsistent else "model_a"]))
    labelled = labelled_pairs_from_lines(lines).pairs
    report = evaluate_routing(
        labelled, budgets=[0.0, 0.25, 1.0], folds=5, random_seeds=50, audit_tilt=0.0
    )
    zero, quarter, full = report["budgets"]
    assert zero["router"]["accuracy"] == zero["random"]["accuracy"] == 0.75
    assert quarter["judge_confidence"]["error_capture"] == 1.0
    assert quarter["random"]["error_capture"] == pytest.approx(0.25, abs=0.03)
    assert quarter["error_capture_ratio_vs_random"]["judge_confidence"] == pytest.approx(
        4.0, rel=0.15
    )
    # The learnt router finds the same signal; 5% of pairs go to the random audit instead,
    # which catches a quarter of its pairs' errors on top of the 80 chosen ones.
    assert 0.8 <= quarter["router"]["error_capture"] <= 0.9
    assert quarter["audit_pairs"] == 20
    assert full["router"]["accuracy"] == 1.0
    assert report["disagreement_model"]["auroc"] == 1.0
    # An audit leaning on risk draws most of its 20 pairs among the inconsistent verdicts
    # (chance 0.155 each against 0.015 at the default tilt), so it catches errors too.
    tilted = evaluate_routing(labelled, budgets=[0.25], folds=5, random_seeds=50)
    assert tilted["audit_tilt"] == 0.7 and tilted["budgets"][0]["audit_pairs"] == 20
    assert tilted["budgets"][0]["router"]["error_capture"] >= 0.93


def test_cold_start_when_the_training_folds_are_small() -> None:
    lines = [_record(i, "model_a", ["model_a" if i % 2 else "tie"]) for i in range(40)]
    report = evaluate_routing(labelled_pairs_from_lines(lines).pairs, budgets=[0.5], folds=2)
    assert report["disagreement_model"]["cold_start_folds"] == 2
    assert isinstance(ColdStartRule(), ColdStartRule)


@needs_pairs
def test_router_eval_command_on_a_sample(tmp_path: Path) -> None:
    lines = PAIRS_FILE.read_text(encoding="utf-8").splitlines()
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(random.Random(0).sample(lines, 300)) + "\n", encoding="utf-8")
    out = StringIO()
    call_command(
        "router_eval",
        pairs=str(sample),
        budgets="0,0.1,0.25,0.5,1",
        folds=3,
        seed=0,
        format="json",
        stdout=out,
    )
    report = json.loads(out.getvalue())
    assert report["records"] == report["pairs"] == 300
    assert report["skipped_no_human_votes"] == 0
    assert [row["budget"] for row in report["budgets"]] == [0, 0.1, 0.25, 0.5, 1]
    model = report["disagreement_model"]
    assert 0 <= model["auroc"] <= 1
    assert 0 <= model["auroc_judge_confidence"] <= 1
    for row in report["budgets"]:
        assert row["human_labels"] == round(row["budget"] * 300)
        for routing in ("router", "router_without_audit", "judge_confidence", "random"):
            assert set(row[routing]) == {"accuracy", "error_capture"}
            assert all(0 <= v <= 1 for v in row[routing].values())
    assert report["budgets"][-1]["router"]["accuracy"] == 1.0
    # The audit alone estimates the judge's error rate over every pair (weighted).
    assert report["audit_tilt"] == 0.7
    assert 0 < report["budgets"][2]["judge_error_rate_from_audit"] < 1
    table = StringIO()
    call_command("router_eval", pairs=str(sample), folds=3, format="table", stdout=table)
    assert "AUROC" in table.getvalue()
    assert "audit stream: 5% of the pairs, tilt 0.7" in table.getvalue()


def _arena_records(prompts: int, flip_share: float, seed: int = 0) -> list[str]:
    """Four models of fixed strength meet on every prompt; people always prefer the stronger
    one; the judge does too, except on a random `flip_share` of pairs."""
    rng = random.Random(seed)
    models = ["m0", "m1", "m2", "m3"]  # strongest first
    lines = []
    for q in range(prompts):
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                first, second = (a, b) if rng.random() < 0.5 else (b, a)
                truth = "model_a" if models.index(first) < models.index(second) else "model_b"
                flipped = {"model_a": "model_b", "model_b": "model_a"}[truth]
                label = flipped if rng.random() < flip_share else truth
                record = json.loads(_record(len(lines), label, [truth], question=q))
                record.update(model_a=first, model_b=second, prompt=f"prompt {q}")
                lines.append(json.dumps(record))
    return lines


def test_a_verdict_against_the_judges_other_verdicts_is_routed_to_humans() -> None:
    # Every verdict looks alike but for how it fits the judge's other verdicts: the
    # consensus features find the flipped ones, the text and verdict features cannot.
    labelled = labelled_pairs_from_lines(_arena_records(80, 0.15)).pairs
    with_consensus = evaluate_routing(labelled, budgets=[0.25], audit_fraction=0.0)
    without = evaluate_routing(
        labelled, budgets=[0.25], audit_fraction=0.0, config=FeatureConfig(consensus=False)
    )
    assert with_consensus["disagreement_model"]["auroc"] > 0.85
    assert without["disagreement_model"]["auroc"] < 0.65
    ratio = with_consensus["budgets"][0]["error_capture_ratio_vs_random"]
    assert ratio["router"] == ratio["router_without_audit"]  # no audit asked for
    assert ratio["router"] > 2.5
    assert with_consensus["features"] == without["features"] + 17


def test_router_eval_repeats_over_seeds_and_ablates_the_consensus(tmp_path: Path) -> None:
    pairs = tmp_path / "arena.jsonl"
    pairs.write_text("\n".join(_arena_records(40, 0.15)) + "\n", encoding="utf-8")
    reports = {}
    for consensus in (True, False):
        out = StringIO()
        call_command(
            "router_eval", pairs=str(pairs), budgets="0.25", repeat=3, folds=4,
            no_consensus=not consensus, stdout=out,
        )  # fmt: skip
        reports[consensus] = json.loads(out.getvalue())
    summary = reports[True]["over_seeds"][0]
    assert summary["seeds"] == 3
    ratios = summary["router_without_audit_ratio"]
    assert ratios["min"] <= ratios["mean"] <= ratios["max"]
    assert reports[False]["consensus_features"] is False
    aurocs = reports[True]["auroc_over_seeds"]
    assert aurocs["min"] <= aurocs["mean"] <= aurocs["max"]
    assert summary["router_ratio"]["mean"] > reports[False]["over_seeds"][0]["router_ratio"]["mean"]
    table = StringIO()
    call_command("router_eval", pairs=str(pairs), repeat=2, folds=4, format="table", stdout=table)
    assert "over 2 seeds" in table.getvalue()
    with pytest.raises(CommandError, match="--repeat"):
        call_command("router_eval", pairs=str(pairs), repeat=0, stdout=StringIO())


@needs_pairs
@pytest.mark.parametrize("path", [PAIRS_FILE, PANDALM_FILE], ids=["mtbench", "pandalm"])
def test_the_judges_other_verdicts_help_on_two_public_datasets(path: Path) -> None:
    # Not tuned to one dataset: on GPT-4 over MT-Bench and GPT-3.5 over PandaLM alike, the
    # consensus features raise the disagreement model's AUROC, and the router's ranking
    # beats routing by the judge's confidence. Averaged over three fold splits: on the 262
    # PandaLM pairs one split alone moves the ranking's ratio by 0.3 or more.
    labelled = load_labelled_pairs(path).pairs
    with_consensus, without, ranking, confidence = [], [], [], []
    for seed in range(3):
        report = evaluate_routing(labelled, budgets=[0.25], seed=seed)
        with_consensus.append(report["disagreement_model"]["auroc"])
        ablated = evaluate_routing(
            labelled, budgets=[0.25], seed=seed, config=FeatureConfig(consensus=False)
        )
        without.append(ablated["disagreement_model"]["auroc"])
        ratio = report["budgets"][0]["error_capture_ratio_vs_random"]
        ranking.append(ratio["router_without_audit"])
        confidence.append(ratio["judge_confidence"])
    assert np.mean(with_consensus) > np.mean(without) + 0.03
    assert np.mean(ranking) > max(np.mean(confidence), 1.55)


@needs_pairs
def test_the_judge_contradicting_itself_across_turns_is_often_wrong_on_mtbench() -> None:
    # The conversation signal on real data: MT-Bench's GPT-4 verdicts on the same two models
    # at the other turn. Where a decisive verdict goes against it, or it was a tie, people
    # disagree with the judge far more often than on the average pair.
    loaded = load_labelled_pairs(PAIRS_FILE)
    features = build_features([lp.pair for lp in loaded.pairs], context=loaded.context)
    wrong = judge_wrong(loaded.pairs)
    assert features.column("conversation_known").mean() > 0.99
    against = features.column("conversation_agree") < 0
    after_tie = features.column("decisive_conversation_ties") > 0
    assert against.sum() > 100 and after_tie.sum() > 100
    assert wrong.mean() < 0.36
    assert wrong[against].mean() > 0.5 and wrong[after_tie].mean() > 0.5
    assert wrong[features.column("conversation_agree") > 0].mean() < 0.26


@needs_pairs
@pytest.mark.parametrize(
    ("path", "risky_end"), [(PAIRS_FILE, 1), (PANDALM_FILE, -1)], ids=["mtbench", "pandalm"]
)
def test_a_decisive_verdict_at_one_end_of_the_prompts_standing_is_often_wrong(
    path: Path, risky_end: int
) -> None:
    # The prompt-standing signal on real data, and why its direction is learned per arena:
    # on MT-Bench people call the prompt's two best answers a tie where GPT-4 picked one; on
    # the PandaLM pairs GPT-3.5 errs between the two worst. At the other end it errs less
    # than on the average pair.
    loaded = load_labelled_pairs(path)
    features = build_features([lp.pair for lp in loaded.pairs], context=loaded.context)
    wrong = judge_wrong(loaded.pairs)
    decisive = features.column("decisive_prompt_standing") * risky_end
    risky, safe = decisive >= 0.5, decisive <= -0.5
    assert risky.sum() > 50 and safe.sum() > 50
    assert wrong[risky].mean() > wrong.mean() + 0.08
    assert wrong[safe].mean() < wrong.mean() - 0.08


def test_router_eval_names_the_malformed_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_record(0, "tie", ["tie"]) + "\n\n{oops\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"bad.jsonl: line 3"):
        call_command("router_eval", pairs=str(bad), stdout=StringIO())


@pytest.mark.parametrize(
    ("budgets", "message"), [("0,abc", "'abc' is not a number"), ("0.5,1.5", "1.5"), ("-1", "-1")]
)
def test_router_eval_refuses_bad_budgets(tmp_path: Path, budgets: str, message: str) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(_record(0, "tie", ["tie"]) + "\n", encoding="utf-8")
    with pytest.raises(CommandError, match=message):
        call_command("router_eval", pairs=str(good), budgets=budgets, stdout=StringIO())


def test_router_eval_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        call_command("router_eval", pairs=str(tmp_path / "none.jsonl"), stdout=StringIO())


@needs_pairs
def test_the_shared_pairs_file_loads() -> None:
    loaded = load_labelled_pairs(PAIRS_FILE)
    assert loaded.records == len(loaded.pairs) + loaded.skipped_no_votes


@pytest.mark.parametrize("option", ["audit_fraction", "audit_tilt"])
def test_router_eval_refuses_an_audit_setting_outside_zero_to_one(
    tmp_path: Path, option: str
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(_record(0, "tie", ["tie"]) + "\n", encoding="utf-8")
    with pytest.raises(CommandError, match=f"--{option.replace('_', '-')} must lie in"):
        call_command("router_eval", pairs=str(good), stdout=StringIO(), **{option: 1.2})
