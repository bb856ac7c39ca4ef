"""The feature table as a numeric matrix: the one transformer every candidate starts with."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

SEPARATOR = "="  # one-hot columns are named "<feature>=<value>"


class FeatureMatrix(TransformerMixin, BaseEstimator):
    """Numbers and flags as floats (missing stays NaN), text columns one-hot encoded over the
    values seen in ``fit`` (an unseen value sets no column). ``get_feature_names_out`` names the
    columns; ``source_of`` maps each back to the feature it came from."""

    def __init__(self, max_levels: int = 50) -> None:
        self.max_levels = max_levels

    def fit(self, X, y=None):  # noqa: N803 (scikit-learn's names)
        frame = _frame(X)
        self.n_features_in_ = frame.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.columns_ = list(frame.columns)
        self.levels_ = {}
        for column in frame.columns:
            if _is_text(frame[column]):
                counts = frame[column].dropna().astype(str).value_counts(sort=False)
                kept = counts.sort_values(ascending=False, kind="stable").index[:self.max_levels]
                self.levels_[column] = sorted(kept)
        return self

    def transform(self, X):  # noqa: N803
        check_is_fitted(self, "levels_")
        frame = _frame(X)
        if list(frame.columns) != self.columns_:
            missing = [c for c in self.columns_ if c not in frame.columns]
            raise ValueError(f"the features differ from those the model was trained on; "
                             f"missing: {missing[:10]}")
        parts = []
        for column in self.columns_:
            values = frame[column]
            if column in self.levels_:
                text = values.astype("string")
                parts.extend((text == level).fillna(False).to_numpy(dtype=float)
                             for level in self.levels_[column])
            else:
                parts.append(pd.to_numeric(values, errors="raise").to_numpy(dtype=float,
                                                                            na_value=np.nan))
        if not parts:
            return np.empty((len(frame), 0))
        return np.column_stack(parts)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "levels_")
        names = []
        for column in self.columns_:
            if column in self.levels_:
                names.extend(f"{column}{SEPARATOR}{level}" for level in self.levels_[column])
            else:
                names.append(str(column))
        return np.asarray(names, dtype=object)

    def source_of(self) -> list[str]:
        """The input feature of every output column."""
        check_is_fitted(self, "levels_")
        return [str(column) for column in self.columns_
                for _ in (self.levels_[column] if column in self.levels_ else [None])]


def _frame(X) -> pd.DataFrame:  # noqa: N803
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-d table of features, got {array.ndim} dimension(s)")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


def _is_text(column: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))
