"""The champion model of each target, resolved once per scoring run and checked against the
features it is about to read. Churn, margin and upgrade need one; the response model is
optional (a source without interactions has none)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import mlflow
import pandas as pd

from klantwaarde.errors import InputError
from klantwaarde.models import registry
from klantwaarde.models.customer_model import CustomerModel, load_model
from klantwaarde.models.targets import NAMES, OPTIONAL, REQUIRED, TargetName


@dataclass(frozen=True)
class Champion:
    version: registry.Version
    model: CustomerModel
    inputs: dict[str, str]  # the signature's input columns and their MLflow types
    trained_as_of: dt.date | None  # the --as-of of its training: it saw outcomes up to it


def load_champions() -> dict[TargetName, Champion]:
    """Each target's champion, loaded by version number: the alias is read once, so a promote
    during the run cannot mix two versions. Without a champion: an input error that says how to
    get one. An optional target without a champion is left out."""
    versions = {t: registry.alias_version(t, registry.CHAMPION) for t in REQUIRED + OPTIONAL}
    missing = [t for t, v in versions.items() if v is None and t in REQUIRED]
    if missing:
        names = ", ".join(NAMES[t] for t in missing)
        raise InputError(
            f"models: no champion for {names} in the model registry "
            f"({mlflow.get_tracking_uri()}). Run klantwaarde train --source SRC --as-of DATE, "
            f"then klantwaarde promote --target {missing[0]} (for each of "
            f"{', '.join(missing)}), or set MLFLOW_TRACKING_URI to the registry that has them.")
    return {target: _load(version) for target, version in versions.items()
            if version is not None}


def load_version(target: TargetName, number: int) -> Champion:
    """Version ``number`` of the target's registered model, whatever alias it holds now (the
    version stamped on a score row); an input error naming the versions there are otherwise."""
    version = registry.model_version(target, number)
    if version is None:
        raise InputError(
            f"models: {NAMES[target]} has no version {number} in the model registry "
            f"({mlflow.get_tracking_uri()}), which scored this row. Fix: set "
            "MLFLOW_TRACKING_URI (or models.yaml store) to the registry the month was scored "
            "with, or score the month again with today's champions.")
    return _load(version)


def _load(version: registry.Version) -> Champion:
    model, inputs = load_model(version)
    return Champion(version, model, inputs, trained_as_of(version))


def trained_as_of(version: registry.Version) -> dt.date | None:
    """The --as-of of the training that made ``version``: the parameter ``as_of`` of its
    training run; None for a model logged some other way, or whose run is gone."""
    training = registry.training_run(version)
    found = training.data.params.get("as_of") if training is not None else None
    return dt.date.fromisoformat(found) if found else None


def check_inputs(champions: dict[TargetName, Champion], frame: pd.DataFrame,
                 skipped: tuple[str, ...]) -> None:
    """Every feature a champion's signature names is in ``frame`` with a matching kind (number
    or text); otherwise an input error naming the model, the features and the fix."""
    problems = []
    for champion in champions.values():
        v = champion.version
        missing = [n for n in champion.inputs if n not in frame.columns]
        wrong = [f"{n} (model: {t}, data: {frame[n].dtype})" for n, t in champion.inputs.items()
                 if n in frame.columns and _is_text(t) != _is_text_column(frame[n])]
        if missing:
            problems.append(f"{v.name} version {v.version} reads features the data does not "
                            f"give: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        if wrong:
            problems.append(f"{v.name} version {v.version} reads features of another kind: "
                            f"{', '.join(wrong[:8])}")
    if problems:
        why = f" Left out of this source's features: {'; '.join(skipped)}." if skipped else ""
        raise InputError(
            "features: the champion models do not fit this source's features. "
            + "; ".join(problems) + "." + why + " Fix: score the source the champions were "
            "trained on (same tables and columns), or train and promote new champions on this "
            "source.")


def _is_text(mlflow_type: str) -> bool:
    return mlflow_type.lower().startswith("string")


def _is_text_column(column: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))
