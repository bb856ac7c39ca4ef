"""Reasons: per customer, the features that push a score most, in words for an account manager.

The contributions are TreeSHAP values per feature (xgboost's ``pred_contribs``); a feature's
declaration (``features.catalog``) renders its value ("no visit for 143 days"). Churn and
upgrade name what raises the score; the margin names what moves it most either way. A feature
without a value at as_of is not given as a reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from klantwaarde.features.catalog import Feature, Language
from klantwaarde.training.candidates import TargetName


def top_reasons(target: TargetName, contributions: np.ndarray, names: list[str],
                frame: pd.DataFrame, declared: dict[str, Feature], k: int,
                language: Language) -> list[list[str]]:
    """Per row of ``frame``, up to ``k`` reasons, strongest first. ``contributions`` has one
    column per name in ``names`` (a trailing bias column is ignored)."""
    push = contributions[:, :len(names)]
    strength = np.abs(push) if target == "margin" else push.copy()
    for j, name in enumerate(names):
        column = frame[name]
        strength[column.isna().to_numpy(), j] = -np.inf
    if target != "margin":
        strength[strength <= 0] = -np.inf  # only what raises the score
    k = min(k, len(names))
    best = np.argsort(-strength, axis=1, kind="stable")[:, :k]
    texts = np.full(best.shape, None, dtype=object)
    for j, name in enumerate(names):
        rows, slots = np.nonzero(best == j)
        if len(rows):
            values = frame[name].to_numpy()[rows]
            texts[rows, slots] = [declared[name].reason(v, language) for v in values]
    usable = np.take_along_axis(strength, best, axis=1) > -np.inf
    return [list(t[u]) for t, u in zip(texts, usable, strict=True)]
