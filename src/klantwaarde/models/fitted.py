"""A fitted candidate applied to the feature table: its predictions per target and its TreeSHAP
contributions. Every candidate is a scikit-learn pipeline that starts with a ``FeatureMatrix``
(``training.matrix``), except the response model's meta-learners (``training.response``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator

from klantwaarde.models.targets import TargetName


def predict(target: TargetName, pipeline: BaseEstimator, X: pd.DataFrame,  # noqa: N803
            labels: int = 1) -> np.ndarray:
    """Churn: the probability; margin: the prediction; upgrade: one probability per label, as
    a (rows, labels) array (the xgboost candidate's ``predict_proba`` gives it as such; a single
    label is fitted as a plain binary classifier); response: the reduction in churn probability
    from a contact (NaN outside the overlap)."""
    if target == "response":
        return pipeline.effect(X)
    if target == "margin":
        return np.asarray(pipeline.predict(X), dtype=float)
    proba = pipeline.predict_proba(X)
    if isinstance(proba, list):  # scikit-learn's multi-output: one (n, 2) array per label
        return np.column_stack([_positive(p) for p in proba])
    proba = np.asarray(proba, dtype=float)
    if target == "upgrade":
        return proba if labels > 1 else _positive(proba).reshape(-1, 1)
    return _positive(proba)


def _positive(proba: np.ndarray) -> np.ndarray:
    return proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba.ravel()


def contributions(pipeline: BaseEstimator, X: pd.DataFrame  # noqa: N803
                  ) -> tuple[np.ndarray, list[str]]:
    """Per row, the TreeSHAP contribution of every input feature to the margin of the model's
    link, one-hot columns summed back into their feature; and the feature names. The last
    column is the bias. A model step with a ``contributions`` method of its own says what it
    explains (the upgrade candidate: the adoption of each row's best category); any other
    xgboost model is explained by its first output. Exact SHAP values: xgboost >= 3.3 computes
    them with QuadratureTreeSHAP, about 2.5x faster than 3.2's TreeSHAP
    (benchmarks/shap_speed.py)."""
    matrix = pipeline.named_steps["matrix"]
    model = pipeline.named_steps["model"]
    if hasattr(model, "contributions"):
        raw = np.asarray(model.contributions(matrix.transform(X)), dtype=float)
    else:
        booster = first_output(model.get_booster())
        raw = booster.predict(xgb.DMatrix(matrix.transform(X)), pred_contribs=True)
    sources = matrix.source_of()
    names = list(dict.fromkeys(sources))
    index = {name: i for i, name in enumerate(names)}
    summed = np.zeros((raw.shape[0], len(names) + 1))
    for column, source in enumerate(sources):
        summed[:, index[source]] += raw[:, column]
    summed[:, -1] = raw[:, -1]
    return summed, names


def first_output(booster: xgb.Booster) -> xgb.Booster:
    """The booster of the first output alone. A multi-output model grows one tree per output
    every round, and TreeSHAP would explain all of them. The trees of output 0 and its base
    score make a single-output model with the same margins; a single-output booster is
    returned as it is."""
    raw = json.loads(booster.save_raw("json"))
    learner = raw["learner"]
    param = learner["learner_model_param"]
    if int(param.get("num_target", "1")) <= 1:
        return booster
    model = learner["gradient_booster"]["model"]
    keep = [tree for tree, output in zip(model["trees"], model["tree_info"], strict=True)
            if output == 0]
    for number, tree in enumerate(keep):
        tree["id"] = number
    model |= {"trees": keep, "tree_info": [0] * len(keep),
              "iteration_indptr": list(range(len(keep) + 1))}
    model["gbtree_model_param"]["num_trees"] = str(len(keep))
    param |= {"num_target": "1",
              "base_score": f"[{param['base_score'].strip('[]').split(',')[0]}]"}
    single = xgb.Booster()
    single.load_model(bytearray(json.dumps(raw), "utf-8"))
    return single
