"""klantwaarde on Spark (local mode, one core): validate, profitability and the features and
labels of a base in Parquet tables give what they give on DuckDB, from a folder and from a
catalog schema; without Java or pyspark a spark: source is a clear message and exit code 2."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli
from engines import (
    assert_same_rows,
    bad_copy,
    findings,
    spark_copy,
    spark_fixture,  # noqa: F401 (the session fixture spark)
)

AS_OF = dt.date(2025, 6, 30)


@pytest.fixture(scope="session")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """300 simulated customers over 24 months as Parquet files (``duckdb``); the same with
    orders as a folder of two Parquet files, as Spark writes a table (``spark``); and a copy
    with faults in it (``bad``)."""
    root = tmp_path_factory.mktemp("spark-bases")
    base = root / "duckdb"
    done = run_cli("simulate", "--customers", "300", "--months", "24", "--start", "2023-07-01",
                   "--seed", "5", "--out", str(base))
    assert done.returncode == 0, done.stderr
    return {"duckdb": base, "spark": spark_copy(base, root / "spark"),
            "bad": bad_copy(base, root / "bad")}


def _both(bases: dict[str, Path], spark_source: str, duckdb_folder: Path, what):  # noqa: ANN001
    from klantwaarde.config import load_config
    from klantwaarde.sources import open_source

    cfg = load_config(None)
    return (what(open_source(spark_source, cfg.source), cfg),
            what(open_source(str(duckdb_folder), cfg.source), cfg))


@pytest.mark.slow  # also in make test-slow; CI runs both
def test_validation_matches_duckdb_on_good_and_bad_data(spark: object,
                                                       bases: dict[str, Path]) -> None:
    from klantwaarde.validation import validate_source

    good, reference = _both(bases, f"spark:{bases['spark']}", bases["duckdb"], validate_source)
    assert good.ok and reference.ok
    assert findings(good) == findings(reference)
    bad, reference = _both(bases, f"spark:{bases['bad']}", bases["bad"], validate_source)
    assert len(reference.errors) >= 7
    assert findings(bad) == findings(reference)


def test_profitability_features_and_labels_match_duckdb(spark: object,
                                                        bases: dict[str, Path]) -> None:
    from klantwaarde.features import training_set
    from klantwaarde.models.customer_model import model_input
    from klantwaarde.profitability.margins import customer_margins

    margins = _both(bases, f"spark:{bases['spark']}", bases["duckdb"],
                    lambda s, cfg: customer_margins(s, AS_OF, cfg, 12).table.to_pandas())
    assert_same_rows(*margins, ["customer_id"], "profitability per customer")
    sets = _both(bases, f"spark:{bases['spark']}", bases["duckdb"],
                 lambda s, cfg: model_input(training_set(s, cfg, AS_OF, 2)))
    assert sets[1].as_of.nunique() == 2 and "label_churn" in sets[1]
    assert_same_rows(*sets, ["customer_id", "as_of"], "features and labels at two as_of")


def test_catalog_schema_matches_the_folder(spark, bases: dict[str, Path]) -> None:  # noqa: ANN001
    from klantwaarde.validation import validate_source

    spark.sql("CREATE DATABASE IF NOT EXISTS erp")
    for path in sorted(bases["duckdb"].glob("*.parquet")):
        spark.read.parquet(str(path)).write.mode("overwrite").saveAsTable(f"erp.{path.stem}")
    catalog, folder = _both(bases, "spark:erp", bases["duckdb"], validate_source)
    assert catalog.ok and findings(catalog) == findings(folder)


@pytest.mark.slow
def test_features_command_on_spark(bases: dict[str, Path], tmp_path: Path) -> None:
    """``klantwaarde features --source spark:FOLDER`` in its own local Spark, against the same
    command on DuckDB."""
    env = {"SPARK_MASTER": "local[2]", "SPARK_SHUFFLE_PARTITIONS": "2",
           "SPARK_DRIVER_MEMORY": "1g"}
    for name, source in (("spark", f"spark:{bases['spark']}"), ("duckdb", str(bases["duckdb"]))):
        done = run_cli("features", "--source", source, "--as-of", "2025-05-17", "--out",
                       str(tmp_path / f"{name}.parquet"), env=env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    assert_same_rows(pd.read_parquet(tmp_path / "spark.parquet"),
                     pd.read_parquet(tmp_path / "duckdb.parquet"), ["customer_id", "as_of"],
                     "features at a mid-month as_of")


def test_without_java_or_pyspark_exit_2(bases: dict[str, Path], tmp_path: Path) -> None:
    done = run_cli("validate", "--source", f"spark:{bases['spark']}",
                   env={"JAVA_HOME": str(tmp_path / "no-java")})
    out = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, out
    assert "needs a Java runtime to start Spark" in out and "Traceback" not in out
    hidden = tmp_path / "hidden" / "pyspark"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('pyspark is not installed')\n")
    done = run_cli("validate", "--source", f"spark:{bases['spark']}",
                   env={"PYTHONPATH": f"{hidden.parent}:{Path.cwd() / 'src'}"})
    out = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, out
    assert "needs pyspark, which is not installed" in out and "klantwaarde[spark]" in out
    done = run_cli("validate", "--source", f"spark:{tmp_path / 'nowhere'}")
    assert done.returncode == 2 and "does not exist" in done.stdout + done.stderr
