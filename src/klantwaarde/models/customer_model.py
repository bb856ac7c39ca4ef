"""The model MLflow logs and registers for every target: a fitted candidate with its pinned
feature list, logged as code (MLflow's models-from-code).

``log_model`` saves what the candidate learned as the model's artifacts (the fitted pipeline
with joblib, the profile of its training data as JSON) and what it reads and predicts (target,
candidate, features, labels) as its model config, which MLflow also logs as parameters of the
run. The code MLflow logs with them is ``logged_model.py``, which sets a ``CustomerModel``;
``load_model`` runs that code, and ``CustomerModel.load_context`` reads the artifacts and the
config back.

Whatever the candidate, ``predict`` takes the feature table (``klantwaarde features`` columns;
extra columns are ignored) and returns one row per input row, in the columns of
``targets.output_columns``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Collection
from importlib.metadata import version as installed
from pathlib import Path

import joblib
import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow as pa
from mlflow.models.model import MODEL_CODE_PATH
from sklearn.base import BaseEstimator

from klantwaarde.errors import InputError
from klantwaarde.features import FeatureSet
from klantwaarde.models.fitted import contributions, predict
from klantwaarde.models.registry import Version
from klantwaarde.models.targets import TargetName, output_columns

CODE = Path(__file__).with_name("logged_model.py")
PIPELINE, PROFILE = "pipeline", "profile"  # the artifacts: joblib, JSON
# what the logged model needs installed: (pip name, distribution installed here)
REQUIREMENTS = (("mlflow", "mlflow"), ("scikit-learn", "scikit-learn"),
                ("xgboost", "xgboost-cpu"), ("pandas", "pandas"), ("numpy", "numpy"),
                ("econml", "econml"), ("joblib", "joblib"))


def model_input(fs: FeatureSet) -> pd.DataFrame:
    """The feature table as the models read it, at training and at scoring: numbers and flags
    as floats (a missing value stays NaN), text as text, the labels as they are."""
    return model_frame(fs.table.to_pyarrow(), {f.name for f in fs.features})


def model_frame(table: pa.Table, features: Collection[str]) -> pd.DataFrame:
    """``model_input`` of rows of the feature table in Arrow, ``features`` the names of its
    features: of the whole table, or of a batch of it (Spark's partitions)."""
    columns = [c.cast(pa.float64()) if name in features
               and (pa.types.is_boolean(c.type) or pa.types.is_integer(c.type)) else c
               for name, c in zip(table.column_names, table.columns, strict=True)]
    frame = pa.table(columns, names=table.column_names).to_pandas()
    frame["as_of"] = pd.to_datetime(frame.as_of).dt.date
    return frame


def outputs(target: TargetName, pipeline: BaseEstimator, X: pd.DataFrame,  # noqa: N803
            labels: list[str]) -> pd.DataFrame:
    """The predictions of ``pipeline`` for the rows of ``X``, in the target's output columns."""
    columns = output_columns(target, labels)
    values = np.asarray(predict(target, pipeline, X, len(labels)), float)
    return pd.DataFrame(values.reshape(len(X), len(columns)), columns=columns, index=X.index)


class CustomerModel(mlflow.pyfunc.PythonModel):
    """One target's fitted pipeline, the features it reads (in order), its labels, and the
    profile of its training data (``drift``), as ``load_context`` reads them."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        config = context.model_config
        self.target: TargetName = config["target"]
        self.candidate: str = config["candidate"]
        self.features: list[str] = config["features"]
        self.labels: list[str] = config["labels"]
        self.pipeline: BaseEstimator = joblib.load(context.artifacts[PIPELINE])
        self.profile: dict[str, dict] = json.loads(Path(context.artifacts[PROFILE]).read_text())

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ValueError(f"the {self.target} model reads features the table lacks: "
                             f"{', '.join(missing[:10])}")
        return frame[self.features]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return outputs(self.target, self.pipeline, self.inputs(model_input), self.labels)

    @property
    def explains(self) -> bool:
        """Whether ``contributions`` gives any: xgboost only."""
        return self.candidate == "xgboost"

    def contributions(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]] | None:
        """TreeSHAP contributions per feature (xgboost only; None for the other candidates)."""
        if not self.explains:
            return None
        return contributions(self.pipeline, self.inputs(frame))


def log_model(target: TargetName, candidate: str, pipeline: BaseEstimator, features: list[str],
              labels: list[str], profile: dict[str, dict], example: pd.DataFrame) -> str:
    """Log a fitted candidate as a model of the active run, with its signature and ``example``
    (a few rows of ``features``) as input example; its model id."""
    config = {"target": target, "candidate": candidate, "features": features, "labels": labels}
    signature = mlflow.models.infer_signature(
        example, outputs(target, pipeline, example[features], labels))
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = {PIPELINE: Path(tmp) / "pipeline.joblib", PROFILE: Path(tmp) / "profile.json"}
        joblib.dump(pipeline, artifacts[PIPELINE])
        artifacts[PROFILE].write_text(json.dumps(profile))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=CODE,
            artifacts={name: str(path) for name, path in artifacts.items()},
            model_config=config, signature=signature, input_example=example,
            pip_requirements=[f"{name}=={installed(dist)}" for name, dist in REQUIREMENTS])
    return info.model_id


def load_model(version: Version) -> tuple[CustomerModel, dict[str, str]]:
    """A registered model version and the input columns of its signature with their MLflow
    types. A version this release cannot load is an input error that says to retrain: one
    logged by an earlier release as a pickled object rather than as code, or whose fitted
    pipeline holds a class of a klantwaarde module that is gone."""
    uri = f"models:/{version.name}/{version.version}"
    earlier = InputError(
        f"{version.name} version {version.version} was logged by an earlier release of "
        "klantwaarde and cannot be loaded by this one; retrain: klantwaarde train --source SRC "
        f"--as-of DATE and klantwaarde promote --target {version.target}.")
    flavor = mlflow.models.get_model_info(uri).flavors.get(mlflow.pyfunc.FLAVOR_NAME, {})
    if MODEL_CODE_PATH not in flavor:
        raise earlier
    try:
        loaded = mlflow.pyfunc.load_model(uri)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("klantwaarde."):
            raise
        raise earlier from exc
    schema = loaded.metadata.get_input_schema()
    inputs = {c.name: getattr(c.type, "name", str(c.type))
              for c in (schema.inputs if schema else [])}
    return loaded.unwrap_python_model(), inputs
