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
    return psi(reference, bin_counts(reference, frame), len(frame))


def bin_counts(reference: dict[str, dict], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per profiled feature that ``frame`` has, its rows in each of the feature's bins: counts
    of parts of a month add up to those of the month."""
    out = {}
    for name, bins in reference.items():
        if name not in frame:
            continue
        if "edges" in bins:
            out[name] = _numeric_counts(frame[name].to_numpy(float), np.asarray(bins["edges"]))
        else:
            out[name] = _text_counts(frame[name], bins["levels"])
    return out


def psi(reference: dict[str, dict], counts: dict[str, np.ndarray], rows: int
        ) -> dict[str, float]:
    """The PSI of each feature of ``counts`` (``bin_counts`` of a month of ``rows`` rows)."""
    out = {}
    for name, found in counts.items():
        expected = np.maximum(np.asarray(reference[name]["shares"]), _FLOOR)
        actual = np.maximum(found / max(rows, 1), _FLOOR)
        out[name] = float(np.sum((actual - expected) * np.log(actual / expected)))
    return out


def _numeric_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return _numeric_counts(values, edges) / max(len(values), 1)


def _numeric_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Rows in the bins between ``edges`` (len(edges) + 1 of them), then the missing ones."""
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"),
                         minlength=len(edges) + 1)
    return np.append(counts, missing.sum()).astype(float)


def _text_shares(column: pd.Series, levels: list[str]) -> np.ndarray:
    return _text_counts(column, levels) / max(len(column), 1)


def _text_counts(column: pd.Series, levels: list[str]) -> np.ndarray:
    """Rows of each level, then of any other value, then of missing values."""
    counts = column.value_counts()
    known = np.array([counts.get(level, 0) for level in levels], float)
    missing = column.isna().sum()
    other = len(column) - known.sum() - missing
    return np.append(known, [other, missing])
