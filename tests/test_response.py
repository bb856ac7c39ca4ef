"""The response model end to end on a small simulated base, in a real (embedded) MLflow store:
trained, compared, registered and promoted; its effect follows the simulator's true effect of a
contact; no estimate where no one is ever contacted; skipped without an interactions table."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from klantwaarde.cli import app
from klantwaarde.config import load_config
from klantwaarde.features import features_at
from klantwaarde.models.customer_model import model_input
from klantwaarde.scoring.store import read_scores
from klantwaarde.sources import open_source

AS_OF = "2025-06-30"  # 24 simulated months from 2023-07-01: labels complete up to 2024-12-31
VALIDATION = dt.date(2024, 12, 31)
UNCONTACTED = "public_sector"  # its interactions are removed: nobody ever contacts it
SMALL = {"seed": 7, "train_snapshots": 3, "validation_snapshots": 1,
         "xgboost": {"max_rounds": {"churn": 40, "margin": 40, "upgrade": 40},
                     "early_stopping_rounds": 10,
                     "search": {"max_depth": [3], "learning_rate": [0.2]}},
         "response": {"rounds": 100}}


def _simulate(folder: Path, customers: int) -> Path:
    result = CliRunner().invoke(app, ["simulate", "--customers", str(customers), "--months",
                                      "24", "--start", "2023-07-01", "--seed", "11", "--out",
                                      str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def _config(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "models.yaml").write_text(yaml.safe_dump(SMALL | {"store": str(folder / "store")}))
    (folder / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(folder / "scores.duckdb"), "parquet": str(folder / "parquet")}))
    return folder


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"MLFLOW_TRACKING_URI": ""})
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A base of 2,500 customers whose public-sector accounts are never contacted, trained
    (without automatic promotion), and the response challenger promoted by the command."""
    root = tmp_path_factory.mktemp("response")
    base = _simulate(root / "base", 2500)
    customers = pd.read_parquet(base / "customers.parquet")
    never = set(customers.customer_id[customers.industry == UNCONTACTED])
    interactions = pd.read_parquet(base / "interactions.parquet")
    interactions[~interactions.customer_id.isin(never)].to_parquet(
        base / "interactions.parquet", index=False)
    config = _config(root / "config")
    output = _run("train", "--source", str(base), "--as-of", AS_OF, "--config", str(config))
    return base, config, output


def test_the_response_model_is_trained_compared_and_promoted(trained) -> None:
    base, config, output = trained
    assert "klantwaarde-response: version 1 is challenger" in output
    promoted = _run("promote", "--target", "response", "--config", str(config))
    assert "klantwaarde-response: champion is now version 1" in promoted
    mlflow.set_tracking_uri(f"sqlite:///{config / 'store' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["klantwaarde"],
                              filter_string="tags.target = 'response'")
    assert sorted(runs["tags.candidate"]) == ["s_learner", "t_learner", "what_if", "x_learner"]
    assert runs["metrics.qini"].notna().all() and runs["metrics.uplift_top10"].notna().all()
    # the share without estimate: at least the public sector's customers
    assert (runs["metrics.no_estimate_share"] > 0.05).all()


def test_the_effect_follows_the_true_effect_and_is_empty_without_overlap(trained) -> None:
    base, config, _ = trained
    mlflow.set_tracking_uri(f"sqlite:///{config / 'store' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/klantwaarde-response@challenger")
    cfg = load_config(config)
    frame = model_input(features_at(open_source(str(base), cfg.source), VALIDATION, cfg))
    effect = frame[["customer_id", "industry"]].assign(
        effect=model.predict(frame).contact_effect.to_numpy())
    # no estimate exactly where the chance of a contact is outside the overlap: for most of
    # the never-contacted industry (a few of its customers look like contacted ones)
    p = model.unwrap_python_model().pipeline.propensity(frame[model.unwrap_python_model()
                                                             .features])
    outside = (p < 0.02) | (p > 0.98)
    assert (effect.effect.isna().to_numpy() == outside).all()
    assert effect.effect[effect.industry == UNCONTACTED].isna().mean() > 0.8
    known = effect[effect.industry != UNCONTACTED]
    assert known.effect.notna().mean() > 0.9
    # the true effect: the hazard in the month after as_of, less the hazard had it been contacted
    truth = pd.read_parquet(base / "truth" / "months.parquet")
    truth = truth[pd.to_datetime(truth.month) == pd.Timestamp(VALIDATION) + pd.Timedelta(days=1)]
    joined = known.dropna().merge(truth.assign(true=truth.hazard - truth.hazard_if_contacted),
                                  on="customer_id").dropna(subset=["true"])
    assert len(joined) > 1000
    assert stats.spearmanr(joined.effect, joined.true).statistic > 0.1
    top = joined.effect >= joined.effect.median()
    assert joined.true[top].mean() > joined.true[~top].mean()


def test_scoring_adds_the_effect_of_a_contact(trained) -> None:
    base, config, _ = trained
    _run("promote", "--target", "response", "--config", str(config))
    for target in ("churn", "margin", "upgrade"):
        _run("promote", "--target", target, "--config", str(config))
    _run("score", "--source", str(base), "--as-of", AS_OF, "--config", str(config))
    scores = read_scores(config / "parquet", dt.date.fromisoformat(AS_OF))
    customers = pd.read_parquet(base / "customers.parquet")[["customer_id", "industry"]]
    scores = scores.merge(customers, on="customer_id")
    assert (scores.response_version == 1).all()
    assert scores.contact_effect[scores.industry == UNCONTACTED].isna().mean() > 0.8
    assert scores.contact_effect[scores.industry != UNCONTACTED].notna().mean() > 0.9


def test_without_interactions_response_is_skipped_and_scores_have_no_effect(
        tmp_path: Path) -> None:
    base = _simulate(tmp_path / "base", 800)
    (base / "interactions.parquet").unlink()
    shutil.rmtree(base / "truth")
    config = _config(tmp_path / "config")
    (config / "models.yaml").write_text(yaml.safe_dump(
        SMALL | {"store": str(config / "store"), "promotion": {"automatic": True}}))
    output = _run("train", "--source", str(base), "--as-of", AS_OF, "--config", str(config))
    assert "response: skipped, the source has no interactions table" in output
    assert "klantwaarde-churn: version 1 is challenger and champion" in output
    assert "klantwaarde-response" not in output
    scored = _run("score", "--source", str(base), "--as-of", AS_OF, "--config", str(config))
    assert "klantwaarde-response has no champion" in scored
    scores = read_scores(config / "parquet", dt.date.fromisoformat(AS_OF))
    assert scores.contact_effect.isna().all() and scores.response_version.isna().all()
    assert scores.churn_probability.notna().all()
