from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit

from routing.disagreement import (
    BlendedModel,
    ColdStartRule,
    DisagreementModel,
    fit_disagreement_model,
    fit_logistic,
    model_from_params,
)
from routing.features import PairFeatures, RoutingPair, build_features


def _synthetic(n: int, seed: int = 0) -> tuple[PairFeatures, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * np.array([1.0, 5.0, 0.01]) + np.array([0.0, 10.0, 3.0])
    p = expit(-0.5 + 1.2 * x[:, 0] - 0.2 * (x[:, 1] - 10.0))
    y = (rng.random(n) < p).astype(float)
    return PairFeatures(x, ("a", "b", "c"), tuple(map(str, range(n)))), y, p


def test_newton_matches_the_optimum_of_the_penalised_likelihood() -> None:
    features, y, _ = _synthetic(500)
    x = features.matrix
    coef, intercept = fit_logistic(x, y, l2=2.0)
    p = expit(x @ coef + intercept)
    # Stationarity: the gradient of log loss + l2/2 |w|^2 vanishes.
    assert np.abs(x.T @ (p - y) + 2.0 * coef).max() < 1e-6
    assert abs((p - y).sum()) < 1e-6


def test_model_recovers_the_signal_and_is_calibrated() -> None:
    features, y, _ = _synthetic(4000)
    model = fit_disagreement_model(features.rows(np.arange(3000)), y[:3000])
    assert isinstance(model, DisagreementModel)
    test = features.rows(np.arange(3000, 4000))
    _, _, p_true = _synthetic(4000)
    p = model.predict_proba(test)
    assert np.abs(p - p_true[3000:]).mean() < 0.03
    assert next(iter(model.weights())) == "a"


def test_platt_calibration_keeps_the_ranking() -> None:
    features, y, _ = _synthetic(1000)
    plain = fit_disagreement_model(features, y)
    calibrated = fit_disagreement_model(features, y, calibrate=True)
    assert isinstance(calibrated, DisagreementModel)
    assert calibrated.platt is not None
    assert calibrated.platt[0] > 0
    assert (
        np.argsort(plain.predict_proba(features)) == np.argsort(calibrated.predict_proba(features))
    ).all()


def test_few_labels_or_one_class_fall_back_to_the_cold_start_rule() -> None:
    features, y, _ = _synthetic(200)
    assert isinstance(fit_disagreement_model(features.rows(np.arange(49)), y[:49]), ColdStartRule)
    assert isinstance(fit_disagreement_model(features, np.zeros(200)), ColdStartRule)


def test_model_refuses_features_of_another_config() -> None:
    features, y, _ = _synthetic(200)
    model = fit_disagreement_model(features, y)
    other = PairFeatures(features.matrix, ("x", "b", "c"))
    with pytest.raises(ValueError, match="FeatureConfig"):
        model.predict_proba(other)


def test_cold_start_escalates_null_then_inconsistent_then_tie_then_low_margin() -> None:
    def pair(i: int, label: str | None, prob: float | None = None) -> RoutingPair:
        return RoutingPair(str(i), "p", "a", "b", label, llm_prob_a=prob)

    features = build_features(
        [
            pair(0, "model_a", 0.99),
            pair(1, "model_b", 0.45),
            pair(2, "tie"),
            pair(3, "tie (inconsistent)"),
            pair(4, None),
            pair(5, "model_a"),
        ]
    )
    score = ColdStartRule().predict_proba(features)
    assert list(np.argsort(-score, kind="stable")) == [4, 3, 2, 5, 1, 0]


def test_per_column_penalties_shrink_only_their_columns() -> None:
    features, y, _ = _synthetic(500)
    x = (features.matrix - features.matrix.mean(0)) / features.matrix.std(0)
    penalty = np.array([0.0, 1e6, 0.0])
    coef, _ = fit_logistic(x, y, l2=penalty)
    assert abs(coef[1]) < 1e-3 < abs(coef[0])


def test_contributions_explain_the_logit_and_survive_storage() -> None:
    model = DisagreementModel(
        names=("a", "b"),
        mean=np.array([1.0, 0.0]),
        scale=np.array([2.0, 0.5]),
        coef=np.array([0.5, -1.0]),
        intercept=0.25,
        l2=1.0,
        platt=(2.0, -0.1),
    )
    values = {"a": 3.0, "b": 1.0}
    shares = model.contributions(values)
    # Platt slope x coef x standardised value: 2 x 0.5 x 1.0 and 2 x -1 x 2.0.
    assert shares == pytest.approx({"a": 1.0, "b": -4.0})
    features = PairFeatures(np.array([[3.0, 1.0]]), ("a", "b"))
    logit = 2.0 * model.decision_function(features)[0] - 0.1
    assert sum(shares.values()) == pytest.approx(logit - (2.0 * 0.25 - 0.1))
    stored = DisagreementModel.from_params(json.loads(json.dumps(model.to_params())))
    assert stored.predict_proba(features) == pytest.approx(model.predict_proba(features))
    assert stored.platt == (2.0, -0.1)


def _constant(names: tuple[str, ...], p: float) -> DisagreementModel:
    """A model that says `p` for every pair."""
    logit = float(np.log(p / (1 - p)))
    d = len(names)
    return DisagreementModel(names, np.zeros(d), np.ones(d), np.zeros(d), logit, 1.0)


VERDICTS = ("verdict_tie", "verdict_inconsistent", "verdict_null")


def test_the_outcome_view_composes_tie_and_other_answer_per_verdict() -> None:
    names = (*VERDICTS, "x")
    blend = BlendedModel(
        direct=_constant(names, 0.3), tie=_constant(names, 0.2), opposite=_constant(names, 0.25)
    )
    rows = np.array(
        [
            [0, 0, 0, 1.0],  # decisive: wrong if a tie or the other answer
            [1, 0, 0, 1.0],  # a tie: wrong unless people call it a tie
            [0, 1, 0, 1.0],  # flipped with the order: a tie
            [0, 0, 1, 1.0],  # no verdict: the direct model alone
        ]
    )
    p = blend.predict_proba(PairFeatures(rows, names))
    decisive = 0.2 + 0.8 * 0.25
    assert p == pytest.approx([0.5 * 0.3 + 0.5 * decisive, 0.5 * 0.3 + 0.5 * 0.8, 0.55, 0.3])


def _verdict_features(n: int, seed: int) -> tuple[PairFeatures, np.ndarray, np.ndarray]:
    """Decisive and tie verdicts with a signal `x`; people's ties and the judge's misses."""
    rng = np.random.default_rng(seed)
    tie_verdict = (rng.random(n) < 0.3).astype(float)
    x = rng.normal(size=n)
    human_tie = (rng.random(n) < expit(-1.0 + x)).astype(float)
    other = (rng.random(n) < expit(-1.5 - x)).astype(float)
    wrong = np.where(tie_verdict > 0, 1 - human_tie, np.maximum(human_tie, other))
    matrix = np.column_stack([tie_verdict, np.zeros(n), np.zeros(n), x])
    return PairFeatures(matrix, (*VERDICTS, "x")), wrong, human_tie


def test_with_human_ties_the_fit_blends_and_survives_storage() -> None:
    features, wrong, human_tie = _verdict_features(600, seed=1)
    blend = fit_disagreement_model(features, wrong, human_tie=human_tie)
    assert isinstance(blend, BlendedModel)
    # People's ties grow with x, the other answer shrinks with it: the two views disagree.
    assert blend.tie.coef[3] > 0 > blend.opposite.coef[3]
    stored = model_from_params(json.loads(json.dumps(blend.to_params())))
    assert isinstance(stored, BlendedModel)
    assert stored.predict_proba(features) == pytest.approx(blend.predict_proba(features))
    # A fit stored before the outcome view is the direct model still.
    plain = {k: v for k, v in blend.to_params().items() if k != "outcome_view"}
    assert isinstance(model_from_params(plain), DisagreementModel)
    assert blend.contributions({"x": 1.0}) == blend.direct.contributions({"x": 1.0})


def test_without_human_ties_or_enough_decided_pairs_the_fit_stays_direct() -> None:
    features, wrong, _ = _verdict_features(600, seed=2)
    no_ties = fit_disagreement_model(features, wrong, human_tie=np.zeros(len(wrong)))
    assert isinstance(no_ties, DisagreementModel)
    all_ties = fit_disagreement_model(features, wrong, human_tie=np.ones(len(wrong)))
    assert isinstance(all_ties, DisagreementModel)  # nobody picked a side: no other-answer model
