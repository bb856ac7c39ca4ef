"""MLflow as the system of record: where runs go, which model version holds which alias.

Without ``MLFLOW_TRACKING_URI`` runs and the model registry live in a SQLite database and an
artifact folder under ``models.store`` (default ``models/``); with it, on that server. Training
and scoring meet only at the aliases ``challenger`` and ``champion`` of the registered models.

A training moves the challenger aliases of all targets together, at its end, after recording the
challengers before on its run. Every run klantwaarde opens is tagged with its process, so that
the next ``connect`` on the same machine marks the runs of a killed process FAILED and puts back
the challengers a killed training had moved.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

from klantwaarde.config import ModelsConfig
from klantwaarde.errors import InputError
from klantwaarde.models.targets import NAMES

CHALLENGER, CHAMPION = "challenger", "champion"
DATABASE = "mlflow.db"
# tags of every run klantwaarde opens: the process that opened it
HOST, PID, NAMESPACE, STARTED = ("klantwaarde.host", "klantwaarde.pid",
                                 "klantwaarde.pid_namespace", "klantwaarde.started")
FAILURE = "klantwaarde.failure"  # why the next command marked a run FAILED
PREVIOUS = "klantwaarde.previous_challenger"  # .TARGET on a training run: the version before it


# mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI in this process: the embedded store
# connected last is remembered, so that a later connect with another config is not taken for
# a server the user chose.
_embedded: str | None = None
# the experiment of the last connect and where its artifacts go: made by its first run
_experiment: tuple[str, str | None] = ("", None)


def connect(cfg: ModelsConfig, experiment: str | None = None, *, create: bool = False) -> str:
    """Point MLflow at the server of ``MLFLOW_TRACKING_URI`` or the embedded store, select the
    experiment (default: the training experiment of ``cfg``), mark the runs of killed processes
    failed, and return the tracking URI. Only with ``create`` is a missing embedded store made;
    without it that is an input error, and nothing is written."""
    global _embedded, _experiment
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    artifacts = None
    if not uri or uri == _embedded:
        store = cfg.store.resolve()
        if not create and not (store / DATABASE).is_file():
            raise InputError(
                f"models: no models trained yet in {store} (no {DATABASE} there); run "
                "klantwaarde train --source SRC --as-of DATE first (and klantwaarde promote "
                "--target TARGET to make champions), or set MLFLOW_TRACKING_URI to the MLflow "
                "server that holds the models.")
        store.mkdir(parents=True, exist_ok=True)
        uri = _embedded = f"sqlite:///{store / DATABASE}"
        artifacts = (store / "artifacts").as_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    _experiment = (experiment or cfg.experiment, artifacts)
    found = mlflow.get_experiment_by_name(_experiment[0])
    if found is not None:
        mlflow.set_experiment(experiment_id=found.experiment_id)
    recover()
    return uri


def start_run(run_name: str, nested: bool = False) -> mlflow.ActiveRun:
    """An MLflow run (a context manager) tagged with this process; a top-level one in the
    experiment of the last ``connect``, which its first run creates."""
    if not nested:
        name, artifacts = _experiment
        found = mlflow.get_experiment_by_name(name)
        mlflow.set_experiment(experiment_id=found.experiment_id if found else
                              mlflow.create_experiment(name, artifact_location=artifacts))
    return mlflow.start_run(run_name=run_name, nested=nested, tags=_process())


def _process(pid: int | None = None) -> dict[str, str]:
    """The tags that name process ``pid`` (default: this one) on this machine. The start time
    (Linux: boot id and clock ticks after boot) tells the process from a later one with its pid."""
    pid = pid or os.getpid()
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        ticks = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        namespace = os.readlink("/proc/self/ns/pid")
    except (OSError, IndexError):
        boot = ticks = namespace = ""
    return {HOST: socket.gethostname(), PID: str(pid), NAMESPACE: namespace,
            STARTED: f"{boot}:{ticks}" if ticks else ""}


def _alive(tags: dict[str, str]) -> bool:
    """Whether the process named by a run's tags still runs (on this machine)."""
    pid = int(tags[PID])
    started = _process(pid)[STARTED]
    if started and tags.get(STARTED):
        return started == tags[STARTED]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def recover() -> None:
    """Mark FAILED every RUNNING run whose process on this machine has ended, then put back each
    challenger alias that points at a version of a training that did not finish."""
    me = _process()
    client = MlflowClient()
    running = mlflow.search_runs(
        search_all_experiments=True, output_format="list",
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST}` = '{me[HOST]}'")
    dead = [r for r in running if r.data.tags.get(NAMESPACE, "") == me[NAMESPACE]
            and not _alive(r.data.tags)]
    for run in dead:
        tags = run.data.tags
        client.set_tag(run.info.run_id, FAILURE, f"the process (pid {tags[PID]} on {tags[HOST]}) "
                                                 "ended without finishing the run")
        client.set_terminated(run.info.run_id, "FAILED")
    for target in NAMES:
        current = alias_version(target, CHALLENGER)
        training = training_run(current) if current else None
        if training is not None and training.info.status in ("FAILED", "KILLED"):
            previous = training.data.tags.get(f"{PREVIOUS}.{target}")
            if previous is not None:
                _set_challenger(target, previous)


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


def model_version(target: str, number: int) -> Version | None:
    """Version ``number`` of the target's registered model, if the registry has it."""
    name = NAMES[target]
    try:
        found = MlflowClient().get_model_version(name, str(number))
    except MlflowException:
        return None
    return Version(target, name, int(found.version), found.run_id)


def training_run(version: Version) -> Run | None:
    """The training run of a version: the parent of the (candidate) run that logged it; None
    for a version registered without a run, or whose run is gone."""
    if not version.run_id:
        return None
    client = MlflowClient()
    try:
        run = client.get_run(version.run_id)
        parent = run.data.tags.get("mlflow.parentRunId")
        return client.get_run(parent) if parent else run
    except MlflowException:
        return None


def register(target: str, model_id: str) -> Version:
    """Register a logged model as a new version (no alias yet: see ``move_challengers``).
    Through the client, which prints nothing (``mlflow.register_model`` prints each step)."""
    name, client = NAMES[target], MlflowClient()
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    found = client.create_model_version(name, f"models:/{model_id}", model_id=model_id)
    # the logged model links to its version, as mlflow.register_model records it
    client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(
        [{"name": name, "version": found.version}])})
    return Version(target, name, int(found.version), found.run_id)


def move_challengers(versions: dict[str, Version]) -> None:
    """Give every version of ``versions`` the challenger alias, as one unit: the challengers
    before are recorded on the active (training) run first, and put back if a move fails here,
    or by the next ``connect`` if this process is killed."""
    before = {t: alias_version(t, CHALLENGER) for t in versions}
    previous = {t: str(v.version) if v else "" for t, v in before.items()}
    mlflow.set_tags({f"{PREVIOUS}.{t}": v for t, v in previous.items()})
    try:
        for target, version in versions.items():
            _set_challenger(target, str(version.version))
    except BaseException:
        for target, version in previous.items():
            _set_challenger(target, version)
        raise


def _set_challenger(target: str, version: str) -> None:
    """Move the challenger alias to ``version``; remove it for ""."""
    client = MlflowClient()
    if version:
        client.set_registered_model_alias(NAMES[target], CHALLENGER, version)
    elif alias_version(target, CHALLENGER) is not None:
        client.delete_registered_model_alias(NAMES[target], CHALLENGER)


def promote(target: str, version: int | None = None) -> Version:
    """Move the champion alias to ``version`` (default: the challenger's version); refused for a
    version whose training did not finish."""
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
    chosen = Version(target, name, int(found.version), found.run_id)
    training = training_run(chosen)
    if training is not None and training.info.status != "FINISHED":
        why = training.data.tags.get(FAILURE)
        raise InputError(
            f"{name} version {chosen.version} comes from training run {training.info.run_id} "
            f"({training.info.run_name}), which is {training.info.status}"
            f"{f' ({why})' if why else ''}: a training that did not finish gives no champion. "
            f"Promote a version of a finished training (klantwaarde promote --target {target} "
            "--version N), or train again (klantwaarde train --source SRC --as-of DATE).")
    client.set_registered_model_alias(name, CHAMPION, found.version)
    return chosen
