"""The xgboost upgrade model (``training.upgrade``) on synthetic customers whose adoptions are
known: a garden centre adopts garden, a large customer paint, a small one tools. A binary model
of label_upgrade, one per category over the customers that do not own it, its search per output,
and its reasons: the adoption of each customer's best category."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.special import logit
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from klantwaarde.config import load_config
from klantwaarde.models.fitted import contributions, predict
from klantwaarde.training.candidates import fit_xgboost
from klantwaarde.training.matrix import FeatureMatrix
from klantwaarde.training.upgrade import NONE, UpgradeModel, fit_search, owned_columns

CATEGORIES = ("garden", "paint", "tools")
LABELS = ["label_upgrade", *(f"label_adopt__{c}" for c in CATEGORIES)]
PARAMS = {"max_depth": 3, "learning_rate": 0.1}


def _customers(n: int = 10_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The features, the labels (label_upgrade, then the adoptions) and the true adoption
    probabilities (0 where owned). A customer owns each category with chance 0.35; a few flags
    are missing, which counts as not owned."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(["garden_centre", "builder", "shop"], n)
    size = rng.uniform(1, 100, n)
    owns = rng.random((n, 3)) < 0.35
    logits = np.column_stack([-3.5 + 3.0 * (industry == "garden_centre"),
                              -5.0 + 0.06 * size,
                              -1.0 - 0.05 * size])
    truth = np.where(owns, 0.0, 1 / (1 + np.exp(-logits)))
    adopted = rng.random((n, 3)) < truth
    upgrade = adopted.any(axis=1) | (rng.random(n) < 0.1)  # or revenue grew
    frame = pd.DataFrame({"industry": industry, "size": size,
                          "noise": rng.normal(size=n)}
                         | {f"owns__{c}": owns[:, k].astype(float)
                            for k, c in enumerate(CATEGORIES)})
    missing = rng.random(n) < 0.02
    frame.loc[missing & ~owns[:, 0], "owns__garden"] = np.nan
    y = np.column_stack([upgrade, adopted]).astype(int)
    return frame, y, truth


def _fitted(negatives: float = 0.25) -> Pipeline:
    X, y, _ = _customers()  # noqa: N806
    matrix = FeatureMatrix().fit(X)
    owned = owned_columns(list(matrix.get_feature_names_out()), LABELS)
    model = UpgradeModel(owned, PARAMS, 40, negatives, seed=3)
    return Pipeline([("matrix", matrix), ("model", model)]).fit(X, y)


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return _fitted()


def test_owned_columns_name_each_categorys_flag_or_none() -> None:
    names = ["size", "owns__paint", "industry=shop", "owns__garden"]
    labels = ["label_upgrade", "label_adopt__garden", "label_adopt__paint", "label_adopt__wood"]
    assert owned_columns(names, labels) == (3, 1, NONE)


def test_probabilities_per_output_with_zero_for_a_bought_category(pipeline: Pipeline) -> None:
    X, _, _ = _customers(seed=1)  # noqa: N806
    p = pipeline.predict_proba(X)
    assert p.shape == (len(X), 1 + len(CATEGORIES))
    assert ((p >= 0) & (p <= 1)).all()
    owned = X[[f"owns__{c}" for c in CATEGORIES]].to_numpy() > 0
    assert owned.any(axis=0).all() and (p[:, 1:][owned] == 0).all()
    assert (p[:, 1:][~owned] > 0).all()
    # a missing flag is not a purchase: those customers get a probability of garden
    assert (p[X.owns__garden.isna().to_numpy(), 1] > 0).all()
    np.testing.assert_array_equal(pipeline.predict(X), (p >= 0.5).astype(int))


def test_each_category_ranks_those_who_can_adopt_it(pipeline: Pipeline) -> None:
    X, y, truth = _customers(seed=1)  # noqa: N806
    p = pipeline.predict_proba(X)
    assert roc_auc_score(y[:, 0], p[:, 0]) > 0.7
    for k, category in enumerate(CATEGORIES, 1):
        eligible = truth[:, k - 1] > 0
        assert roc_auc_score(y[eligible, k], p[eligible, k]) > 0.7, category


def test_sampling_the_negatives_keeps_the_level_of_the_adoptions(pipeline: Pipeline) -> None:
    """A category learns from a quarter of its negatives, each weighted by four: its mean
    probability keeps the true one, and that of a model that learns from every negative."""
    X, _, truth = _customers(seed=1)  # noqa: N806
    p = pipeline.predict_proba(X)
    model = pipeline.named_steps["model"]
    for k, category in enumerate(CATEGORIES, 1):
        eligible = truth[:, k - 1] > 0
        assert p[eligible, k].mean() == pytest.approx(truth[eligible, k - 1].mean(),
                                                      rel=0.15), category
    every = _fitted(negatives=1.0).predict_proba(X)
    np.testing.assert_allclose(p[:, 1:].mean(axis=0), every[:, 1:].mean(axis=0), rtol=0.15)
    assert model.negatives == 0.25 and len(model.boosters_) == 1 + len(CATEGORIES)


def test_reasons_explain_the_adoption_of_the_best_category(pipeline: Pipeline) -> None:
    X, _, _ = _customers(n=2000, seed=2)  # noqa: N806
    p = pipeline.predict_proba(X)
    found, names = contributions(pipeline, X)
    assert names == list(X.columns) and found.shape == (len(X), len(X.columns) + 1)
    owned = X[[f"owns__{c}" for c in CATEGORIES]].to_numpy() > 0
    everything = owned.all(axis=1)
    assert 20 < everything.sum() < len(X) / 2
    best = np.argmax(np.where(owned, -np.inf, p[:, 1:]), axis=1)
    explained = np.where(everything, p[:, 0], p[np.arange(len(X)), 1 + best])
    # the contributions and the bias add up to the log-odds of what they explain
    np.testing.assert_allclose(found.sum(axis=1), logit(explained), atol=1e-4)
    assert not np.allclose(found.sum(axis=1)[~everything], logit(p[~everything, 0]), atol=1e-2)
    # a large customer's best category is paint, and its size is why
    large = ~everything & (X["size"].to_numpy() > 85) & ~owned[:, 1]
    assert large.sum() > 20 and (best[large] == 1).mean() > 0.9
    paint = large & (best == 1)
    assert (np.argmax(found[paint, :-1], axis=1) == names.index("size")).mean() > 0.9
    # a garden centre that can still buy garden tools and is not large: garden, for its industry
    garden = ~everything & (X.industry == "garden_centre").to_numpy() & ~owned[:, 0] \
        & (X["size"].to_numpy() < 60)
    assert (best[garden] == 0).mean() > 0.9
    assert (np.argmax(found[garden & (best == 0), :-1], axis=1)
            == names.index("industry")).mean() > 0.9


def test_a_fitted_model_survives_joblib_as_scoring_loads_it(pipeline: Pipeline,
                                                            tmp_path: Path) -> None:
    X, _, _ = _customers(n=500, seed=4)  # noqa: N806
    joblib.dump(pipeline, tmp_path / "pipeline.joblib")
    loaded = joblib.load(tmp_path / "pipeline.joblib")
    np.testing.assert_array_equal(predict("upgrade", loaded, X, len(LABELS)),
                                  pipeline.predict_proba(X))
    np.testing.assert_array_equal(contributions(loaded, X)[0], contributions(pipeline, X)[0])


def test_the_labels_must_match_the_categories() -> None:
    X, y, _ = _customers(n=300)  # noqa: N806
    with pytest.raises(ValueError, match="expected label_upgrade and 3 adoption labels"):
        UpgradeModel((0, 1, 2)).fit(X[["owns__garden", "owns__paint", "owns__tools"]],
                                    y[:, :3])
    with pytest.raises(ValueError, match="negatives is a share"):
        UpgradeModel((3, 4, 5), negatives=0).fit(X.drop(columns="industry"), y)


# ------------------------------------------------------------------------- the search

def test_the_search_keeps_each_outputs_best_combination_and_rounds() -> None:
    X, y, _ = _customers(n=4000, seed=5)  # noqa: N806
    stop_X, stop_y, _ = _customers(n=2000, seed=6)  # noqa: N806
    matrix = FeatureMatrix().fit(pd.concat([X, stop_X]))
    train, stop = matrix.transform(X), matrix.transform(stop_X)
    owned = owned_columns(list(matrix.get_feature_names_out()), LABELS)
    grid = [{"max_depth": 1}, {"max_depth": 3}]
    lines: list[str] = []
    model, logged = fit_search(train, y, stop, stop_y, owned, grid, 40, 5, seed=3,
                               progress=lines.append, fixed={"learning_rate": 0.3})
    assert [line.split(":")[0] for line in lines] == ["xgboost upgrade 1/2",
                                                      "xgboost upgrade 2/2"]
    assert lines[0].startswith("xgboost upgrade 1/2: {'max_depth': 1} -> logloss ")
    assert lines[0].endswith("(3 categories)")
    # each output: the depth with its lowest log loss on the stop set, at its best rounds
    tried = [UpgradeModel(owned, {"learning_rate": 0.3} | combo, 40, seed=3,
                          early_stopping_rounds=5).fit(train, y, eval_set=(stop, stop_y))
             for combo in grid]
    scores = np.array([m.best_scores_ for m in tried])
    chosen = np.argmin(scores, axis=0)
    depths = [grid[c]["max_depth"] for c in chosen]
    rounds = [tried[c].best_rounds_[k] for k, c in enumerate(chosen)]
    assert logged["upgrade_max_depth"] == depths[0]
    assert logged["adopt_max_depth"] == ",".join(str(d) for d in depths[1:])
    assert logged["upgrade_rounds"] == rounds[0]
    assert logged["adopt_rounds"] == ",".join(str(r) for r in rounds[1:])
    assert logged["learning_rate"] == 0.3 and logged["negatives"] == 0.25
    assert all(1 <= r <= 40 for r in rounds) and min(rounds) < 40
    # refitted on both sets with those rounds
    assert [b.num_boosted_rounds() for b in model.boosters_] == rounds
    assert model.params == tuple({"learning_rate": 0.3} | grid[c] for c in chosen)
    assert model.predict_proba(stop).shape == (len(stop), 1 + len(CATEGORIES))


def test_the_xgboost_candidate_of_upgrade_is_the_model_per_output(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"xgboost": {
        "max_rounds": {"churn": 40, "margin": 40, "upgrade": 30}, "early_stopping_rounds": 5,
        "search": {"max_depth": [2.0, 3.0], "learning_rate": [0.3]}}}))
    cfg = load_config(tmp_path).models
    X, y, _ = _customers(n=3000, seed=7)  # noqa: N806
    stop_X, stop_y, _ = _customers(n=1500, seed=8)  # noqa: N806
    lines: list[str] = []
    fitted = fit_xgboost("upgrade", X, y, stop_X, stop_y, cfg, lines.append, LABELS)
    model = fitted.pipeline.named_steps["model"]
    assert isinstance(model, UpgradeModel) and len(lines) == 2
    assert model.owned == owned_columns(
        list(fitted.pipeline.named_steps["matrix"].get_feature_names_out()), LABELS)
    assert fitted.params["upgrade_max_depth"] in (2, 3)  # whole numbers, as xgboost wants them
    assert fitted.params["subsample"] == cfg.xgboost.subsample
    assert all(int(r) <= 30 for r in str(fitted.params["adopt_rounds"]).split(","))
    assert predict("upgrade", fitted.pipeline, X, len(LABELS)).shape == (len(X), len(LABELS))
    with pytest.raises(ValueError, match="needs the names of its label columns"):
        fit_xgboost("upgrade", X, y, stop_X, stop_y, cfg)
