"""``klantwaarde demo``: the whole product on a simulated base, in a folder of its own.

Simulate, validate, profitability, train (with automatic promotion, so the challengers become
champions), score the last simulated day, the lists of that month and the management report.
The demo keeps everything under its folder: the source, its configuration, the MLflow store, the
scores and the outputs.
Its models are lighter than the shipped ones (fewer rounds, one depth), so that the whole run
takes a few minutes on two cores.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from klantwaarde.config import SECTIONS, load_config, merge, read_yaml
from klantwaarde.lists import ListsResult, build_lists, write_lists
from klantwaarde.outputs import Kind, Place, check_places
from klantwaarde.profitability.report import ProfitabilityReport, build_report, write_report
from klantwaarde.report import build_page
from klantwaarde.scoring.score import ScoringResult, score
from klantwaarde.scoring.store import read_scores
from klantwaarde.simulation import SimulationResult, simulate
from klantwaarde.staging import staged_folder
from klantwaarde.training.train import TrainingResult, train
from klantwaarde.validation import open_valid_source

Step = Callable[[str], None]
MONTHS, SEED = 36, 42
MARK = ".klantwaarde-demo"
# The demo's own settings, over the user's --config: its stores, and light models.
SETTINGS: dict[str, dict[str, Any]] = {
    "models": {"store": "models", "promotion": {"automatic": True},
               "xgboost": {"max_rounds": {"churn": 300, "margin": 300, "upgrade": 100},
                           "search": {"max_depth": [4], "learning_rate": [0.1]}}},
    "scoring": {"store": "scores/scores.duckdb", "parquet": "scores/parquet"},
    "web": {"report": "report.html"},  # the page's management report: the demo's own
}


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    config: Path  # the demo's --config folder, for the commands that follow
    as_of: dt.date
    simulation: SimulationResult
    profitability: ProfitabilityReport
    profitability_folder: Path
    training: TrainingResult
    scoring: ScoringResult
    lists: ListsResult
    store: Path  # the MLflow store
    report: Path  # the management report (HTML)


def run_demo(folder: Path, customers: int, user_config: Path | None, step: Step
             ) -> DemoResult:
    """Run the product on a fresh simulated base in ``folder`` (an earlier demo there is
    replaced; any other non-empty folder is refused)."""
    folder = prepare_folder(folder).resolve()
    config = _write_config(folder, user_config)
    cfg = load_config(config)
    simulation = simulate(customers, MONTHS, SEED, folder / "source", cfg, "parquet", None, step)
    as_of = simulation.end - dt.timedelta(days=1)
    source = open_valid_source(str(simulation.source), cfg, step)
    step(f"profitability at {as_of}")
    report = build_report(source, as_of, cfg)
    with staged_folder(folder / "profitability", "demo") as staging:
        write_report(report, staging)
    training = train(source, as_of, cfg, step)
    scoring = score(source, as_of, cfg, step)
    step(f"writing the lists of {as_of}")
    lists = write_lists(build_lists(read_scores(cfg.scoring.parquet, as_of), as_of, cfg),
                        folder / "lists" / as_of.isoformat())
    step(f"writing the report of {as_of}")
    page = folder / "report.html"
    page.write_text(build_page(as_of, cfg).html, encoding="utf-8")
    return DemoResult(folder, config, as_of, simulation, report, folder / "profitability",
                      training, scoring, lists, cfg.models.store, page)


def prepare_folder(folder: Path) -> Path:
    """The demo's folder, emptied of an earlier demo's output; any other folder is refused."""
    check_places([Place(folder, "--out", Kind.NEW_FOLDER, replaces=MARK)], "demo")
    if folder.exists() and any(folder.iterdir()):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARK).write_text("written by klantwaarde demo; replaced by the next run\n")
    return folder


def _write_config(folder: Path, user_config: Path | None) -> Path:
    """``folder/config``: the user's configuration files with the demo's settings over them,
    its paths inside ``folder``."""
    config = folder / "config"
    config.mkdir()
    user = {}
    if user_config is not None:
        load_config(user_config)  # a bad file is reported as such before anything runs
        files = sorted(user_config.glob("*.y*ml")) if user_config.is_dir() else [user_config]
        user = {f.stem: read_yaml(f) for f in files}
    paths = {"models": ["store"], "scoring": ["store", "parquet"], "web": ["report"]}
    for section in SECTIONS:
        demo = dict(SETTINGS.get(section, {}))
        for key in paths.get(section, []):
            demo[key] = str(folder / demo[key])
        values = merge(user.get(section, {}), demo)
        if values:
            (config / f"{section}.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return config
