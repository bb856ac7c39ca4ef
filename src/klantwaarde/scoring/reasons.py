"""Reasons: per customer, the features that push a score most, in words for an account manager.

The contributions are TreeSHAP values per feature (xgboost's ``pred_contribs``); a feature's
declaration (``features.catalog``) renders its value ("no visit for 5 months"). Churn and
upgrade name what raises the score; the margin names what moves it most either way. A feature
without a value at as_of is not given as a reason, and a discount or cost feature is never a
reason to sell more. A cross-sell row first says why its category: how many of its peers buy it.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from klantwaarde.features.catalog import Feature, Language
from klantwaarde.features.words import percent
from klantwaarde.models.targets import TargetName

_PEERS = {"en": ("{share} of customers in {industry} buy {category}; this one never has",
                 "{share} of customers buy {category}; this one never has"),
          "nl": ("{share} van de klanten in de branche {industry} kopen {category}; deze klant "
                 "nog nooit", "{share} van de klanten kopen {category}; deze klant nog nooit")}


def top_reasons(target: TargetName, contributions: np.ndarray, names: list[str],
                frame: pd.DataFrame, declared: dict[str, Feature], k: int,
                language: Language) -> list[list[str]]:
    """Per row of ``frame``, up to ``k`` reasons, strongest first. ``contributions`` has one
    column per name in ``names`` (a trailing bias column is ignored)."""
    push = contributions[:, :len(names)]
    strength = np.abs(push) if target == "margin" else push.copy()
    for j, name in enumerate(names):
        strength[frame[name].isna().to_numpy(), j] = -np.inf
        if target == "upgrade" and _cost_driver(declared[name]):
            strength[:, j] = -np.inf
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


def _cost_driver(feature: Feature) -> bool:
    """A discount or a cost: what makes an account unprofitable, never why to sell it more."""
    return feature.family == "discounts" or feature.name.startswith("cost_")


def peer_shares(features: ir.Table) -> pd.DataFrame:
    """Per industry, the share of its customers that bought each category (an ``owns__``
    column of the feature table ``features``); row "" holds the shares among all customers,
    which customers without an industry are compared with. Aggregated in the engine."""
    owned = [c for c in features.columns if c.startswith("owns__")]
    if not owned:
        return pd.DataFrame(index=pd.Index([""], name="industry"))
    means = {c: features[c].ifelse(1, 0).mean() for c in owned}  # flags; any engine
    everyone = features.aggregate(**means).mutate(industry=ibis.literal(""))
    if "industry" in features.columns:
        industry = features.industry.cast("string").fill_null("")
        peers = features.filter(industry != "").group_by(industry=industry).aggregate(**means)
        everyone = everyone.select("industry", *owned).union(peers.select("industry", *owned))
    return everyone.to_pandas().set_index("industry")


def peer_reasons(categories: list[list[str]], industries: list[str | None],
                 shares: pd.DataFrame, language: Language) -> list[str | None]:
    """For customers with their next-best ``categories`` and their ``industries``, why the first
    category: the share of the customers in its industry (of all customers when it has none)
    that bought it (``shares``: ``peer_shares``); None when there is no category, or no peer
    bought it."""
    out: list[str | None] = []
    for chosen, industry in zip(categories, industries, strict=True):
        industry = "" if industry is None or pd.isna(industry) else str(industry)
        column = f"owns__{chosen[0]}" if len(chosen) else None
        share = shares.at[industry, column] if column in shares else 0.0
        within, everyone = _PEERS[language]
        out.append((within if industry else everyone).format(
            share=percent(share, language), industry=industry.replace("_", " "),
            category=chosen[0])
            if share > 0 else None)
    return out
