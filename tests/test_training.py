"""Training: metrics against hand computations, and `klantwaarde train` / `promote` end to end
against a real MLflow server process (SQLite backend) on a small simulated base."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from klantwaarde.cli import app
from klantwaarde.config import load_config
from klantwaarde.models import metrics

BIN = Path(sys.executable).parent
AS_OF = "2025-06-30"  # 24 simulated months from 2023-07-01: labels complete up to 2024-12-31
SMALL = {"seed": 7, "train_snapshots": 3, "validation_snapshots": 1,
         "xgboost": {"max_rounds": {"churn": 60, "margin": 60, "upgrade": 60},
                     "early_stopping_rounds": 10,
                     "search": {"max_depth": [3], "learning_rate": [0.2]}}}


# ------------------------------------------------------------------------------------ metrics

def test_expected_maximum_profit_by_hand() -> None:
    """Two customers, the churner scored highest. Contacting it alone gains
    clv*(g*(1-d)-f)/2 per customer when that is positive, else contacting nobody (0)."""
    campaign = load_config().models.campaign
    y, p = np.array([True, False]), np.array([0.9, 0.1])
    emp, share = metrics.expected_maximum_profit(y, p, campaign, grid=2000)
    clv, d, f = (campaign.customer_lifetime_value, campaign.incentive_cost / 200,
                 campaign.contact_cost / 200)
    from scipy import stats
    gamma = stats.beta(campaign.acceptance_alpha, campaign.acceptance_beta)
    g = np.linspace(0, 1, 200001)
    expected = np.trapezoid(np.maximum(clv * (g * (1 - d) - f) / 2, 0) * gamma.pdf(g), g)
    assert emp == pytest.approx(expected, rel=1e-3)
    assert share == 0.5


def test_a_perfect_ranking_has_normalized_gini_one_and_a_reversed_one_minus_one() -> None:
    y = np.array([500.0, -200.0, 0.0, 80.0, 1200.0])
    assert metrics.normalized_gini(y, y) == pytest.approx(1.0)
    assert metrics.normalized_gini(y, -y) == pytest.approx(-1.0, abs=0.35)
    assert metrics.normalized_gini(y, -y) < 0


def test_lift_and_capture_in_the_top_ten_percent() -> None:
    y = np.array([1] * 10 + [0] * 90, dtype=bool)  # churn rate 10%
    p = np.linspace(1, 0, 100)  # the 10 churners ranked first
    found = metrics.churn_metrics(y, p, load_config().models.campaign)
    assert found["lift_top10"] == pytest.approx(10.0)
    assert found["capture_top10"] == pytest.approx(1.0)
    assert found["roc_auc"] == pytest.approx(1.0)


def test_hit_rate_counts_only_categories_the_customer_could_adopt() -> None:
    labels = pd.DataFrame({"a": [True, False], "b": [False, True]})
    scores = pd.DataFrame({"a": [0.9, 0.9], "b": [0.1, 0.2]})
    eligible = pd.DataFrame({"a": [True, False], "b": [True, True]})  # customer 2 owns a
    found = metrics.upgrade_metrics(labels, scores, eligible, k=1)
    assert found["hit_rate_at_1"] == 1.0


# ------------------------------------------------------------------------- train end to end

@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("train") / "base"
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "--customers", "1500", "--months", "24",
                                 "--start", "2023-07-01", "--seed", "11", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def _config(folder: Path, store: Path, automatic: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    promotion = {"automatic": automatic, "min_improvement": 0.005}
    (folder / "models.yaml").write_text(
        yaml.safe_dump(SMALL | {"store": str(store), "promotion": promotion}))
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A real `mlflow server` on loopback with a SQLite backend."""
    root = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=(root / "server.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("mlflow server did not start: "
                               + (root / "server.log").read_text()[-2000:])
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _train(base: Path, config: Path, env: dict[str, str]) -> str:
    result = CliRunner().invoke(app, ["train", "--source", str(base), "--as-of", AS_OF,
                                      "--config", str(config)], env=env)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_train_register_promote_and_score_through_a_server(base: Path, server: str,
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture
                                                           ) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    config = _config(tmp_path / "config", tmp_path / "unused-store")
    output = _train(base, config, {"MLFLOW_TRACKING_URI": server})
    assert "klantwaarde-churn: version 1 is challenger" in output
    assert not (tmp_path / "unused-store").exists()  # the server, not the embedded store

    promoted = CliRunner().invoke(app, ["promote", "--target", "churn", "--config", str(config)],
                                  env={"MLFLOW_TRACKING_URI": server})
    assert promoted.exit_code == 0, promoted.output
    assert "champion is now version 1" in promoted.output

    mlflow.set_tracking_uri(server)
    model = mlflow.pyfunc.load_model("models:/klantwaarde-churn@champion")
    from klantwaarde.features import features_at
    from klantwaarde.models.customer_model import model_input
    from klantwaarde.sources import open_source

    cfg = load_config(config)
    table = model_input(features_at(open_source(str(base), cfg.source), dt.date(2025, 6, 30),
                                    cfg))
    scores = model.predict(table)
    assert list(scores.columns) == ["churn_probability"]
    assert len(scores) == len(table) > 500
    assert scores.churn_probability.between(0, 1).all()
    assert scores.churn_probability.std() > 0.01

    from klantwaarde import cli

    monkeypatch.setattr("sys.argv", ["klantwaarde", "promote", "--target", "margin",
                                     "--version", "7", "--config", str(config)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    assert "has no version 7; its versions are 1" in capsys.readouterr().err


def test_an_as_of_after_the_data_is_refused_before_anything_is_written(
        base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    from klantwaarde import cli

    store = tmp_path / "store"
    config = _config(tmp_path / "config", store)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr("sys.argv", ["klantwaarde", "train", "--source", str(base), "--as-of",
                                     "2026-06-30", "--config", str(config)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    assert "the newest order line is dated 2025-06-30" in capsys.readouterr().err
    assert not store.exists()


def test_same_seed_same_metrics_promotion_by_rule_and_no_protected_attribute(
        base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runs = []
    for attempt in ("first", "second"):
        store = tmp_path / attempt
        # the second run promotes by rule: there is no champion yet, so each challenger wins
        config = _config(tmp_path / f"config-{attempt}", store, automatic=attempt == "second")
        output = _train(base, config, {"MLFLOW_TRACKING_URI": ""})
        assert ("is challenger and champion" in output) == (attempt == "second")
        mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
        found = mlflow.search_runs(experiment_names=["klantwaarde"],
                                   filter_string="tags.candidate != ''")
        runs.append(found.set_index("tags.mlflow.runName").filter(like="metrics.").sort_index())
        assert (store / "artifacts").is_dir()
    # 3 targets x 3 candidates, BG/NBD + Gamma-Gamma, and the response model's 4 meta-learners
    assert len(runs[0]) == 14
    assert "btyd" in runs[0].index
    pd.testing.assert_frame_equal(runs[0], runs[1])

    # the simulator writes the contact's gender into customers: no model may read it
    assert "gender" in pd.read_parquet(base / "customers.parquet").columns
    for target in ("churn", "margin", "upgrade", "response"):
        info = mlflow.models.get_model_info(f"models:/klantwaarde-{target}@challenger")
        inputs = info.signature.inputs.input_names()
        assert "gender" not in inputs and "contact_gender" not in inputs
        assert "account_manager" not in inputs
        assert "industry" in inputs  # static attributes that are allowed do reach the models


# ---------------------------------------------------------------------- the classical comparator

def test_bgnbd_ranks_a_regular_buyer_above_a_lapsed_one() -> None:
    """Weekly buyers until as_of expect more purchases (and spend) in the horizon than customers
    who bought as often but stopped half a year ago, and than one-time buyers."""
    from klantwaarde.training import btyd

    start, as_of = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
    rows = []
    for i in range(60):
        kind = ("regular", "lapsed", "once")[i % 3]
        last = as_of if kind == "regular" else dt.date(2024, 6, 30)
        days = [start] if kind == "once" else [
            start + dt.timedelta(days=d) for d in range(0, (last - start).days + 1, 7 + i % 3)]
        rows += [{"customer_id": f"{kind}-{i}", "date": d, "spend": 50.0 + i} for d in days]
    found = btyd.forecast(pd.DataFrame(rows), as_of, 181).set_index("customer_id")
    kind = found.index.str.split("-").str[0]
    mean = found.groupby(kind).mean()
    assert mean.expected_purchases["regular"] > 3 * mean.expected_purchases["lapsed"]
    assert mean.expected_purchases["regular"] > 3 * mean.expected_purchases["once"]
    assert mean.expected_spend["regular"] > mean.expected_spend["lapsed"] > 0
    # weekly for half a year: about 26 purchases, give or take the model's shrinkage
    assert 10 < mean.expected_purchases["regular"] < 30
