"""Training is one unit for the model registry: a `klantwaarde train` killed at any moment
leaves no challenger of its own once the next command ran, that command marks the killed
process's runs FAILED, and promote refuses the versions of a training that did not finish.
Commands refused for want of trained models write nothing. Models are logged as code; a
champion pickled by an earlier release is refused with the advice to retrain."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from conftest import EXAMPLE, SMALL_MODELS, run_cli, snapshot
from klantwaarde.config import load_config
from klantwaarde.models import registry
from klantwaarde.models.targets import NAMES

AS_OF = "2025-06-30"
TARGETS = tuple(NAMES)
# `klantwaarde ARGS...` that kills itself (SIGKILL) right after the Nth call of an MLflow
# client method: the moments between registry writes, where a crash could split a training
DYING = """
import os, signal, sys
from mlflow.tracking import MlflowClient
from klantwaarde import cli

function, after = sys.argv[1], int(sys.argv[2])
real, calls = getattr(MlflowClient, function), []

def dying(*args, **kwargs):
    found = real(*args, **kwargs)
    calls.append(function)
    if len(calls) == after:
        os.kill(os.getpid(), signal.SIGKILL)
    return found

setattr(MlflowClient, function, dying)
sys.argv = ["klantwaarde", *sys.argv[3:]]
cli.main()
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("KLANTWAARDE_DEBUG", "MLFLOW_TRACKING_URI")}


def _client(store: Path) -> MlflowClient:
    uri = f"sqlite:///{store / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _runs(client: MlflowClient) -> list:
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=10_000)


def _challengers(client: MlflowClient) -> dict[str, str]:
    """Each target's challenger version ("" where there is none)."""
    found = {}
    for target, name in NAMES.items():
        try:
            found[target] = str(client.get_model_version_by_alias(name, "challenger").version)
        except MlflowException:
            found[target] = ""
    return found


def _newest(client: MlflowClient, target: str) -> str:
    name = NAMES[target]
    return str(max(int(v.version) for v in client.search_model_versions(f"name = '{name}'")))


def _training_of(client: MlflowClient, name: str, version: str):
    run = client.get_run(client.get_model_version(name, version).run_id)
    return client.get_run(run.data.tags.get("mlflow.parentRunId", run.info.run_id))


# ------------------------------------------------------------------- refused: nothing written

@pytest.mark.parametrize("args", [["score", "--source", str(EXAMPLE), "--as-of", "2024-12-31"],
                                  ["promote", "--target", "churn"]])
def test_commands_that_need_models_write_nothing_where_none_were_trained(
        args: list[str], workdir: Path) -> None:
    result = run_cli(*args, cwd=workdir)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"no models trained yet in {workdir / 'models'}" in message
    assert "run klantwaarde train" in message and "Traceback" not in message
    assert snapshot(workdir) == {}  # no models/, no mlflow.db


# ------------------------------------------------------------- the registry without training

def _fake_training(name: str, targets: tuple[str, ...] = TARGETS
                   ) -> dict[str, registry.Version]:
    """Inside the active run: a nested run per target and a model version registered from it
    (no model behind it: the alias logic needs none)."""
    client = MlflowClient()
    found = {}
    for target in targets:
        with registry.start_run(f"{target}/{name}", nested=True) as run:
            pass
        model = NAMES[target]
        if not client.search_registered_models(f"name = '{model}'"):
            client.create_registered_model(model)
        made = client.create_model_version(model, f"runs:/{run.info.run_id}/model",
                                           run.info.run_id)
        found[target] = registry.Version(target, model, int(made.version), run.info.run_id)
    return found


@pytest.fixture
def fake_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config whose models.store is ``tmp_path/models``, connected in this process."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "models.yaml").write_text(yaml.safe_dump({"store": str(tmp_path / "models")}))
    registry.connect(load_config(config).models, create=True)
    return config


def test_a_failed_alias_move_puts_the_challengers_back_and_fails_the_training(
        fake_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(tmp_path / "models")
    real, calls = MlflowClient.set_registered_model_alias, []

    def failing(self, *args):  # the registry fails at the second of the three moves
        calls.append(args)
        if len(calls) == 2:
            raise ConnectionError("registry unreachable")
        return real(self, *args)

    def train(name: str, fails: bool) -> str:
        calls.clear()
        with monkeypatch.context() as patch, registry.start_run(f"train {name}") as run:
            if fails:
                patch.setattr(MlflowClient, "set_registered_model_alias", failing)
            registry.move_challengers(_fake_training(name))
        return run.info.run_id

    with pytest.raises(ConnectionError):  # versions 1, and no challenger before
        train("first", fails=True)
    assert _challengers(client) == dict.fromkeys(TARGETS, "")
    second = train("second", fails=False)  # versions 2
    assert _challengers(client) == dict.fromkeys(TARGETS, "2")
    with pytest.raises(ConnectionError):  # versions 3
        train("third", fails=True)
    assert _challengers(client) == dict.fromkeys(TARGETS, "2")
    status = {r.info.run_name: r.info.status for r in _runs(client)
              if "mlflow.parentRunId" not in r.data.tags}
    assert status == {"train first": "FAILED", "train second": "FINISHED",
                      "train third": "FAILED"}
    tags = client.get_run(second).data.tags
    assert {tags[f"{registry.PREVIOUS}.{t}"] for t in TARGETS} == {""}  # recorded: none before


def test_promote_refuses_a_version_of_a_training_still_running(fake_store: Path,
                                                               tmp_path: Path) -> None:
    with registry.start_run("train running") as run:
        version = _fake_training("running", ("margin",))["margin"]
        result = run_cli("promote", "--target", "margin", "--version", str(version.version),
                         "--config", str(fake_store))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert (f"klantwaarde-margin version {version.version} comes from training run "
            f"{run.info.run_id} (train running), which is RUNNING") in message
    assert "klantwaarde train" in message and "Traceback" not in message
    # this process is alive: its run was not taken for a killed one
    assert _client(tmp_path / "models").get_run(run.info.run_id).info.status == "FINISHED"


def test_the_next_command_marks_the_run_of_a_killed_process_failed(fake_store: Path,
                                                                   tmp_path: Path) -> None:
    child = f"""
import os, signal
from pathlib import Path
from klantwaarde.config import load_config
from klantwaarde.models import registry
cfg = load_config(Path({str(fake_store)!r})).models
registry.connect(cfg, cfg.experiment + "-scoring")
with registry.start_run("score {AS_OF}"):
    os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", child], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    client = _client(tmp_path / "models")
    [killed] = [r for r in _runs(client) if r.info.run_name == f"score {AS_OF}"]
    assert killed.info.status == "RUNNING"
    pid = killed.data.tags[registry.PID]

    result = run_cli("promote", "--target", "churn", "--config", str(fake_store))
    assert result.returncode == 2 and "has no challenger" in result.stderr  # refused, but ran
    killed = client.get_run(killed.info.run_id)
    assert killed.info.status == "FAILED"
    assert killed.data.tags[registry.FAILURE] == (
        f"the process (pid {pid} on {killed.data.tags[registry.HOST]}) ended without finishing "
        "the run")
    store = tmp_path / "models"
    before = snapshot(store)
    again = run_cli("promote", "--target", "churn", "--config", str(fake_store))
    assert again.returncode == 2
    assert snapshot(store) == before  # a refused command, with nothing to recover, writes nothing


def test_scoring_without_champions_writes_nothing_to_the_store(fake_store: Path,
                                                               tmp_path: Path) -> None:
    with registry.start_run("train first"):
        registry.move_challengers(_fake_training("first"))
    store = tmp_path / "models"
    before = snapshot(store)
    result = run_cli("score", "--source", str(EXAMPLE), "--as-of", "2024-12-31", "--config",
                     str(fake_store))
    assert result.returncode == 2, result.stderr
    assert "no champion for klantwaarde-churn" in result.stderr
    assert snapshot(store) == before  # not even the scoring experiment


# How an earlier release logged the champions, run with the folder of a temporary module
# (earlier_release) on the path; after it, neither that module nor klantwaarde.training.moved
# exists.
EARLIER = {
    # a PythonModel object, pickled by MLflow, of a class of that release
    "pickled": """
import mlflow
from earlier_release import CustomerModel

with registry.start_run("train by an earlier release"):
    model_id = mlflow.pyfunc.log_model(name="model", python_model=CustomerModel()).model_id
""",
    # a model logged as code whose fitted pipeline holds a class of a module since moved
    "moved": """
import types
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from klantwaarde.models.customer_model import log_model

class Constant(BaseEstimator):
    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)

moved = sys.modules["klantwaarde.training.moved"] = types.ModuleType("klantwaarde.training.moved")
Constant.__module__, moved.Constant = moved.__name__, Constant
with registry.start_run("train by an earlier release"):
    model_id = log_model("churn", "baseline", Constant(), ["x"], ["label_churn"], {},
                         pd.DataFrame({"x": [1.0]}))
"""}
REGISTERED = """
for target in ("churn", "margin", "upgrade"):
    registry.promote(target, registry.register(target, model_id).version)
"""


@pytest.mark.parametrize("logged", list(EARLIER))
def test_a_champion_of_an_earlier_release_is_refused_with_the_advice_to_retrain(
        logged: str, tmp_path: Path) -> None:
    module = tmp_path / "release"
    module.mkdir()
    (module / "earlier_release.py").write_text(
        "import mlflow.pyfunc\n\n\nclass CustomerModel(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input, params=None):\n"
        "        return model_input\n")
    config = tmp_path / "config"
    config.mkdir()
    (config / "models.yaml").write_text(yaml.safe_dump({"store": str(tmp_path / "models")}))
    (config / "scoring.yaml").write_text(yaml.safe_dump({"store": str(tmp_path / "scores.duckdb")}))
    connect = ("import sys\nfrom pathlib import Path\nfrom klantwaarde.config import load_config\n"
               "from klantwaarde.models import registry\n"
               "registry.connect(load_config(Path(sys.argv[1])).models, create=True)\n")
    path = [str(module), *filter(None, [os.environ.get("PYTHONPATH")])]
    done = subprocess.run([sys.executable, "-c", connect + EARLIER[logged] + REGISTERED,
                           str(config)], env=_env() | {"PYTHONPATH": os.pathsep.join(path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(module)  # the module of the pickled class is gone

    result = run_cli("score", "--source", str(EXAMPLE), "--as-of", "2024-12-31", "--config",
                     str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert ("klantwaarde-churn version 1 was logged by an earlier release of klantwaarde and "
            "cannot be loaded by this one; retrain: klantwaarde train --source SRC --as-of DATE "
            "and klantwaarde promote --target churn") in message
    assert "Traceback" not in message


# ---------------------------------------------------------------- killing a real training

@dataclass(frozen=True)
class Trained:
    base: Path
    config: Path
    store: Path
    seconds: float  # how long one training took here
    output: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """400 simulated customers, small models, trained once: challengers to keep, the duration
    to spread the kills over, and the output. Its own cache folder: ArviZ's once-a-day notice
    (written under it) is due."""
    root = tmp_path_factory.mktemp("units")
    base, config = root / "base", root / "config"
    result = run_cli("simulate", "--customers", "400", "--months", "24", "--start",
                     "2023-07-01", "--seed", "5", "--out", str(base))
    assert result.returncode == 0, result.stderr
    config.mkdir()
    (config / "models.yaml").write_text(yaml.safe_dump(SMALL_MODELS | {
        "store": str(root / "models"), "promotion": {"automatic": False,
                                                      "min_improvement": 0.005}}))
    started = time.monotonic()
    result = run_cli("train", "--source", str(base), "--as-of", AS_OF, "--config", str(config),
                     env={"XDG_CACHE_HOME": str(root / "cache")})
    assert result.returncode == 0, result.stderr
    return Trained(base, config, root / "models", time.monotonic() - started, result)


# What libraries print: Python warnings and the source line under one, log records
# ("2026/01/31 10:00:00 INFO mlflow.store..."), MLflow's registry messages, tracebacks.
LIBRARY = re.compile(r"Warning|^\s+warn|\b(DEBUG|INFO|WARNING)\b|mlflow|Successfully "
                     r"registered|Created version|Traceback")
# What train prints on stderr: a line per target or registered model (the rule's verdicts)
TARGET = r"(churn|margin|upgrade|response)"
OWN = re.compile(rf"({TARGET}|klantwaarde-{TARGET}): \S.*")


def test_train_prints_only_its_own_lines(trained: Trained) -> None:
    """No library notice reaches the screen; stdout names each registered version and its
    alias, in klantwaarde's words."""
    lines = trained.output.stderr.splitlines()
    assert [line for line in lines if LIBRARY.search(line) or not OWN.fullmatch(line)] == []
    assert {line.split(":")[0] for line in lines} == set(TARGETS)
    for name in NAMES.values():
        assert f"{name}: version 1 is challenger\n" in trained.output.stdout


def test_every_model_is_logged_as_code(trained: Trained) -> None:
    """MLflow's models-from-code: each logged model holds the code that loads it, the fitted
    pipeline and the training profile as artifacts, and its target, candidate, features and
    labels as model config; no PythonModel object is pickled, so MLflow warns of nothing."""
    assert "Passing a Python object" not in trained.output.stderr
    folders = [p.parent for p in (trained.store / "artifacts").rglob("MLmodel")]
    assert len(folders) >= len(NAMES) * 2  # every candidate of every target
    for folder in folders:
        flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["python_function"]
        assert Path(flavor["model_code_path"]).name == "logged_model.py", folder
        assert (folder / "logged_model.py").is_file()
        assert "python_model" not in flavor and not list(folder.glob("python_model.pkl*"))
        assert set(flavor["artifacts"]) == {"pipeline", "profile"}
        assert set(flavor["config"]) == {"target", "candidate", "features", "labels"}
    model = mlflow.pyfunc.load_model(str(folders[0])).unwrap_python_model()
    assert set(model.profile) == set(model.features) and hasattr(model.pipeline, "fit")


def _kill_training(trained: Trained, at: float | tuple[str, int]) -> int:
    """Run `klantwaarde train` and kill it (SIGKILL): ``at`` of its usual duration in, or right
    after the Nth call of an MLflow function; its pid."""
    args = ["train", "--source", str(trained.base), "--as-of", AS_OF, "--config",
            str(trained.config)]
    if isinstance(at, tuple):
        command = [sys.executable, "-c", DYING, at[0], str(at[1]), *args]
    else:
        command = [sys.executable, "-m", "klantwaarde", *args]
    process = subprocess.Popen(command, env=_env(), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=300 if isinstance(at, tuple)
                                        else at * trained.seconds)
        # killed by itself, or (rarely, on a fast moment of the machine) finished before the kill
        assert process.returncode in (-signal.SIGKILL, 0), stderr
        assert process.returncode == -signal.SIGKILL or not isinstance(at, tuple), stderr
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    return process.pid


def _check_unit(client: MlflowClient, pid: int, before: dict[str, str]) -> None:
    """After the command that followed a killed training: no run is RUNNING; the killed
    training's run is FAILED, unless it had finished; and the three challengers come from one
    finished training: the one before, or the killed one if it had finished."""
    runs = _runs(client)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    training = [r for r in runs if r.data.tags.get(registry.PID) == str(pid)
                and "mlflow.parentRunId" not in r.data.tags]  # none if killed before it began
    finished = [r for r in training if r.info.status == "FINISHED"]
    if training and not finished:
        assert training[0].info.status == "FAILED"
        assert f"(pid {pid} on " in training[0].data.tags[registry.FAILURE]
    now = _challengers(client)
    trainings = {_training_of(client, NAMES[t], v).info.run_id for t, v in now.items()}
    assert len(trainings) == 1, now  # one unit
    assert client.get_run(trainings.pop()).info.status == "FINISHED"
    assert now == before or finished, (now, before)


def _kill_and_check(trained: Trained, at: float | tuple[str, int]) -> None:
    client = _client(trained.store)
    before = _challengers(client)
    pid = _kill_training(trained, at)
    registry.connect(load_config(trained.config).models)  # what every next command does first
    _check_unit(client, pid, before)


@pytest.mark.slow  # about 2 minutes: in make test-slow, which CI runs
def test_a_training_killed_in_its_alias_moves_or_before_moves_no_challenger(
        trained: Trained, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = _client(trained.store)
    before = _challengers(client)
    # killed right after its first alias move: churn points at the new version until the next
    # command, here promote, puts it back
    pid = _kill_training(trained, ("set_registered_model_alias", 1))
    moved = _challengers(client)
    assert moved["churn"] != before["churn"] and moved["margin"] == before["margin"]
    result = run_cli("promote", "--target", "churn", "--config", str(trained.config))
    assert result.returncode == 0, result.stderr
    assert f"champion is now version {before['churn']}" in result.stdout
    _check_unit(client, pid, before)

    # its versions are registered, but promote refuses them, and writes nothing
    store = snapshot(trained.store)
    version = _newest(client, "margin")
    killed = _training_of(client, NAMES["margin"], version)
    result = run_cli("promote", "--target", "margin", "--version", version, "--config",
                     str(trained.config))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert (f"klantwaarde-margin version {version} comes from training run "
            f"{killed.info.run_id} (train {AS_OF}), which is FAILED (the process (pid {pid} "
            "on ") in message
    assert "Traceback" not in message
    assert snapshot(trained.store) == store

    for at in (("create_model_version", 1), 0.3):
        _kill_and_check(trained, at)


@pytest.mark.slow
@pytest.mark.parametrize("at", [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.88, 0.98,
                                ("create_model_version", 3),
                                ("set_registered_model_alias", 3)])
def test_a_training_killed_at_any_moment_moves_no_challenger(
        trained: Trained, at: float | tuple[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _kill_and_check(trained, at)


def test_the_response_selection_names_the_what_if_learner_by_default(tmp_path: Path) -> None:
    from klantwaarde.training.train import _selection

    (tmp_path / "models.yaml").write_text("selection: {response: qini}\n")
    assert _selection(load_config(tmp_path), "response") == ("qini", None)  # by the metric
    assert _selection(load_config(), "response") == ("qini", "what_if")  # the default
    assert _selection(load_config(), "churn") == ("roc_auc", None)
