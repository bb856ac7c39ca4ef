"""Drift: the population stability index of each feature between the data a model was trained
on and a scored month.

At training, ``profile`` keeps per feature the deciles of the training data (text: the shares of
its most common values) and the share of rows in each bin, missing values in a bin of their own.
At scoring, ``stability`` puts the month's values in the same bins and compares the shares:
PSI = sum over bins of (month - training) * ln(month / training).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_FLOOR = 1e-4  # an empty bin counts as this share, so that the logarithm stays finite
_LEVELS = 20  # text features: this many most common values, the rest together


def profile(frame: pd.DataFrame, features: list[str]) -> dict[str, dict]:
    """Per feature its bins (``edges`` or ``levels``) and the training shares."""
    out = {}
    for name in features:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            values = column.to_numpy(float)
            present = values[~np.isnan(values)]
            edges = (np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9)))
                     if len(present) else np.array([]))
            out[name] = {"edges": edges.tolist(),
                         "shares": _numeric_shares(values, edges).tolist()}
        else:
            levels = column.value_counts().index[:_LEVELS].tolist()
            out[name] = {"levels": levels, "shares": _text_shares(column, levels).tolist()}
    return out


def stability(reference: dict[str, dict], frame: pd.DataFrame) -> dict[str, float]:
    """The PSI of every profiled feature that ``frame`` has."""
    out = {}
    for name, bins in reference.items():
        if name not in frame:
            continue
        if "edges" in bins:
            shares = _numeric_shares(frame[name].to_numpy(float), np.asarray(bins["edges"]))
        else:
            shares = _text_shares(frame[name], bins["levels"])
        expected = np.maximum(np.asarray(bins["shares"]), _FLOOR)
        actual = np.maximum(shares, _FLOOR)
        out[name] = float(np.sum((actual - expected) * np.log(actual / expected)))
    return out


def _numeric_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares in the bins between ``edges`` (len(edges) + 1 of them), then the missing ones."""
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"),
                         minlength=len(edges) + 1)
    return np.append(counts, missing.sum()) / max(len(values), 1)


def _text_shares(column: pd.Series, levels: list[str]) -> np.ndarray:
    """Shares of each level, then of any other value, then of missing values."""
    counts = column.value_counts()
    known = np.array([counts.get(level, 0) for level in levels], float)
    missing = column.isna().sum()
    other = len(column) - known.sum() - missing
    return np.append(known, [other, missing]) / max(len(column), 1)
