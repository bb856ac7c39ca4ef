"""klantwaarde score on Spark (local mode, one core): the month that Spark jobs write equals the
month written from DuckDB, for the same base and champions, decisions and reasons included;
a Spark write that fails leaves the month as it was, and a new one replaces it whole."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from conftest import SMALL_MODELS, run_cli
from engines import (
    assert_same_rows,
    spark_copy,
    spark_fixture,  # noqa: F401 (the session fixture spark)
)
from holder import holding
from klantwaarde.cli import app

AS_OF = dt.date(2025, 6, 30)
TRAIN_AS_OF = "2024-11-30"
LISTS = ("next_best_categories", "churn_reasons", "margin_reasons", "upgrade_reasons")


def _config(folder: Path, models: Path, scores: Path) -> Path:
    folder.mkdir()
    (folder / "models.yaml").write_text(yaml.safe_dump(SMALL_MODELS | {"store": str(models)}))
    (folder / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(scores / "scores.duckdb"), "parquet": str(scores / "parquet")}))
    return folder


def _invoke(*args: str) -> float:
    start = time.monotonic()
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return time.monotonic() - start


@pytest.mark.slow  # in make test-slow; CI runs it
def test_scores_written_from_spark_equal_those_from_duckdb(spark: object, tmp_path: Path
                                                           ) -> None:
    from klantwaarde.scoring.store import read_scores

    base = tmp_path / "base"
    done = run_cli("simulate", "--customers", "600", "--months", "24", "--start", "2023-07-01",
                   "--seed", "5", "--out", str(base))
    assert done.returncode == 0, done.stderr
    folder = spark_copy(base, tmp_path / "spark-base")
    configs = {engine: _config(tmp_path / f"{engine}-config", tmp_path / "models",
                               tmp_path / f"{engine}-scores") for engine in ("duckdb", "spark")}
    _invoke("train", "--source", str(base), "--as-of", TRAIN_AS_OF, "--config",
            str(configs["duckdb"]))
    unwritten = tmp_path / "spark-scores" / "scores.duckdb"  # Spark writes the Parquet copy only
    unwritten.parent.mkdir()
    duckdb.connect(str(unwritten)).close()
    took = {"duckdb": _invoke("score", "--source", str(base), "--as-of", AS_OF.isoformat(),
                              "--config", str(configs["duckdb"]))}
    with holding(unwritten):  # a notebook holding that file does not stop a Spark run
        took["spark"] = _invoke("score", "--source", f"spark:{folder}", "--as-of",
                                AS_OF.isoformat(), "--config", str(configs["spark"]))
    print(f"score: DuckDB {took['duckdb']:.0f} s, Spark {took['spark']:.0f} s")

    month = tmp_path / "spark-scores" / "parquet" / f"as_of={AS_OF}" / "scores.parquet"
    assert month.is_dir() and any(month.glob("*.parquet"))  # Spark's part files
    with duckdb.connect(str(unwritten), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
    spark_scores, duckdb_scores = (
        read_scores(tmp_path / f"{engine}-scores" / "parquet", AS_OF).assign(
            **{c: lambda t, c=c: t[c].map(tuple) for c in LISTS})
        for engine in ("spark", "duckdb"))
    # the comparison means something: every kind of decision, and reasons for the listed
    retention = duckdb_scores.retention.value_counts()
    assert {"at risk", "held out"} <= set(retention.index), retention
    assert duckdb_scores.cross_sell.any() and duckdb_scores.contact_effect.notna().any()
    listed = duckdb_scores.retention.eq("at risk")
    assert duckdb_scores.churn_reasons[listed].map(len).gt(0).all()
    assert duckdb_scores.upgrade_reasons[duckdb_scores.cross_sell].map(len).gt(0).all()
    assert_same_rows(spark_scores, duckdb_scores, ["customer_id"], "scores")


def test_a_failed_spark_write_leaves_the_month_and_a_new_one_replaces_it(
        spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import pyarrow as pa

    from klantwaarde.scoring import spark as scoring
    from klantwaarde.scoring import store
    from klantwaarde.scoring.store import SCHEMA, read_scores, scored_months

    def month(manager: str):  # noqa: ANN202
        rows = pa.table({f.name: pa.nulls(3, f.type) for f in SCHEMA}).to_pandas()
        rows = rows.assign(as_of=AS_OF, customer_id=["c1", "c2", "c3"], account_manager=manager)
        return spark.createDataFrame(rows, scoring._struct(SCHEMA))

    parquet = tmp_path / "parquet"
    scoring.write_month(month("first"), parquet, AS_OF)
    assert scored_months(parquet) == [AS_OF]
    assert read_scores(parquet, AS_OF).account_manager.tolist() == ["first"] * 3

    def broken(*args: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patched:  # the job is done, the swap fails
        patched.setattr(scoring, "publish", broken)
        with pytest.raises(OSError, match="disk full"):
            scoring.write_month(month("second"), parquet, AS_OF)
    failing = month("third").withColumn("capacity", _failing_column(spark))
    with pytest.raises(Exception, match="task failed on purpose"):  # a task of the job fails
        scoring.write_month(failing, parquet, AS_OF)
    assert read_scores(parquet, AS_OF).account_manager.tolist() == ["first"] * 3
    assert sorted(p.name for p in (parquet / f"as_of={AS_OF}").iterdir()
                  if not p.name.startswith(".scores-")) == ["scores.parquet"]  # no staging left

    scoring.write_month(month("fourth"), parquet, AS_OF)
    assert read_scores(parquet, AS_OF).account_manager.tolist() == ["fourth"] * 3
    versions = list((parquet / f"as_of={AS_OF}").glob(".scores-*.parquet"))
    assert len(versions) <= 2  # the month and the one it replaced, for a reader still in it
    # a month written in one file (the DuckDB writer) replaces a Spark month, and the reverse
    table = pa.Table.from_pandas(read_scores(parquet, AS_OF).assign(account_manager="fifth"),
                                 schema=SCHEMA, preserve_index=False)
    store.write_scores(tmp_path / "scores.duckdb", parquet, AS_OF, table)
    assert read_scores(parquet, AS_OF).account_manager.tolist() == ["fifth"] * 3
    assert not list((parquet / f"as_of={AS_OF}").glob(".scores-*.parquet"))
    scoring.write_month(month("sixth"), parquet, AS_OF)
    assert read_scores(parquet, AS_OF).account_manager.tolist() == ["sixth"] * 3


def _failing_column(spark):  # noqa: ANN001, ANN202
    from pyspark.sql import functions as F  # noqa: N812

    @F.udf("long")
    def fail(_: object) -> int:
        raise RuntimeError("task failed on purpose")

    return fail(F.col("customer_id"))
