"""Sources other than a folder: a .duckdb file and an Ibis URL, opened read-only."""

from __future__ import annotations

from pathlib import Path

import duckdb
import ibis
import pytest

from conftest import EXAMPLE, run_cli, snapshot
from klantwaarde.config import load_config
from klantwaarde.errors import ConfigError
from klantwaarde.sources import open_source


@pytest.fixture
def duckdb_file(tmp_path: Path) -> Path:
    path = tmp_path / "export.duckdb"
    with duckdb.connect(str(path)) as con:
        for csv in sorted(EXAMPLE.glob("*.csv")):
            con.execute(f"CREATE TABLE {csv.stem} AS SELECT * FROM read_csv(?)", [str(csv)])
        con.execute("CREATE TABLE staff AS SELECT 1 AS id")
    return path


def test_duckdb_file_is_validated_read_only(duckdb_file: Path, workdir: Path) -> None:
    before = snapshot(duckdb_file.parent)
    result = run_cli("validate", "--source", str(duckdb_file), cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid" in result.stdout
    assert "Table 'staff'" in result.stdout and "not a contract table" in result.stdout
    assert snapshot(duckdb_file.parent) == before


def test_ibis_url_source(duckdb_file: Path) -> None:
    result = run_cli("validate", "--source", f"duckdb://{duckdb_file}?read_only=True")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "130" in result.stdout


@pytest.mark.parametrize("customer, amount, message", [
    (None, 5.0, "orders.customer_id: 1 row: no value in this required column"),
    ("C002", float("nan"), "orders.gross_amount: 1 row: not a finite amount (NaN or infinity)"),
])
def test_bad_rows_in_a_database_are_reported(customer: str | None, amount: float, message: str,
                                             duckdb_file: Path) -> None:
    with duckdb.connect(str(duckdb_file)) as con:
        con.execute("INSERT INTO orders (customer_id, order_date, gross_amount) "
                    "VALUES (?, DATE '2024-02-01', ?)", [customer, amount])
    result = run_cli("validate", "--source", str(duckdb_file))
    assert result.returncode == 2
    assert message in result.stdout


@pytest.mark.parametrize("src, message", [
    ("does/not/exist", "does not exist"),
    (str(EXAMPLE / "orders.csv"), "not a .duckdb file"),
    ("nosuchbackend://x", "Cannot connect"),
])
def test_unusable_sources_exit_2(src: str, message: str, workdir: Path) -> None:
    result = run_cli("validate", "--source", src, cwd=workdir)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not any(workdir.iterdir())


@pytest.mark.parametrize("kind", ["folder", "duckdb file"])
def test_the_engine_keeps_to_the_configured_memory(kind: str, duckdb_file: Path,
                                                   tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "source.yaml").write_text("memory_limit: 300MiB\n")
    cfg = load_config(tmp_path / "config")
    source = open_source(str(EXAMPLE if kind == "folder" else duckdb_file), cfg.source)
    con = ibis.get_backend(source.tables["orders"].table)
    limit = con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit == "300.0 MiB"
    default = open_source(str(EXAMPLE), load_config(None).source)
    con = ibis.get_backend(default.tables["orders"].table)
    assert con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0] != limit


def test_a_memory_limit_without_a_unit_is_explained(tmp_path: Path) -> None:
    (tmp_path / "source.yaml").write_text("memory_limit: 2\n")
    with pytest.raises(ConfigError, match="key 'memory_limit'"):
        load_config(tmp_path)
