"""`klantwaarde score`: champions resolved once, features checked against their signatures,
reasons, the scores table written atomically and idempotently, and the lists of that month."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from conftest import SMALL_MODELS, run_cli, simulated_base, snapshot
from holder import holding
from klantwaarde.cli import app
from klantwaarde.features.catalog import BY_NAME, owns_feature
from klantwaarde.lists import build_lists
from klantwaarde.models import drift
from klantwaarde.scoring.reasons import top_reasons

AS_OF = "2025-06-30"
TRAIN_AS_OF = "2024-11-30"  # the champions saw outcomes up to here: a score after is out-of-time


# ------------------------------------------------------------------------- reasons and drift

def test_reasons_name_what_raises_the_score_in_words_strongest_first() -> None:
    names = ["days_since_last_visit", "open_complaints", "owns__paint", "revenue_trend_3m"]
    declared = {n: BY_NAME[n] for n in names if n in BY_NAME} | {
        "owns__paint": owns_feature("paint")}
    frame = pd.DataFrame({"days_since_last_visit": [143.0, 10.0],
                          "open_complaints": [3.0, np.nan], "owns__paint": [0.0, 1.0],
                          "revenue_trend_3m": [-0.4, 0.1]})
    contributions = np.array([[0.9, 0.5, -0.2, 1.2, 0.01],  # last column: the bias
                              [-0.3, 2.0, 0.4, -0.1, 0.01]])
    churn = top_reasons("churn", contributions, names, frame, declared, 3, "en")
    assert churn[0] == ["revenue down 40% on the previous quarter", "no visit for 5 months",
                        "3 open complaints"]
    # a lowering push is no reason for churn, and a feature without a value is never one
    assert churn[1] == ["already buys paint"]
    margin = top_reasons("margin", contributions, names, frame, declared, 2, "nl")
    assert margin[0] == ["omzet 40% lager ten opzichte van het vorige kwartaal",
                         "5 maanden geen bezoek"]
    assert margin[1] == ["koopt al paint", "10 dagen geen bezoek"]
    assert owns_feature("paint").reason(0.0) == "does not buy paint yet"


def test_population_stability_is_zero_on_the_same_data_and_large_on_a_shift() -> None:
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"x": rng.normal(size=20_000), "kind": rng.choice(["a", "b"], 20_000)})
    reference = drift.profile(train, ["x", "kind"])
    same = drift.stability(reference, train)
    assert same["x"] == pytest.approx(0.0, abs=1e-9) and same["kind"] == pytest.approx(0.0)
    moved = pd.DataFrame({"x": rng.normal(1.0, size=20_000),
                          "kind": rng.choice(["a", "b", "c"], 20_000, p=[0.2, 0.3, 0.5])})
    shifted = drift.stability(reference, moved)
    assert shifted["x"] > 0.25 and shifted["kind"] > 0.25
    half_missing = train.assign(x=train.x.where(rng.random(20_000) < 0.5))
    assert drift.stability(reference, half_missing)["x"] > 0.25
    # Spark's partitions: the bin counts of the parts add up to the PSI of the whole, exactly
    parts = [drift.bin_counts(reference, half_missing.iloc[i::3]) for i in range(3)]
    added = {name: sum(p[name] for p in parts) for name in parts[0]}
    assert drift.psi(reference, added, len(half_missing)) == drift.stability(reference,
                                                                               half_missing)


# ------------------------------------------------------------------------- score end to end

@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A simulated base, a config folder with its own stores, and champions promoted at
    TRAIN_AS_OF."""
    root = tmp_path_factory.mktemp("scoring")
    base, config = simulated_base(root, root / "scores" / "scores.duckdb", automatic=True)
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--source", str(base), "--as-of", TRAIN_AS_OF,
                                 "--config", str(config)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return {"root": root, "base": base, "config": config,
            "store": root / "scores" / "scores.duckdb",
            "parquet": root / "scores" / "parquet" / f"as_of={AS_OF}" / "scores.parquet"}


def _score(setup: dict[str, Path]):
    return CliRunner().invoke(app, ["score", "--source", str(setup["base"]), "--as-of", AS_OF,
                                    "--config", str(setup["config"])])


def _month(store: Path) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute("SELECT * FROM scores ORDER BY as_of, customer_id").df()


def test_scoring_twice_gives_the_same_rows_once(setup: dict[str, Path]) -> None:
    first = _score(setup)
    assert first.exit_code == 0, first.output + repr(first.exception)
    assert "Scored" in first.output and "churn v1" in first.output
    assert "in-sample" not in first.output  # scored after the champions' training as_of
    once = _month(setup["store"])
    again = _score(setup)
    assert again.exit_code == 0, again.output
    twice = _month(setup["store"])
    assert len(twice) == len(once) == twice.customer_id.nunique() > 1000
    pd.testing.assert_frame_equal(once, twice)
    assert (twice.churn_version == 1).all() and (twice.upgrade_version == 1).all()
    assert not twice.in_sample.any()
    assert twice.churn_probability.between(0, 1).all()
    np.testing.assert_allclose(twice.margin_at_risk,
                               twice.churn_probability * twice.future_net_margin.clip(lower=0))
    # reasons in words, from the declared features, for the customers on a sheet: the
    # at-risk sheet explained by the churn model, the cross-sell sheet by the upgrade model
    at_risk, crossed = twice.retention.eq("at risk"), twice.cross_sell.astype(bool)
    assert at_risk.sum() > 20 and crossed.sum() > 20
    assert twice.churn_reasons[at_risk].map(len).ge(1).mean() > 0.95
    assert twice.churn_reasons[~at_risk].map(len).eq(0).all()
    assert twice.upgrade_reasons[~crossed].map(len).eq(0).all()
    assert twice.margin_reasons.map(len).eq(0).all()
    words = {r for reasons in twice.churn_reasons for r in reasons}
    assert any(r.startswith("no order for ") for r in words)
    assert not any("{" in r or "_" in r for r in words)
    # a cross-sell row says first why its category, and never sells on a discount or a cost
    offered = twice[crossed]
    why = [r[0] for r in offered.upgrade_reasons if len(r)]
    assert sum(" of customers in " in r for r in why) > 0.9 * len(offered)
    upgrade = {r for row in twice.upgrade_reasons for r in row}
    assert not any("discount" in r or "cost" in r for r in upgrade), upgrade
    # next-best categories are categories the customer does not own yet
    assert twice.next_best_categories.map(len).eq(3).mean() > 0.9
    assert twice.category.isin(["key account", "large account", "small account",
                                "loss account"]).all()
    copy = pq.read_table(setup["parquet"]).to_pandas()
    assert len(copy) == len(twice)
    assert set(copy.customer_id) == set(twice.customer_id)


def test_a_scoring_killed_before_its_commit_leaves_the_month_as_it_was(
        setup: dict[str, Path]) -> None:
    if not setup["store"].exists():
        assert _score(setup).exit_code == 0
    before = _month(setup["store"])
    parquet_before = setup["parquet"].read_bytes()
    # the child replaces the month with other rows and is killed (SIGKILL) between its INSERT
    # and its COMMIT: the largest window in which a crash could lose or mix a month
    child = f"""
import datetime as dt, os, signal
import duckdb, pandas as pd, pyarrow as pa
from klantwaarde.scoring import store

real = duckdb.connect
class Dying:
    def __init__(self, con): self.con = con
    def __enter__(self): return self
    def __exit__(self, *exc): self.con.close()
    def register(self, *a): return self.con.register(*a)
    def execute(self, sql, *a):
        result = self.con.execute(sql, *a)
        if sql.startswith("INSERT"):
            os.kill(os.getpid(), signal.SIGKILL)
        return result
old = store.read_scores(store.Path({str(setup["parquet"].parents[1])!r}), dt.date(2025, 6, 30))
store.duckdb = type("m", (), {{"connect": staticmethod(lambda p: Dying(real(p)))}})
new = pa.Table.from_pandas(old.assign(churn_probability=-1.0), preserve_index=False)
store.write_scores(store.Path({str(setup["store"])!r}),
                   store.Path({str(setup["parquet"].parents[1])!r}), dt.date(2025, 6, 30), new)
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == -9, done.stderr  # killed, not finished
    after = _month(setup["store"])
    pd.testing.assert_frame_equal(before, after)
    assert setup["parquet"].read_bytes() == parquet_before
    # the killed run's staged Parquet copy is left beside it, and the next run removes it
    assert len(list(setup["parquet"].parent.glob(".scores.parquet.partial-*"))) == 1
    assert _score(setup).exit_code == 0
    assert [p.name for p in setup["parquet"].parent.iterdir()] == ["scores.parquet"]


def test_a_notebook_holding_the_table_stops_scoring_before_it_computes(
        setup: dict[str, Path]) -> None:
    """A second process with scores.duckdb open read-only for the whole run: score refuses at
    once, naming that process, and changes nothing."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{setup['root'] / 'models' / 'mlflow.db'}")
    if not setup["store"].exists() or not client.get_experiment_by_name("klantwaarde-scoring"):
        assert _score(setup).exit_code == 0  # this test may run before any other scored
    experiment = client.get_experiment_by_name("klantwaarde-scoring").experiment_id
    runs = len(client.search_runs([experiment]))
    before = snapshot(setup["store"].parent)
    with holding(setup["store"]) as pid:
        result = run_cli("score", "--source", str(setup["base"]), "--as-of", AS_OF,
                         "--config", str(setup["config"]))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"is open in process {pid} (" in message and "nothing was scored" in message
    assert "read the Parquet copies under" in message and "Traceback" not in message
    assert snapshot(setup["store"].parent) == before
    assert len(client.search_runs([experiment])) == runs  # refused before the run began


def test_lists_of_the_scored_month(setup: dict[str, Path], tmp_path: Path) -> None:
    if not setup["store"].exists():
        assert _score(setup).exit_code == 0
    out = tmp_path / "lists"
    result = CliRunner().invoke(app, ["lists", "--as-of", AS_OF, "--out", str(out),
                                      "--config", str(setup["config"])])
    assert result.exit_code == 0, result.output + repr(result.exception)
    index = pd.read_csv(out / "index.csv")
    scores = _month(setup["store"])
    assert set(index.manager) == set(scores.account_manager.dropna())
    assert index.at_risk.sum() > 0 and index.loss_accounts.sum() > 0


def test_without_champions_scoring_says_to_train_and_promote(setup: dict[str, Path],
                                                             tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(setup["config"], config)
    models = SMALL_MODELS | {"store": str(tmp_path / "m")}
    (config / "models.yaml").write_text(yaml.safe_dump(models))
    (config / "scoring.yaml").write_text(yaml.safe_dump({"store": str(tmp_path / "s.duckdb")}))
    result = run_cli("score", "--source", str(setup["base"]), "--as-of", AS_OF, "--config",
                     str(config))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"no models trained yet in {tmp_path / 'm'}" in message  # nothing trained there
    assert "klantwaarde promote" in message and "Traceback" not in message
    assert not (tmp_path / "s.duckdb").exists() and not (tmp_path / "m").exists()


def test_an_as_of_after_the_data_is_refused_before_anything_is_written(
        setup: dict[str, Path]) -> None:
    before = _month(setup["store"]) if setup["store"].exists() else None
    result = run_cli("score", "--source", str(setup["base"]), "--as-of", "2026-03-31",
                     "--config", str(setup["config"]))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert "the newest order line is dated 2025-06-30" in message
    assert "as if it had stopped ordering" in message
    if before is not None:
        pd.testing.assert_frame_equal(before, _month(setup["store"]))


def test_a_source_without_the_features_of_the_champions_is_refused(setup: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(setup["base"], source)
    (source / "interactions.parquet").unlink()
    before = _month(setup["store"]) if setup["store"].exists() else None
    result = run_cli("score", "--source", str(source), "--as-of", AS_OF, "--config",
                     str(setup["config"]))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())  # the console may wrap long lines
    assert "klantwaarde-churn version 1 reads features the data does not give" in message
    assert "days_since_last_visit" in message and "needs interactions" in message
    if before is not None:
        pd.testing.assert_frame_equal(before, _month(setup["store"]))


def test_the_upgrade_reasons_explain_the_adoption_of_the_first_next_best_category() -> None:
    """The reasons of the cross-sell sheet explain the customer's first next-best category, as
    scoring ranks them: the TreeSHAP values of that category's adoption model; a customer who
    owns every category gets those of its upgrade probability."""
    import xgboost as xgb
    from sklearn.pipeline import Pipeline

    from klantwaarde.features import CategoryValue
    from klantwaarde.models.customer_model import outputs
    from klantwaarde.models.fitted import contributions
    from klantwaarde.scoring.score import _next_best
    from klantwaarde.training.matrix import FeatureMatrix
    from klantwaarde.training.upgrade import UpgradeModel, owned_columns

    rng = np.random.default_rng(0)
    categories = ["paint", "tools", "garden"]
    labels = ["label_upgrade", *(f"label_adopt__{c}" for c in categories)]
    n = 4000
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=list("abc"))  # noqa: N806
    owns = rng.random((n, 3)) < 0.4
    for k, category in enumerate(categories):
        X[f"owns__{category}"] = owns[:, k].astype(float)
    adopted = ~owns & (rng.random((n, 3)) < 1 / (1 + np.exp(2 - 2 * X[list("abc")].to_numpy())))
    y = np.column_stack([adopted.any(axis=1) | (rng.random(n) < 0.1), adopted]).astype(int)
    matrix = FeatureMatrix().fit(X)
    owned = owned_columns(list(matrix.get_feature_names_out()), labels)
    pipeline = Pipeline([("matrix", matrix), ("model", UpgradeModel(
        owned, {"max_depth": 3}, 20))]).fit(X, y)

    value = CategoryValue({c: 100.0 for c in categories},
                          pd.DataFrame(1.0, index=[""], columns=categories))
    first = [c[0] if c else None for c in _next_best(outputs("upgrade", pipeline, X, labels), X,
                                                      value, 3)["next_best_categories"]]
    found, names = contributions(pipeline, X)
    assert names == list(X.columns)
    boosters = pipeline.named_steps["model"].boosters_
    every = [b.predict(xgb.DMatrix(X.to_numpy()), pred_contribs=True) for b in boosters]
    output = np.array([0 if c is None else 1 + categories.index(c) for c in first])
    assert set(output) == {0, 1, 2, 3}  # every category leads somewhere, and some own them all
    np.testing.assert_allclose(found, np.take_along_axis(
        np.stack(every, axis=1), output[:, None, None], axis=1)[:, 0], rtol=1e-5, atol=1e-5)
    # not the reasons of the upgrade probability, as a multi-label model's first output gave
    assert not np.allclose(found[output > 0], every[0][output > 0], atol=1e-3)


def test_a_bare_transaction_log_is_scored_end_to_end(setup: dict[str, Path],
                                                     tmp_path: Path) -> None:
    """Orders with customer_id, order_date and gross_amount only: trained, promoted, scored;
    the reasons come from the order features, and what needs other tables stays empty."""
    source = tmp_path / "log"
    source.mkdir()
    orders = pq.read_table(setup["base"] / "orders.parquet",
                           columns=["customer_id", "order_date", "gross_amount"])
    pq.write_table(orders, source / "orders.parquet")
    config = tmp_path / "config"
    config.mkdir()
    models = SMALL_MODELS | {"store": str(tmp_path / "m")}
    (config / "models.yaml").write_text(yaml.safe_dump(models))
    (config / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(tmp_path / "s.duckdb"), "parquet": str(tmp_path / "parquet")}))
    runner = CliRunner()
    for command in ("train", "score"):
        result = runner.invoke(app, [command, "--source", str(source), "--as-of", AS_OF,
                                     "--config", str(config)])
        assert result.exit_code == 0, result.output + repr(result.exception)
    scores = _month(tmp_path / "s.duckdb")
    assert len(scores) > 1000 and scores.account_manager.isna().all()
    assert scores.next_best_categories.map(len).eq(0).all()
    assert scores.expected_uplift.isna().all()
    reasons = {r for row in scores.churn_reasons for r in row}
    assert reasons and all(("order" in r or "revenue" in r or "customer for" in r
                            or "margin" in r or "cost" in r) for r in reasons), reasons


# ------------------------------------------------------------------------- evaluate

def test_evaluate_sets_last_horizons_scores_against_what_happened(setup: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    from mlflow import MlflowClient
    from sklearn.metrics import roc_auc_score

    from klantwaarde.config import load_config
    from klantwaarde.features import training_set
    from klantwaarde.sources import open_source

    config = tmp_path / "config"
    shutil.copytree(setup["config"], config)
    store = tmp_path / "scores.duckdb"
    (config / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(store), "parquet": str(tmp_path / "parquet")}))
    early = run_cli("evaluate", "--source", str(setup["base"]), "--as-of", AS_OF, "--config",
                    str(config))
    assert early.returncode == 2, early.stderr
    assert "holds no scores at 2024-12-31, one label horizon (6 months) before 2025-06-30" in \
        " ".join(early.stderr.split())

    runner = CliRunner()
    scored = runner.invoke(app, ["score", "--source", str(setup["base"]), "--as-of",
                                 "2024-12-31", "--config", str(config)])
    assert scored.exit_code == 0, scored.output + repr(scored.exception)
    assert "in-sample" not in scored.output  # after the champions' training as_of
    result = runner.invoke(app, ["evaluate", "--source", str(setup["base"]), "--as-of", AS_OF,
                                 "--config", str(config)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "scored at 2024-12-31" in result.output and "Retention:" in result.output
    said = " ".join(result.output.split())
    assert "up to 2025-06-30: out-of-time." in said and "in-sample" not in said

    # the same figures, computed here from the scores table and the labels
    cfg = load_config(config)
    labels = training_set(open_source(str(setup["base"]), cfg.source), cfg,
                          dt.date(2025, 6, 30), 1)
    outcome = labels.table.select("customer_id", *labels.labels).to_pandas()
    scores = _month(store)
    joined = scores.merge(outcome, on="customer_id")
    assert len(joined) == len(scores) > 1000
    churned = joined.label_churn.astype(bool)
    # the month's at-risk sheets: likely churners by margin at risk (no response model), not
    # loss accounts, not gone, within each manager's capacity, the control group held out
    lists = build_lists(scores, dt.date(2024, 12, 31), cfg)
    listed = joined[joined.customer_id.isin(lists.tables["at risk"].customer_id)]
    client = MlflowClient(f"sqlite:///{setup['root'] / 'models' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("klantwaarde-scoring")
    [run] = client.search_runs([experiment.experiment_id], "tags.kind = 'evaluation' and "
                               f"params.as_of = '{AS_OF}'")
    assert run.data.tags["in_sample"] == "false"
    m = run.data.metrics
    assert m["churn_roc_auc"] == pytest.approx(roc_auc_score(churned, joined.churn_probability))
    assert m["churn_roc_auc"] > 0.6  # the champion ranks realised churn
    assert m["retention_rate"] == pytest.approx(1 - churned.mean())
    assert m["at_risk_listed"] == len(listed) > 0
    assert m["at_risk_hit_rate"] == pytest.approx(listed.label_churn.mean())
    assert m["at_risk_lift"] == pytest.approx(listed.label_churn.mean() / churned.mean())
    assert m["at_risk_capture"] == pytest.approx(listed.label_churn.sum() / churned.sum())
    held = joined[joined.customer_id.isin(lists.held_out.customer_id)]
    assert m["control_listed"] == len(listed) and m["control_held_out"] == len(held) > 0
    assert m["control_churn_prevented"] == pytest.approx(
        held.label_churn.mean() - listed.label_churn.mean())
    assert m["control_churn_prevented_low"] <= m["control_churn_prevented"] \
        <= m["control_churn_prevented_high"]
    assert m["margin_mae"] == pytest.approx(
        (joined.label_future_net_margin - joined.future_net_margin).abs().mean())
    offered = joined[joined.next_best_categories.map(len) > 0]
    bought = offered.apply(lambda r: any(r[f"label_adopt__{c}"] for c in
                                         r.next_best_categories), axis=1)
    crossed = offered[offered.customer_id.isin(lists.tables["cross-sell"].customer_id)]
    assert len(crossed) < (offered.expected_uplift > 0).sum()  # the capacity is met here
    assert m["cross_sell_hit_rate"] == pytest.approx(bought[crossed.index].mean())
    assert m["pyramid_moved_up"] + m["pyramid_stayed"] + m["pyramid_moved_down"] == \
        pytest.approx(1.0)
    assert {"calibration.csv", "pyramid_migration.csv", "calibration.png", "gains.png"} <= {
        a.path for a in client.list_artifacts(run.info.run_id)}
    migration = pd.read_csv(client.download_artifacts(run.info.run_id,
                                                      "pyramid_migration.csv", str(tmp_path)),
                            index_col=0)
    assert migration.to_numpy().sum() == len(scores)
    then = scores.tier.fillna("inactive").value_counts()
    assert migration.sum(axis=1)[then.index].tolist() == then.tolist()


def test_a_month_before_the_champions_training_as_of_is_flagged_and_evaluated_in_sample(
        setup: dict[str, Path], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from klantwaarde.config import load_config
    from klantwaarde.models import registry
    from klantwaarde.scoring.evaluate import _in_sample
    from klantwaarde.scoring.store import read_scores

    config = tmp_path / "config"
    shutil.copytree(setup["config"], config)
    store, parquet = tmp_path / "scores.duckdb", tmp_path / "parquet"
    (config / "scoring.yaml").write_text(yaml.safe_dump({"store": str(store),
                                                         "parquet": str(parquet)}))
    runner = CliRunner()
    scored = runner.invoke(app, ["score", "--source", str(setup["base"]), "--as-of",
                                 "2024-10-31", "--config", str(config)])
    assert scored.exit_code == 0, scored.output + repr(scored.exception)
    said = " ".join(scored.output.split())
    assert "churn champion version 1 was trained on data up to 2024-11-30;" in said
    assert "scores at 2024-10-31 are in-sample" in said and "not out-of-time" in said
    assert _month(store).in_sample.all()
    assert read_scores(parquet, dt.date(2024, 10, 31)).in_sample.all()

    result = runner.invoke(app, ["evaluate", "--source", str(setup["base"]), "--as-of",
                                 "2025-04-30", "--config", str(config)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    said = " ".join(result.output.split())
    assert "scored at 2024-10-31" in said and "out-of-time." not in said
    assert "up to 2025-04-30: in-sample, not an out-of-time result" in said
    assert "scores against outcomes (in-sample)" in said
    assert "the scores at 2024-10-31 are in-sample (churn v1, margin v1, upgrade v1)" in said

    client = MlflowClient(f"sqlite:///{setup['root'] / 'models' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("klantwaarde-scoring").experiment_id
    [scoring] = client.search_runs([experiment], "tags.kind = 'scoring' and "
                                   "params.as_of = '2024-10-31'")
    assert scoring.data.tags["in_sample"] == "true"
    [run] = client.search_runs([experiment], "tags.kind = 'evaluation' and "
                               "params.as_of = '2025-04-30'")
    assert run.data.tags["in_sample"] == "true"
    metrics = run.data.metrics
    assert "in_sample.churn_roc_auc" in metrics and "in_sample.retention_rate" in metrics
    assert not any(k.startswith(("churn_", "retention")) for k in metrics)

    # a month scored before the flag was recorded: the registry says whether it is in-sample
    registry.connect(load_config(config).models)
    unrecorded = pd.DataFrame({"in_sample": [None, None]})
    versions = {"churn": 1, "margin": 1, "upgrade": 1}
    assert _in_sample(unrecorded, versions, dt.date(2024, 10, 31))
    assert not _in_sample(unrecorded, versions, dt.date(2024, 11, 30))  # the training month


def test_reasons_change_no_score_and_follow_the_lists(setup: dict[str, Path],
                                                     tmp_path: Path) -> None:
    """reasons: 0 leaves every reason empty, reasons_for: all explains everyone; the scores
    and decisions are the same, and the listed customers' reasons are the same in all runs."""
    if not setup["store"].exists():
        assert _score(setup).exit_code == 0
    months = {}
    for name, settings in (("bare", {"reasons": 0}), ("all", {"reasons_for": "all"})):
        config = tmp_path / name
        shutil.copytree(setup["config"], config)
        store = tmp_path / name / "scores.duckdb"
        (config / "scoring.yaml").write_text(yaml.safe_dump(
            {"store": str(store), "parquet": str(tmp_path / name / "parquet")} | settings))
        result = CliRunner().invoke(app, ["score", "--source", str(setup["base"]), "--as-of",
                                          AS_OF, "--config", str(config)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        months[name] = _month(store)
    listed = _month(setup["store"])
    listed = listed[listed.as_of == months["bare"].as_of.iloc[0]].reset_index(drop=True)
    bare, every = months["bare"], months["all"]
    reasons = ["churn_reasons", "margin_reasons", "upgrade_reasons"]
    assert all(bare[c].map(len).eq(0).all() for c in reasons)
    assert all(every[c].map(len).gt(0).mean() > 0.9 for c in reasons)
    pd.testing.assert_frame_equal(bare.drop(columns=reasons), listed.drop(columns=reasons))
    pd.testing.assert_frame_equal(every.drop(columns=reasons), listed.drop(columns=reasons))
    at_risk, crossed = listed.retention.eq("at risk"), listed.cross_sell.astype(bool)
    for column, rows in (("churn_reasons", at_risk), ("upgrade_reasons", crossed)):
        assert [list(r) for r in every[column][rows]] == [list(r) for r in listed[column][rows]]