"""MLflow as the system of record: where runs go, which model version holds which alias.

Without ``MLFLOW_TRACKING_URI`` runs and the model registry live in a SQLite database and an
artifact folder under ``models.store`` (default ``models/``); with it, on that server. Training
and scoring meet only at the aliases ``challenger`` and ``champion`` of the registered models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from klantwaarde.config import ModelsConfig
from klantwaarde.errors import InputError

NAMES = {"churn": "klantwaarde-churn", "margin": "klantwaarde-margin",
         "upgrade": "klantwaarde-upgrade"}
CHALLENGER, CHAMPION = "challenger", "champion"


# mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI in this process: the embedded store
# connected last is remembered, so that a later connect with another config is not taken for
# a server the user chose.
_embedded: str | None = None


def connect(cfg: ModelsConfig, experiment: str | None = None) -> str:
    """Point MLflow at the server of ``MLFLOW_TRACKING_URI`` or the embedded store; make the
    experiment (default: the training experiment of ``cfg``) exist; return the tracking URI."""
    global _embedded
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    artifacts = None
    if not uri or uri == _embedded:
        store = cfg.store.resolve()
        store.mkdir(parents=True, exist_ok=True)
        uri = _embedded = f"sqlite:///{store / 'mlflow.db'}"
        artifacts = (store / "artifacts").as_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = experiment or cfg.experiment
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)
    return uri


@dataclass(frozen=True)
class Version:
    target: str
    name: str
    version: int
    run_id: str


def alias_version(target: str, alias: str) -> Version | None:
    """The version that holds ``alias`` of the target's registered model, if any."""
    name = NAMES[target]
    try:
        found = MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return Version(target, name, int(found.version), found.run_id)


def register(target: str, model_uri: str) -> Version:
    """Register a logged model as a new version and give it the challenger alias."""
    name = NAMES[target]
    found = mlflow.register_model(model_uri, name)
    MlflowClient().set_registered_model_alias(name, CHALLENGER, found.version)
    return Version(target, name, int(found.version), found.run_id)


def promote(target: str, version: int | None = None) -> Version:
    """Move the champion alias to ``version`` (default: the challenger's version)."""
    name = NAMES[target]
    client = MlflowClient()
    if version is None:
        challenger = alias_version(target, CHALLENGER)
        if challenger is None:
            raise InputError(f"{name} has no challenger to promote. Train first "
                             "(klantwaarde train), or pass --version N.")
        version = challenger.version
    try:
        found = client.get_model_version(name, str(version))
    except MlflowException:
        known = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
        raise InputError(f"{name} has no version {version}; its versions are "
                         f"{', '.join(map(str, known)) or 'none (train first)'}.") from None
    client.set_registered_model_alias(name, CHAMPION, found.version)
    return Version(target, name, int(found.version), found.run_id)
