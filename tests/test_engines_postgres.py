"""klantwaarde on a real PostgreSQL server: the commands read a base inside the database through
a role that may only read it, give the numbers they give on DuckDB, and turn every bad
connection or table into a clear message with exit code 2."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli
from engines import (
    PostgresServer,
    assert_same_rows,
    load_postgres,
    pg_server,  # noqa: F401 (the session fixture pg)
    reader_role,
)

AS_OF = "2025-06-30"


@pytest.fixture(scope="session")
def small_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 simulated customers over 24 months, as Parquet."""
    base = tmp_path_factory.mktemp("pg-small") / "base"
    done = run_cli("simulate", "--customers", "300", "--months", "24", "--start", "2023-07-01",
                   "--seed", "5", "--out", str(base))
    assert done.returncode == 0, done.stderr
    return base


@pytest.fixture(scope="session")
def loaded(pg: PostgresServer, small_base: Path) -> str:
    """The small base in schema erp, with broken copies in schemas of their own; the URL of a
    role that may only read them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    load_postgres(pg, small_base, "erp")
    orders = pq.read_table(small_base / "orders.parquet")
    load_postgres(pg, small_base, "no_orders", {"customers": pq.read_table(
        small_base / "customers.parquet")})
    load_postgres(pg, small_base, "no_amount", {"orders": orders.drop(["gross_amount"])})
    dates = orders.set_column(orders.schema.get_field_index("order_date"), "order_date",
                              orders.column("order_date").cast(pa.string()))
    load_postgres(pg, small_base, "text_dates", {"orders": dates})
    load_postgres(pg, small_base, "locked", {"orders": orders})
    password = reader_role(pg, ["erp", "no_orders", "no_amount", "text_dates"])
    import psycopg

    with psycopg.connect(pg.url(), autocommit=True) as con:
        con.execute("GRANT USAGE ON SCHEMA locked TO reader")  # but no SELECT on its table
    return pg.url("reader", password, schema="erp")


def test_reader_role_may_not_write(pg: PostgresServer, loaded: str) -> None:
    import psycopg

    with psycopg.connect(loaded.split("?")[0]) as con, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        con.execute("CREATE TABLE erp.scratch (x int)")


def test_commands_on_postgres_match_duckdb(loaded: str, small_base: Path,
                                           tmp_path: Path) -> None:
    """validate, profitability and features through the read-only role give what they give
    on the same base in Parquet files."""
    checked = run_cli("validate", "--source", loaded)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Valid: the source meets the data contract" in checked.stdout
    assert loaded.split(":")[2].split("@")[0] not in checked.stdout  # no password shown
    for name, source in (("pg", loaded), ("duckdb", str(small_base))):
        for args in (["profitability", "--out", str(tmp_path / name / "profit")],
                     ["features", "--out", str(tmp_path / name / "features.parquet")]):
            done = run_cli(args[0], "--source", source, "--as-of", AS_OF, *args[1:])
            assert done.returncode == 0, done.stdout + done.stderr
    assert_same_rows(pd.read_parquet(tmp_path / "pg" / "features.parquet"),
                     pd.read_parquet(tmp_path / "duckdb" / "features.parquet"),
                     ["customer_id", "as_of"], "features")
    written = sorted(p.name for p in (tmp_path / "duckdb" / "profit").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "pg" / "profit").iterdir())
    assert_same_rows(pd.read_parquet(tmp_path / "pg" / "profit" / "customers.parquet"),
                     pd.read_parquet(tmp_path / "duckdb" / "profit" / "customers.parquet"),
                     ["customer_id"], "profitability per customer")
    assert_same_rows(pd.read_csv(tmp_path / "pg" / "profit" / "segments.csv"),
                     pd.read_csv(tmp_path / "duckdb" / "profit" / "segments.csv"),
                     list(pd.read_csv(tmp_path / "pg" / "profit" / "segments.csv").columns[:2]),
                     "segments")


def test_features_are_computed_inside_the_database(loaded: str, small_base: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the feature rows (one per active customer) and a few aggregates come back from the
    server: no table of order lines is pulled into Python."""
    import psycopg
    import pyarrow.parquet as pq

    from klantwaarde.config import load_config
    from klantwaarde.features import features_at
    from klantwaarde.models.customer_model import model_input
    from klantwaarde.sources import open_source

    fetched = {"rows": 0}
    for cls in (psycopg.Cursor, psycopg.ServerCursor):
        for method in ("fetchone", "fetchmany", "fetchall"):
            original = getattr(cls, method)

            def counted(self, *args, _original=original, **kwargs):
                rows = _original(self, *args, **kwargs)
                fetched["rows"] += (1 if rows is not None else 0) if isinstance(
                    rows, tuple) or rows is None else len(rows)
                return rows

            monkeypatch.setattr(cls, method, counted)
    cfg = load_config(None)
    frame = model_input(features_at(open_source(loaded, cfg.source), dt.date(2025, 6, 30), cfg))
    lines = pq.read_metadata(small_base / "orders.parquet").num_rows
    assert len(frame) > 200
    assert fetched["rows"] < len(frame) + 2_000 < lines / 5, (fetched, len(frame), lines)


def _refused(source: str) -> str:
    done = run_cli("validate", "--source", source)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out and "Failed" not in out, out
    return " ".join(out.split())


def test_bad_connections_exit_2_with_a_clear_message(pg: PostgresServer, loaded: str) -> None:
    from engines import _free_port

    shown = _refused(f"postgresql://reader:pw@127.0.0.1:{_free_port()}/postgres")
    assert "no PostgreSQL server answers at 127.0.0.1" in shown
    assert "start the server" in shown and ":pw@" not in shown
    shown = _refused(pg.url("reader", "wrong-password"))
    assert "refused user 'reader': wrong or missing password" in shown
    assert "wrong-password" not in shown
    shown = _refused(pg.url(database="nosuchdb"))
    assert "has no database 'nosuchdb'" in shown
    shown = _refused(loaded.replace("schema=erp", "schema=nosuch"))
    assert "has no schema 'nosuch'" in shown and "erp" in shown


def test_missing_tables_and_columns_exit_2(loaded: str) -> None:
    shown = _refused(loaded.replace("schema=erp", "schema=no_orders"))
    assert "orders: the required table is missing" in shown and "a table orders" in shown
    shown = _refused(loaded.replace("schema=erp", "schema=no_amount"))
    assert "orders.gross_amount: required column is missing" in shown
    shown = _refused(loaded.replace("schema=erp", "schema=locked"))
    assert "the role may not read table(s) locked.orders" in shown
    assert "GRANT SELECT ON locked.orders" in shown
    shown = _refused(loaded.replace("schema=erp", "schema=text_dates"))
    assert "orders.order_date (date) stored as text" in shown and "view" in shown
