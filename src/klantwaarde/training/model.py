"""The model MLflow logs and registers: a fitted candidate with its pinned feature list.

Whatever the candidate, ``predict`` takes the feature table (``klantwaarde features`` columns;
extra columns are ignored) and returns one row per input row:

- churn: ``churn_probability``;
- margin: ``future_net_margin`` (over the label horizon);
- upgrade: ``upgrade_probability`` and one ``adopt__<category>`` probability per category;
- response: ``contact_effect``, the reduction in churn probability over the horizon that a
  visit or call in the next month brings (NaN where the history gives no estimate).
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.pipeline import Pipeline

from klantwaarde.features import FeatureSet
from klantwaarde.training.candidates import TargetName, contributions, predict
from klantwaarde.training.response import ResponseModel


def model_input(fs: FeatureSet) -> pd.DataFrame:
    """The feature table as the models read it, at training and at scoring: numbers and flags
    as floats (a missing value stays NaN), text as text, the labels as they are."""
    table = fs.table.to_pyarrow()
    features = {f.name for f in fs.features}
    columns = [c.cast(pa.float64()) if name in features
               and (pa.types.is_boolean(c.type) or pa.types.is_integer(c.type)) else c
               for name, c in zip(table.column_names, table.columns, strict=True)]
    frame = pa.table(columns, names=table.column_names).to_pandas()
    frame["as_of"] = pd.to_datetime(frame.as_of).dt.date
    return frame


def output_columns(target: TargetName, labels: list[str]) -> list[str]:
    if target == "churn":
        return ["churn_probability"]
    if target == "margin":
        return ["future_net_margin"]
    if target == "response":
        return ["contact_effect"]
    return ["upgrade_probability" if label == "label_upgrade" else
            label.replace("label_adopt__", "adopt__") for label in labels]


class CustomerModel(mlflow.pyfunc.PythonModel):
    """One target's fitted pipeline, the features it reads (in order), its outputs, and the
    profile of its training data (``scoring.drift``)."""

    def __init__(self, target: TargetName, candidate: str, pipeline: Pipeline | ResponseModel,
                 features: list[str], labels: list[str], profile: dict[str, dict]) -> None:
        self.target = target
        self.candidate = candidate
        self.pipeline = pipeline
        self.features = features
        self.labels = labels
        self.profile = profile

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ValueError(f"the {self.target} model reads features the table lacks: "
                             f"{', '.join(missing[:10])}")
        return frame[self.features]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        values = predict(self.target, self.pipeline, self.inputs(model_input), len(self.labels))
        columns = output_columns(self.target, self.labels)
        return pd.DataFrame(np.asarray(values, float).reshape(len(model_input), len(columns)),
                            columns=columns, index=model_input.index)

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]] | None:
        """TreeSHAP contributions per feature (xgboost only; None for the other candidates)."""
        if self.candidate != "xgboost":
            return None
        return contributions(self.pipeline, self.inputs(frame))
