"""The candidate models per target: a simple baseline, a shallow decision tree and xgboost.

Every candidate is a scikit-learn pipeline that starts with ``FeatureMatrix``. Targets:

- churn: a classifier of ``label_churn``;
- margin: a regressor of ``label_future_net_margin``;
- upgrade: ``label_upgrade`` and every ``label_adopt__<category>``, one probability each (the
  baseline and the tree are multi-label classifiers; xgboost is ``training.upgrade``: a binary
  model of ``label_upgrade`` and one per category over the customers that can still adopt it);
- response: the effect of a contact on ``label_churn`` (``training.response``: its candidates
  are meta-learners, not these three).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, export_text
from sklearn.utils.validation import check_is_fitted

from klantwaarde.config import ModelsConfig
from klantwaarde.models.targets import TargetName
from klantwaarde.training.matrix import FeatureMatrix
from klantwaarde.training.response import ResponseModel
from klantwaarde.training.upgrade import fit_search, owned_columns

CANDIDATES = ("baseline", "tree", "xgboost")


@dataclass(frozen=True)
class Fitted:
    """A fitted candidate, the parameters it was chosen with and its readable rules, if any."""

    pipeline: Pipeline | ResponseModel
    params: dict[str, float | int | str]
    rules: str | None = None


class LastPeriod(RegressorMixin, BaseEstimator):
    """The last-period heuristic: the future equals the past. Predicts ``column`` of the input
    times ``scale`` (the net margin of the last 12 months, scaled to the horizon)."""

    def __init__(self, column: str = "net_margin_12m", scale: float = 0.5) -> None:
        self.column = column
        self.scale = scale

    def fit(self, X: pd.DataFrame, y=None):  # noqa: N803
        if self.column not in X.columns:
            raise ValueError(f"the last-period baseline needs the feature {self.column}")
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        check_is_fitted(self, "n_features_in_")
        return X[self.column].fillna(0).to_numpy(dtype=float) * self.scale


def fit_baseline(target: TargetName, X: pd.DataFrame, y: np.ndarray,  # noqa: N803
                 horizon: int) -> Fitted:
    """Logistic regression (churn, upgrade) on imputed, standardised features; the last-period
    heuristic for the margin."""
    if target == "margin":
        model = LastPeriod("net_margin_12m", horizon / 12)
        return Fitted(Pipeline([("model", model)]).fit(X, y),
                      {"kind": "last_period", "scale": horizon / 12})
    logistic = LogisticRegression(max_iter=2000, C=1.0)
    head = MultiOutputClassifier(logistic) if np.ndim(y) == 2 else logistic
    pipeline = Pipeline([("matrix", FeatureMatrix()),
                         ("impute", SimpleImputer(strategy="median", add_indicator=True,
                                                  keep_empty_features=True)),
                         ("scale", StandardScaler()), ("model", head)])
    return Fitted(pipeline.fit(X, y), {"kind": "logistic_regression", "C": 1.0})


def fit_tree(target: TargetName, X: pd.DataFrame, y: np.ndarray, cfg: ModelsConfig  # noqa: N803
             ) -> Fitted:
    """A shallow tree (missing values go down their own branch) and its rules as text."""
    params = {"max_depth": cfg.tree.max_depth, "min_samples_leaf": cfg.tree.min_samples_leaf,
              "random_state": cfg.seed}
    tree = DecisionTreeRegressor(**params) if target == "margin" \
        else DecisionTreeClassifier(**params)
    pipeline = Pipeline([("matrix", FeatureMatrix()), ("model", tree)]).fit(X, y)
    names = list(pipeline.named_steps["matrix"].get_feature_names_out())
    rules = export_text(pipeline.named_steps["model"], feature_names=names, decimals=2,
                        show_weights=target == "churn")
    return Fitted(pipeline, {k: v for k, v in params.items() if k != "random_state"}, rules)


def fit_xgboost(target: TargetName, X: pd.DataFrame, y: np.ndarray,  # noqa: N803
                stop_X: pd.DataFrame, stop_y: np.ndarray, cfg: ModelsConfig,  # noqa: N803
                progress: Callable[[str], None] = lambda _: None,
                labels: list[str] | None = None) -> Fitted:
    """Every combination of the search grid with early stopping on the held-out snapshot
    (``stop_X``, ``stop_y``); the best is refitted on both with its number of rounds. The
    upgrade target with categories (``labels``: ``label_upgrade`` and the adoptions, the
    columns of ``y``) is ``training.upgrade``'s model, searched the same way per output."""
    xc = cfg.xgboost
    matrix = FeatureMatrix().fit(pd.concat([X, stop_X]))
    train, stop = matrix.transform(X), matrix.transform(stop_X)
    fixed: dict[str, float | int | str] = {
        "subsample": xc.subsample, "colsample_bytree": xc.colsample_bytree,
        "min_child_weight": xc.min_child_weight}
    if target == "margin":
        deviation = np.abs(y - np.median(y))
        fixed |= {"objective": "reg:pseudohubererror",
                  "huber_slope": float(max(np.quantile(deviation, xc.margin_huber_quantile),
                                           1.0))}
    grid = [dict(zip(xc.search, values, strict=True))
            for values in itertools.product(*xc.search.values())]
    if target == "upgrade" and np.ndim(y) == 2:
        if labels is None:
            raise ValueError("the upgrade model needs the names of its label columns")
        owned = owned_columns(list(matrix.get_feature_names_out()), labels)
        model, logged = fit_search(
            train, y, stop, stop_y, owned,
            [{k: int(v) if k == "max_depth" else v for k, v in combo.items()} for combo in grid],
            xc.max_rounds[target], xc.early_stopping_rounds, cfg.seed, progress, fixed)
        return Fitted(Pipeline([("matrix", matrix), ("model", model)]), logged)
    best: tuple[float, dict, int] | None = None
    for i, combo in enumerate(grid, 1):
        params = fixed | {k: int(v) if k == "max_depth" else v for k, v in combo.items()}
        model = _xgb(target, params, xc.max_rounds[target], cfg.seed, xc.early_stopping_rounds)
        model.fit(train, y, eval_set=[(stop, stop_y)], verbose=False)
        value = float(model.evals_result()["validation_0"][_metric(target)][model.best_iteration])
        loss = -value if _metric(target) == "auc" else value
        progress(f"xgboost {target} {i}/{len(grid)}: {combo} -> {_metric(target)} {value:.4f} "
                 f"at {model.best_iteration + 1} rounds")
        if best is None or loss < best[0]:
            best = (loss, params, model.best_iteration + 1)
    assert best is not None  # the grid has at least one combination
    _, params, rounds = best
    final = _xgb(target, params, rounds, cfg.seed, None)
    final.fit(np.vstack([train, stop]), np.concatenate([y, stop_y]), verbose=False)
    return Fitted(Pipeline([("matrix", matrix), ("model", final)]),
                  params | {"rounds": rounds})


def _metric(target: TargetName) -> str:
    """What early stopping and the search watch: the ranking for churn (the base rate of a
    later snapshot differs, which log loss punishes however well the model ranks), the loss
    itself for the margin and a single-label upgrade (``training.upgrade`` watches each
    output's log loss)."""
    return {"churn": "auc", "upgrade": "logloss", "margin": "mphe"}[target]


def _xgb(target: TargetName, params: dict, rounds: int, seed: int,
         stopping: int | None) -> xgb.XGBModel:
    common = dict(n_estimators=rounds, tree_method="hist", random_state=seed, n_jobs=2,
                  eval_metric=_metric(target), early_stopping_rounds=stopping, **params)
    if target == "margin":
        return xgb.XGBRegressor(**common)
    return xgb.XGBClassifier(**common)
