"""Pipelines: the files in pipelines/, `klantwaarde run` and `klantwaarde schedule` — a month run
and re-run, missed months caught up in order under a lock, training and promotion as steps."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import mlflow
import pandas as pd
import pytest
import yaml
from apscheduler.triggers.interval import IntervalTrigger
from filelock import FileLock
from typer.testing import CliRunner

from conftest import run_cli, simulated_base
from klantwaarde.cli import app
from klantwaarde.errors import InputError
from klantwaarde.pipelines import (
    catch_up,
    completed,
    due,
    latest_fire,
    load_pipeline,
    record_path,
)
from klantwaarde.pipelines.scheduler import serve
from klantwaarde.pipelines.spec import ScheduleSpec
from klantwaarde.scoring.store import scored_months
from klantwaarde.staging import staged_folder

SHIPPED = Path(__file__).parents[1] / "pipelines"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
JULY_FIRST = dt.datetime(2025, 7, 1, 7, 0, tzinfo=AMSTERDAM)  # after the fire of 06:00
MONTHLY = {"schedule": {"cron": "0 6 1 * *", "timezone": "Europe/Amsterdam"},
           "steps": ["score", {"lists": {"out": "lists/{as_of}"}}, "evaluate"]}


def _pipeline(folder: Path, name: str, **spec: object) -> Path:
    """A pipeline file ``name``.yaml in ``folder``, its runs folder beside it."""
    file = folder / f"{name}.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    file.write_text(yaml.safe_dump({"runs": str(folder / "runs" / name)} | spec,
                                   sort_keys=False))
    return file


def _record(file: Path, as_of: str) -> dict:
    return json.loads(record_path(load_pipeline(file), dt.date.fromisoformat(as_of)).read_text())


# ------------------------------------------------------------------------- the pipeline files

def test_the_shipped_pipelines_load_and_validate(workdir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)  # their paths are taken from the working directory
    monthly = load_pipeline(SHIPPED / "monthly_scoring.yaml")
    assert [s.step for s in monthly.spec.steps] == ["score", "lists", "evaluate"]
    assert monthly.schedule().cron == "0 6 1 * *" and monthly.spec.source == "demo/source"
    assert monthly.spec.steps[1].folder(dt.date(2025, 6, 30)) == Path("lists/2025-06-30")
    training = load_pipeline(SHIPPED / "training.yaml", source="elsewhere")
    assert [s.step for s in training.spec.steps] == ["train", "promote"]
    assert training.spec.schedule is None and training.spec.source == "elsewhere"
    # the first of the month at 06:00 in Amsterdam stands for the month's end
    assert due(monthly, JULY_FIRST) == [dt.date(2025, 6, 30)]
    assert not any(workdir.iterdir())  # loading and planning write nothing


@pytest.mark.parametrize(("spec", "expected"), [
    ({"steps": ["score", "scroe"]}, "steps: step 2: unknown step 'scroe'; the steps are score, "
     "lists, evaluate, train, promote. Did you mean 'score'?"),
    ({"schedul": {"cron": "0 6 1 * *"}, "steps": ["score"]},
     "key 'schedul': unknown key; allowed keys: description, source, config, schedule, runs, "
     "steps. Did you mean 'schedule'?"),
    ({"schedule": {"cron": "0 6 1 *"}, "steps": ["score"]},
     "key 'schedule.cron': not a cron expression of five fields"),
    ({"schedule": {"cron": "0 6 * * 1"}, "steps": ["score"]},
     "write the day of the week as a name"),
    ({"schedule": {"cron": "0 6 1 * *", "timezone": "Amsterdam"}, "steps": ["score"]},
     "key 'schedule.timezone': not a time zone"),
    ({"steps": ["score", {"lists": {"out": "lists/latest"}}]},
     "steps: step 2 (lists), key 'out': must hold {as_of}"),
    ({"steps": ["score", {"lists": {"outt": "lists/{as_of}"}}]},
     "steps: step 2 (lists), key 'outt': unknown key; allowed keys: out. Did you mean 'out'?"),
    ({"steps": ["promote", "train"]}, "put - train before - promote"),
    ({"steps": []}, "key 'steps': Tuple should have at least 1 item"),
])
def test_a_bad_pipeline_file_exits_2_naming_the_file_and_the_key(
        spec: dict, expected: str, tmp_path: Path, workdir: Path) -> None:
    file = _pipeline(tmp_path, "bad", source="src", **spec)
    result = run_cli("run", str(file), "--as-of", "2025-06-30", cwd=workdir)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"{file}: invalid pipeline." in message and expected in message
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() and not any(workdir.iterdir())


def test_a_pipeline_without_source_or_schedule_says_what_to_pass(tmp_path: Path) -> None:
    file = _pipeline(tmp_path, "p", steps=["score"])
    result = run_cli("run", str(file), "--as-of", "2025-06-30")
    assert result.returncode == 2
    assert "key 'source' is missing" in result.stderr and "--source" in result.stderr
    result = run_cli("run", str(file), "--source", "src")
    assert result.returncode == 2
    assert f"{file} has no schedule" in " ".join(result.stderr.split())
    assert "--as-of" in result.stderr


# ------------------------------------------------------------------------- months due

def test_due_months_follow_the_schedule_in_its_time_zone_and_the_records(tmp_path: Path) -> None:
    file = _pipeline(tmp_path, "p", schedule=MONTHLY["schedule"], steps=["lists"])
    pipeline = load_pipeline(file)
    # a first start without schedule.start: only the latest fire is due
    assert due(pipeline, JULY_FIRST) == [dt.date(2025, 6, 30)]
    # 05:30 in Amsterdam is before the fire of 06:00: June 1st's fire is the latest
    assert due(pipeline, dt.datetime(2025, 7, 1, 5, 30, tzinfo=AMSTERDAM)) == [
        dt.date(2025, 5, 31)]
    # 04:30 UTC is 06:30 in Amsterdam (summer time)
    assert due(pipeline, dt.datetime(2025, 7, 1, 4, 30, tzinfo=dt.UTC)) == [dt.date(2025, 6, 30)]
    # after a recorded month: every fire after it, oldest first
    (pipeline.spec.runs / "2025-02-28.json").parent.mkdir(parents=True)
    (pipeline.spec.runs / "2025-02-28.json").write_text("{}")
    assert due(pipeline, JULY_FIRST) == [dt.date(2025, d, n) for d, n in
                                         ((3, 31), (4, 30), (5, 31), (6, 30))]
    # with schedule.start: every fire from it on that has no record, holes included
    file = _pipeline(tmp_path, "p", schedule=MONTHLY["schedule"] | {"start": "2025-01-31"},
                     steps=["lists"])
    (pipeline.spec.runs / "2025-04-30.json").write_text("{}")
    assert due(load_pipeline(file), JULY_FIRST) == [dt.date(2025, 1, 31), dt.date(2025, 3, 31),
                                                    dt.date(2025, 5, 31), dt.date(2025, 6, 30)]


def test_the_latest_fire_of_a_yearly_schedule_is_found() -> None:
    yearly = ScheduleSpec(cron="0 6 1 1 *", timezone="UTC")
    assert latest_fire(yearly, JULY_FIRST) == dt.datetime(2025, 1, 1, 6, tzinfo=dt.UTC)


def test_the_scheduler_calls_the_job_at_each_fire_and_stops_on_ctrl_c(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = load_pipeline(_pipeline(tmp_path, "p", schedule=MONTHLY["schedule"],
                                       steps=["lists"]))
    monkeypatch.setattr(ScheduleSpec, "trigger", lambda self: IntervalTrigger(seconds=0.2))
    calls = []

    def job(fired: object) -> None:
        calls.append(fired)
        if len(calls) == 3:
            raise KeyboardInterrupt

    started = time.monotonic()
    serve([pipeline], job)  # returns on Ctrl-C during a job
    assert calls == [pipeline] * 3 and time.monotonic() - started < 10


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in this process, also where the tests were started with
    SIGINT ignored (a background job of a shell without job control, as some CI runners do)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_stops_the_waiting_scheduler(tmp_path: Path) -> None:
    pipeline = load_pipeline(_pipeline(tmp_path, "p", schedule=MONTHLY["schedule"],
                                       steps=["lists"]))
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    serve([pipeline], lambda _: pytest.fail("no fire is due within seconds"))
    assert time.monotonic() - started < 10


def test_a_busy_pipeline_is_skipped_by_run_and_schedule(tmp_path: Path) -> None:
    file = _pipeline(tmp_path, "p", schedule=MONTHLY["schedule"], steps=["lists"])
    lock = load_pipeline(file).lock_file
    lock.parent.mkdir(parents=True)
    with FileLock(lock):
        result = run_cli("run", str(file), "--as-of", "2025-06-30")
        assert result.returncode == 2
        assert f"another klantwaarde run/schedule holds {lock} — skipped" in result.stderr
        result = run_cli("schedule", "--pipeline", str(file), "--once")
        assert result.returncode == 0, result.stderr
        assert f"skipped another klantwaarde run/schedule holds {lock}" in result.stderr
    assert completed(load_pipeline(file)) == []


def _failing_pipeline(tmp_path: Path) -> Path:
    """A scheduled pipeline whose only step, lists, fails: its scores table is empty."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "scoring.yaml").write_text(
        yaml.safe_dump({"store": str(tmp_path / "empty.duckdb")}))
    return _pipeline(tmp_path, "p", config=str(tmp_path / "config"),
                     schedule=MONTHLY["schedule"], steps=["lists"])


def test_without_as_of_the_month_comes_from_the_latest_fire_not_the_data(
        tmp_path: Path) -> None:
    file = _failing_pipeline(tmp_path)
    expected = latest_fire(load_pipeline(file).schedule(), dt.datetime.now(dt.UTC))
    month = (expected.date() - dt.timedelta(days=1)).isoformat()
    result = run_cli("run", str(file))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"No --as-of: {month}, the day before the latest fire" in result.stdout
    assert f"holds no scores at {month}" in " ".join(result.stderr.split())
    result = run_cli("schedule", "--pipeline", str(file), "--once")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"holds no scores at {month}" in " ".join(result.stderr.split())
    assert completed(load_pipeline(file)) == []  # a failed month stays due


def test_the_waiting_scheduler_survives_a_failing_month_and_stops_on_ctrl_c(
        tmp_path: Path) -> None:
    file = _failing_pipeline(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    child = subprocess.Popen([sys.executable, "-m", "klantwaarde", "schedule", "--pipeline",
                              str(file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env | {"COLUMNS": "200"},
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    lines = []
    while not lines or lines[-1] != "Waiting; Ctrl-C stops.\n":
        assert time.monotonic() < deadline and child.poll() is None, child.stderr.read()
        lines.append(child.stdout.readline())
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    assert "holds no scores at" in stderr and "tried again at the next fire" in stderr
    assert any(line.startswith("p: next fire at ") for line in lines)
    assert "Stopped." in stdout and "Traceback" not in stderr
    assert completed(load_pipeline(file)) == []


def test_lists_replace_their_own_earlier_output_only(tmp_path: Path) -> None:
    target = tmp_path / "lists" / "2025-06-30"
    with staged_folder(target, "lists", replaces="index.csv") as folder:
        (folder / "index.csv").write_text("first\n")
        (folder / "old.csv").write_text("x\n")
    with staged_folder(target, "lists", replaces="index.csv") as folder:
        (folder / "index.csv").write_text("second\n")
    assert sorted(p.name for p in target.iterdir()) == ["index.csv"]
    assert (target / "index.csv").read_text() == "second\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["2025-06-30"]  # nothing left over
    with pytest.raises(RuntimeError), staged_folder(target, "lists", replaces="index.csv") as f:
        (f / "index.csv").write_text("third\n")
        raise RuntimeError("a failing run")
    assert (target / "index.csv").read_text() == "second\n"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "report.docx").write_text("someone's")
    with pytest.raises(InputError, match="did not write"), \
            staged_folder(foreign, "lists", replaces="index.csv"):
        pass
    assert [p.name for p in foreign.iterdir()] == ["report.docx"]


# ------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A simulated base, a config folder with its own stores, and champions made by the
    training pipeline: train, then promote (promotion.automatic is off)."""
    root = tmp_path_factory.mktemp("pipelines")
    base, config = simulated_base(root, root / "scores.duckdb", automatic=False)
    runner = CliRunner()
    training = _pipeline(root, "training", source=str(base), config=str(config),
                         steps=["train", "promote"])
    result = runner.invoke(app, ["run", str(training), "--as-of", "2025-06-30"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return {"root": root, "base": base, "config": config, "training": training,
            "training_output": result.output}


def test_the_training_pipeline_trains_and_its_promote_step_promotes(
        setup: dict[str, Path]) -> None:
    record = _record(setup["training"], "2025-06-30")
    assert [(s["name"], s["status"]) for s in record["steps"]] == [("train", "ok"),
                                                                 ("promote", "ok")]
    train, promote = record["steps"]
    # training judged the challengers but did not promote them (automatic is off) ...
    assert any("no champion yet; the challenger version 1 wins" in n for n in train["notices"])
    assert any("not promoted, promotion.automatic is off" in n for n in train["notices"])
    # ... the promote step did
    assert promote["summary"] == "champion now churn v1, margin v1, upgrade v1, response v1"
    mlflow.set_tracking_uri(f"sqlite:///{setup['root'] / 'models' / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    for target in ("churn", "margin", "upgrade"):
        champion = client.get_model_version_by_alias(f"klantwaarde-{target}", "champion")
        assert int(champion.version) == 1
    assert "champion now churn v1" in " ".join(setup["training_output"].split())


def _scores(store: Path, as_of: str) -> pd.DataFrame:
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute("SELECT * FROM scores WHERE as_of = ? ORDER BY customer_id",
                           [dt.date.fromisoformat(as_of)]).df()


def test_a_month_runs_and_runs_again_in_place(setup: dict[str, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(setup["root"])  # lists/{as_of} is taken from the working directory
    file = _pipeline(setup["root"], "monthly", source=str(setup["base"]),
                     config=str(setup["config"]), **MONTHLY)
    runner = CliRunner()
    # half a year back: nothing to evaluate yet, which skips evaluate and does not fail the run
    result = runner.invoke(app, ["run", str(file), "--as-of", "2024-12-31"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    steps = _record(file, "2024-12-31")["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [
        ("score", "ok"), ("lists", "ok"), ("evaluate", "skipped")]
    assert steps[2]["summary"] == "no scores of 2024-06-30 to evaluate yet"

    result = runner.invoke(app, ["run", str(file), "--as-of", "2025-06-30"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    first = _record(file, "2025-06-30")
    assert [s["status"] for s in first["steps"]] == ["ok", "ok", "ok"]
    # the champions were trained at 2025-06-30: the month evaluated is inside their window
    assert ("scored at 2024-12-31 (in-sample, not out-of-time): churn ROC-AUC"
            in first["steps"][2]["summary"])
    store = setup["root"] / "scores.duckdb"
    once = _scores(store, "2025-06-30")
    lists = setup["root"] / "lists" / "2025-06-30"
    index = pd.read_csv(lists / "index.csv")
    assert set(index.manager) == set(once.account_manager.dropna())
    (lists / "left by the first run.txt").write_text("gone after the re-run")

    result = runner.invoke(app, ["run", str(file), "--as-of", "2025-06-30"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    again = _record(file, "2025-06-30")
    assert again["started"] > first["finished"]
    twice = _scores(store, "2025-06-30")
    assert len(twice) == len(once) == twice.customer_id.nunique() > 1000
    pd.testing.assert_frame_equal(once, twice)
    assert scored_months(setup["root"] / "parquet") == [dt.date(2024, 12, 31),
                                                        dt.date(2025, 6, 30)]
    assert not (lists / "left by the first run.txt").exists()  # replaced whole, not merged
    pd.testing.assert_frame_equal(index, pd.read_csv(lists / "index.csv"))
    assert sorted(p.name for p in lists.parent.iterdir()) == ["2024-12-31", "2025-06-30"]
    assert completed(load_pipeline(file)) == [dt.date(2024, 12, 31), dt.date(2025, 6, 30)]

    # a lists folder that holds someone else's files is refused, and the month stays due
    foreign = setup["root"] / "foreign" / "2025-06-30"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("not klantwaarde's")
    other = _pipeline(setup["root"], "lists_only", config=str(setup["config"]),
                      steps=[{"lists": {"out": str(setup["root"] / "foreign" / "{as_of}")}}])
    result = run_cli("run", str(other), "--as-of", "2025-06-30", cwd=setup["root"])
    assert result.returncode == 2
    assert "holds files that klantwaarde lists did not write" in " ".join(result.stderr.split())
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert completed(load_pipeline(other)) == []


@pytest.fixture(scope="module")
def caught_up(setup: dict[str, Path]) -> dict:
    """The months 2025-05-31 and 2025-06-30 missed by a scheduler started on July 1st, with a
    scores table of their own, caught up."""
    root = setup["root"] / "schedule"
    config = root / "config"
    config.mkdir(parents=True)
    (config / "models.yaml").write_text((setup["config"] / "models.yaml").read_text())
    (config / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(root / "scores.duckdb"), "parquet": str(root / "parquet")}))
    file = _pipeline(root, "monthly", source=str(setup["base"]), config=str(config),
                     schedule=MONTHLY["schedule"] | {"start": "2025-05-31"},
                     steps=["score", {"lists": {"out": str(root / "lists" / "{as_of}")}},
                            "evaluate"])
    pipeline = load_pipeline(file)
    told = []
    records = catch_up(pipeline, JULY_FIRST, done=told.append)
    return {"root": root, "config": config, "pipeline": pipeline, "records": records,
            "told": told}


def test_the_scheduler_catches_up_two_missed_months_in_order_once(caught_up: dict) -> None:
    pipeline, records = caught_up["pipeline"], caught_up["records"]
    months = [dt.date(2025, 5, 31), dt.date(2025, 6, 30)]
    assert [r.as_of for r in records] == months and caught_up["told"] == records
    assert records[0].finished <= records[1].started  # one after the other, oldest first
    assert scored_months(caught_up["root"] / "parquet") == months
    assert completed(pipeline) == months
    assert sorted(p.name for p in (caught_up["root"] / "lists").iterdir()) == [
        "2025-05-31", "2025-06-30"]
    written = {p: p.stat().st_mtime_ns for p in pipeline.spec.runs.glob("*.json")}
    # a second catch-up, or a fire a minute later, runs nothing
    assert catch_up(pipeline, JULY_FIRST) == []
    assert catch_up(pipeline, JULY_FIRST + dt.timedelta(minutes=1)) == []
    assert {p: p.stat().st_mtime_ns for p in pipeline.spec.runs.glob("*.json")} == written
    # the next month is due at the next fire, not before
    assert due(pipeline, dt.datetime(2025, 8, 1, 5, 59, tzinfo=AMSTERDAM)) == []
    assert due(pipeline, dt.datetime(2025, 8, 1, 6, 0, tzinfo=AMSTERDAM)) == [
        dt.date(2025, 7, 31)]


_CATCH_UP = """
import datetime as dt, json, sys, time
from pathlib import Path
from zoneinfo import ZoneInfo
from klantwaarde.pipelines import PipelineBusy, catch_up, load_pipeline

pipeline = load_pipeline(Path(sys.argv[1]))
Path(sys.argv[2]).touch()  # ready
while not Path(sys.argv[3]).exists():
    time.sleep(0.002)
try:
    records = catch_up(pipeline, dt.datetime(2025, 7, 1, 7, tzinfo=ZoneInfo("Europe/Amsterdam")))
    print(json.dumps([str(r.as_of) for r in records]))
except PipelineBusy:
    print(json.dumps("busy"))
"""


def test_two_schedulers_catching_up_at_once_run_each_month_once(caught_up: dict,
                                                                 tmp_path: Path) -> None:
    """Both start together; the lock lets one run the months, the other runs none."""
    file = _pipeline(tmp_path, "lists", config=str(caught_up["config"]),
                     schedule=MONTHLY["schedule"] | {"start": "2025-05-31"},
                     steps=[{"lists": {"out": str(tmp_path / "lists" / "{as_of}")}}])
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", _CATCH_UP, str(file),
                                  str(tmp_path / f"ready-{i}"), str(go)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env) for i in range(2)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(c.poll() is None for c in children)
        time.sleep(0.01)
    go.touch()
    said = []
    for child in children:
        stdout, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr
        said.append(json.loads(stdout))
    ran = sorted(m for s in said if s != "busy" for m in s)
    assert ran == ["2025-05-31", "2025-06-30"], said
    assert completed(load_pipeline(file)) == [dt.date(2025, 5, 31), dt.date(2025, 6, 30)]
