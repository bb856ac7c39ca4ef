"""The response model's parts on synthetic data with a known effect: the Qini coefficient and
uplift in the top 10%, and the meta-learners with their overlap rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from klantwaarde.models import metrics
from klantwaarde.training.response import ResponseModel


def _synthetic(n: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray,
                                                      np.ndarray]:
    """Churn risk from x0, a contact lowers it by 0.25 where x1 > 0 and not at all elsewhere;
    contacts are likelier where x2 is high, and region "north" is never contacted."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    region = rng.choice(["north", "south", "west"], size=n)
    true = np.where(x[:, 1] > 0, 0.25, 0.0)
    treated = (rng.random(n) < 1 / (1 + np.exp(-x[:, 2]))) & (region != "north")
    risk = 0.2 + 0.3 / (1 + np.exp(-x[:, 0]))
    churned = rng.random(n) < risk - treated * true
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "region": region})
    frame.loc[rng.random(n) < 0.05, "x0"] = np.nan  # missing values as the features have them
    return frame, treated, churned, true


@pytest.mark.parametrize("learner", ["t_learner", "x_learner", "s_learner"])
def test_a_meta_learner_finds_the_customers_a_contact_helps(learner: str) -> None:
    X, treated, churned, true = _synthetic()  # noqa: N806
    model = ResponseModel(learner, rounds=80).fit(X, treated, churned)
    test, _, _, truth = _synthetic(seed=1)
    effect = model.effect(test)
    known = np.isfinite(effect)
    helped = truth[known] > 0
    assert effect[known][helped].mean() > effect[known][~helped].mean() + 0.1
    assert stats.spearmanr(effect[known], truth[known]).statistic > 0.3


def test_the_what_if_learner_credits_a_call_where_attention_lapsed() -> None:
    """Churn rises with the days since the last call for customers whose x1 > 0 only: a call
    just made (no days since it) lowers their churn, and changes nothing for the others."""
    rng = np.random.default_rng(4)
    n = 8000
    gap = rng.uniform(0, 365, n)
    x1 = rng.normal(size=n)
    neglect = np.where(x1 > 0, 0.5 * gap / 365, 0.0)
    churned = rng.random(n) < 0.1 + neglect
    frame = pd.DataFrame({"days_since_last_call": gap, "days_since_last_contact": gap,
                          "contacts_12m": rng.poisson(4, n).astype(float), "x1": x1})
    treated = rng.random(n) < 0.3
    model = ResponseModel("what_if", rounds=80).fit(frame, treated, churned)
    effect = model.effect(frame)
    sensitive = (x1 > 0) & (gap > 180)
    assert effect[sensitive].mean() > 0.2
    assert abs(effect[x1 < 0].mean()) < 0.05
    # without the attention features there is nothing a call changes: no effect
    bare = ResponseModel("what_if", rounds=20).fit(frame[["x1"]], treated, churned)
    assert np.allclose(np.nan_to_num(bare.effect(frame[["x1"]])), 0)


def test_no_effect_where_no_one_is_ever_contacted() -> None:
    X, treated, churned, _ = _synthetic()  # noqa: N806
    model = ResponseModel("x_learner", rounds=80).fit(X, treated, churned)
    effect = model.effect(X)
    north = X.region.to_numpy() == "north"
    assert np.isnan(effect[north]).all()
    assert np.isfinite(effect[~north]).mean() > 0.9
    assert model.propensity(X)[north].max() < 0.02


def test_a_model_needs_both_arms() -> None:
    X, _, churned, _ = _synthetic(n=200)  # noqa: N806
    with pytest.raises(ValueError, match="contacted and uncontacted"):
        ResponseModel().fit(X, np.ones(len(X), bool), churned)


def test_qini_of_the_true_effect_beats_random_and_its_reverse() -> None:
    _, treated, churned, true = _synthetic(n=20000, seed=2)
    rng = np.random.default_rng(3)
    best = metrics.qini_coefficient(~churned, treated, true + rng.normal(0, 1e-3, len(true)))
    random = metrics.qini_coefficient(~churned, treated, rng.random(len(true)))
    worst = metrics.qini_coefficient(~churned, treated, -true)
    # normalised by the perfect ranking of the observed outcomes, which no model of the effect
    # reaches: a true effect of 0.25 on half the customers gives about 0.07
    assert best > 0.04 and worst < -0.04
    assert abs(random) < 0.015
    stayed = (~churned).astype(float)
    perfect = stayed * treated - stayed * ~treated
    assert metrics.qini_coefficient(~churned, treated, perfect) == pytest.approx(1.0)


def test_qini_curve_by_hand() -> None:
    """Ranked: a treated who stayed, an untreated who churned, a treated who churned, an
    untreated who stayed. After k rows, R_T - R_C * N_T / N_C: 1, 1 - 0, 1 - 0 * 2 / 1,
    1 - 1 * 2 / 2."""
    retained = np.array([1, 0, 0, 1])
    treated = np.array([True, False, True, False])
    x, y = metrics.qini_curve(retained, treated, np.array([4.0, 3.0, 2.0, 1.0]))
    assert list(x) == [0, 1, 2, 3, 4]
    assert list(y) == [0, 1, 1, 1, 0]
    assert np.isnan(metrics.qini_coefficient(retained, np.ones(4, bool), np.arange(4.0)))


def test_uplift_at_ten_percent_is_the_churn_difference_in_the_top() -> None:
    effect = np.arange(100.0)[::-1]  # the first ten rows ranked on top
    churned = np.zeros(100, bool)
    treated = np.zeros(100, bool)
    treated[:5] = True
    churned[5:9] = True  # 4 of the 5 untreated in the top churned, no treated one
    assert metrics.uplift_at(churned, treated, effect) == pytest.approx(0.8)
    found = metrics.uplift_metrics(churned, treated, np.r_[effect[:99], np.nan])
    assert found["no_estimate_share"] == pytest.approx(0.01)
