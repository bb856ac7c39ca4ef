"""The response model: how much a visit or call in the month after as_of lowers a customer's
chance of churn over the horizon, learned from the interaction history (who was contacted, who
churned).

Two candidates share one propensity model (xgboost: the chance of a contact) and its overlap
rule: where that chance is below ``min_propensity`` or above ``1 - min_propensity`` the history
holds no comparable contacted (or uncontacted) customers, and the effect is NaN, not guessed.

- ``t_learner``: a T-learner with logistic regression bases (one churn model per arm);
- ``x_learner``: econml's X-learner with xgboost bases (Künzel et al., 2019): churn models per
  arm, imputed effects fitted per arm and blended by the propensity; it copes with arms of
  unequal size, as contacted and uncontacted customers are;
- ``s_learner``: econml's S-learner with an xgboost base: one churn model over the features and
  the contact, whose effect is the difference between its predictions without and with a
  contact. One model over both arms pools what contacted and uncontacted customers share, so a
  small effect that varies with the customer (a contact matters most where attention lapsed)
  is estimated with less noise than as the difference of two models;
- ``what_if``: an S-learner whose treatment is what a call changes in the features: an xgboost
  churn model of the customers as they are, and its effect the churn it predicts now minus the
  churn it predicts had a call just been made (``CALLED``: no days since the last contact and
  call, one more contact and call in the windows). Its churn can only rise as attention lapses
  (monotone constraints, ``ATTENTION``), so the effect of a call is never negative and does not
  shrink to noise as the model grows. It needs the attention features (an interactions table);
  where they are missing its effect is 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np
import pandas as pd
import xgboost as xgb
from econml.metalearners import SLearner, XLearner
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from klantwaarde.training.matrix import FeatureMatrix

Learner = Literal["t_learner", "x_learner", "s_learner", "what_if"]
LEARNERS: tuple[Learner, ...] = ("t_learner", "x_learner", "s_learner", "what_if")
# a call just made, in the attention features: set to a value, or a number added
CALLED = {"days_since_last_contact": ("set", 0), "days_since_last_call": ("set", 0),
          "contacts_3m": ("add", 1), "contacts_12m": ("add", 1), "calls_12m": ("add", 1)}
# the what-if churn model's constraints: churn cannot fall as attention lapses, so a call never
# raises it: +1, rises with the days since a contact (what a call sets to 0); -1, falls with the
# contact counts (what a call adds to)
ATTENTION = {name: 1 if how == "set" else -1 for name, (how, _) in CALLED.items()}


class ResponseModel(BaseEstimator):
    """A meta-learner of the reduction in churn probability that a contact brings, with an
    overlap check. ``fit(X, treated, churned)``; ``effect(X)`` is P(churn | no contact) -
    P(churn | contact), NaN outside the overlap."""

    def __init__(self, learner: Learner = "x_learner", min_propensity: float = 0.02,
                 rounds: int = 200, max_depth: int = 3, learning_rate: float = 0.1,
                 seed: int = 0) -> None:
        self.learner = learner
        self.min_propensity = min_propensity
        self.rounds = rounds
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.seed = seed

    def fit(self, X: pd.DataFrame, treated: np.ndarray, churned: np.ndarray):  # noqa: N803
        treated = np.asarray(treated, bool)
        churned = np.asarray(churned, float)
        if treated.all() or not treated.any():
            raise ValueError("the response model needs contacted and uncontacted customers")
        if self.learner not in LEARNERS:
            raise ValueError(f"learner must be one of {LEARNERS}, not {self.learner!r}")
        self.matrix_ = FeatureMatrix().fit(X)
        m = self.matrix_.transform(X)
        self.propensity_ = self._xgb(xgb.XGBClassifier).fit(m, treated)
        if self.learner == "t_learner":
            self.arms_ = [_logistic().fit(m[treated == arm], churned[treated == arm])
                          for arm in (False, True)]
            return self
        if self.learner == "what_if":
            names = self.matrix_.get_feature_names_out()
            self.arms_ = [self._xgb(xgb.XGBClassifier, monotone_constraints=tuple(
                ATTENTION.get(name, 0) for name in names)).fit(m, churned)]
            return self
        churn = self._xgb(xgb.XGBRegressor, objective="reg:logistic")
        learner = (SLearner(overall_model=churn, allow_missing=True)
                   if self.learner == "s_learner" else
                   XLearner(models=churn, cate_models=self._xgb(xgb.XGBRegressor),
                            propensity_model=self._xgb(xgb.XGBClassifier), allow_missing=True))
        with _missing_values_allowed():
            self.arms_ = [learner.fit(churned, treated.astype(int), X=m)]
        return self

    def _xgb(self, kind: type[xgb.XGBModel], **params) -> xgb.XGBModel:
        return kind(n_estimators=self.rounds, max_depth=self.max_depth,
                    learning_rate=self.learning_rate, subsample=0.8, colsample_bytree=0.8,
                    min_child_weight=5, tree_method="hist", random_state=self.seed, n_jobs=2,
                    **params)

    def propensity(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """The chance of a contact in the month after as_of."""
        check_is_fitted(self, "propensity_")
        return self.propensity_.predict_proba(self.matrix_.transform(X))[:, 1]

    def effect(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """The reduction in churn probability from a contact; NaN outside the overlap."""
        check_is_fitted(self, "arms_")
        m = self.matrix_.transform(X)
        if self.learner == "t_learner":
            untreated, treated = (arm.predict_proba(m)[:, 1] for arm in self.arms_)
            reduction = untreated - treated
        elif self.learner == "what_if":
            called = self.matrix_.transform(_called(X))
            reduction = (self.arms_[0].predict_proba(m)[:, 1]
                         - self.arms_[0].predict_proba(called)[:, 1])
        else:
            with _missing_values_allowed():
                reduction = -np.asarray(self.arms_[0].effect(m), float).ravel()
        p = self.propensity_.predict_proba(m)[:, 1]
        overlap = (p >= self.min_propensity) & (p <= 1 - self.min_propensity)
        return np.where(overlap, reduction, np.nan)


def _called(X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
    """``X`` had a call just been made (``CALLED``, for the columns it has)."""
    changed = {name: (X[name].where(X[name].isna(), value) if how == "set" else X[name] + value)
               for name, (how, value) in CALLED.items() if name in X}
    return X.assign(**changed)


@contextmanager
def _missing_values_allowed() -> Iterator[None]:
    """Without econml's warning about NaN in X: a missing feature (no invoice, no complaint
    yet) is information the xgboost bases split on, not a gap in the treatment record."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*contains NaN. Causal identification")
        yield


def _logistic() -> Pipeline:
    return make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                       keep_empty_features=True),
                         StandardScaler(), LogisticRegression(max_iter=2000))
