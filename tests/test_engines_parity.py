"""The same simulated base of 2,000 customers over 24 months on DuckDB, PostgreSQL and Spark:
validation findings on faulty data, profitability per customer, every feature and label at
two as_of dates, and (PostgreSQL) models trained with the same seed, their scores and their
evaluation are identical. Slow: run with ``make test-slow``, which CI runs."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import SMALL_MODELS, run_cli
from engines import (
    PostgresServer,
    assert_same_rows,
    bad_copy,
    findings,
    load_postgres,
    pg_server,  # noqa: F401 (the session fixture pg)
    reader_role,
    spark_session,
)
from installed import Missing, missing

pytestmark = pytest.mark.slow
CUTOFF = dt.date(2025, 6, 30)
MID_MONTH = dt.date(2025, 5, 17)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parity")
    folder = root / "base"
    done = run_cli("simulate", "--customers", "2000", "--months", "24", "--start", "2023-07-01",
                   "--seed", "11", "--out", str(folder))
    assert done.returncode == 0, done.stderr
    return {"good": folder, "bad": bad_copy(folder, root / "bad")}


@pytest.fixture(scope="module")
def engines(pg: PostgresServer, base: dict[str, Path],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, str]]]:
    """Each base as a source per engine: the DuckDB folder, a PostgreSQL schema read by a role
    that may only read it, and spark:<folder>."""
    load_postgres(pg, base["good"], "good")
    load_postgres(pg, base["bad"], "bad")
    password = reader_role(pg, ["good", "bad"])
    sources = {"duckdb": {k: str(v) for k, v in base.items()},
               "postgres": {k: pg.url("reader", password, schema=k) for k in base}}
    try:
        session = spark_session(tmp_path_factory.mktemp("warehouse"))
    except Missing:
        session = None
    else:
        sources["spark"] = {k: f"spark:{v}" for k, v in base.items()}
    yield sources
    if session is not None:
        session.stop()


def _open(source: str):  # noqa: ANN202
    from klantwaarde.config import load_config
    from klantwaarde.sources import open_source

    cfg = load_config(None)
    return open_source(source, cfg.source), cfg


@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_validation_findings_on_faulty_data(engines: dict, engine: str) -> None:
    from klantwaarde.validation import validate_source

    if engine not in engines:
        missing("no Spark (pyspark and Java) for the engine tests")
    reports = [validate_source(*_open(engines[e]["bad"])) for e in (engine, "duckdb")]
    assert len(reports[1].errors) >= 9
    assert findings(reports[0]) == findings(reports[1])


@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_profitability_features_and_labels(engines: dict, engine: str) -> None:
    from klantwaarde.features import features_at, training_set
    from klantwaarde.models.customer_model import model_input
    from klantwaarde.profitability.margins import customer_margins

    if engine not in engines:
        missing("no Spark (pyspark and Java) for the engine tests")
    opened = {e: _open(engines[e]["good"]) for e in (engine, "duckdb")}
    for as_of in (CUTOFF, MID_MONTH):
        margins = [customer_margins(s, as_of, cfg, 12).table.to_pandas()
                   for s, cfg in opened.values()]
        assert len(margins[1]) > 1500
        assert_same_rows(*margins, ["customer_id"], f"profitability at {as_of}")
    sets = [model_input(training_set(s, cfg, CUTOFF, 2)) for s, cfg in opened.values()]
    assert sets[1].as_of.nunique() == 2 and "label_future_net_margin" in sets[1]
    assert_same_rows(*sets, ["customer_id", "as_of"], "features and labels at two as_of")
    mid = [model_input(features_at(s, MID_MONTH, cfg)) for s, cfg in opened.values()]
    assert_same_rows(*mid, ["customer_id", "as_of"], f"features at {MID_MONTH}")


def _runs(store: Path) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    found = mlflow.search_runs(search_all_experiments=True)
    metrics = found.set_index("tags.mlflow.runName").filter(like="metrics.")
    return metrics.sort_index().sort_index(axis=1)


def test_train_score_evaluate_from_postgres_as_from_duckdb(engines: dict, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """The same seed gives the same models, scores and evaluation from either source."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trained, scored = "2024-12-31", "2024-12-31"
    for engine in ("postgres", "duckdb"):
        config = tmp_path / engine / "config"
        config.mkdir(parents=True)
        (config / "models.yaml").write_text(yaml.safe_dump(SMALL_MODELS | {
            "store": str(tmp_path / engine / "models"),
            "promotion": {"automatic": True, "min_improvement": 0.005}}))
        (config / "scoring.yaml").write_text(yaml.safe_dump({
            "store": str(tmp_path / engine / "scores.duckdb"),
            "parquet": str(tmp_path / engine / "parquet")}))
        source = engines[engine]["good"]
        for args in (["train", "--as-of", trained], ["score", "--as-of", scored],
                     ["evaluate", "--as-of", "2025-06-30"]):
            done = run_cli("--config", str(config), args[0], "--source", source, *args[1:],
                           env={"MLFLOW_TRACKING_URI": ""}, timeout=900)
            assert done.returncode == 0, done.stdout + done.stderr
    runs = [_runs(tmp_path / e / "models") for e in ("postgres", "duckdb")]
    assert len(runs[1]) >= 14 and runs[1].notna().any().all()
    pd.testing.assert_frame_equal(runs[0], runs[1])
    scores = [pd.read_parquet(tmp_path / e / "parquet" / f"as_of={scored}" / "scores.parquet")
              for e in ("postgres", "duckdb")]
    lists = ["next_best_categories", "churn_reasons", "margin_reasons", "upgrade_reasons"]
    for frame in scores:
        for column in lists:
            frame[column] = frame[column].map(lambda v: "|".join(v))
    assert_same_rows(*scores, ["customer_id"], "scores")
    shutil.rmtree(tmp_path, ignore_errors=True)
