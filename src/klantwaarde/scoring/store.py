"""The scores table: one partition per as_of in a DuckDB file, and a Parquet copy per month.

A month is written in one transaction that deletes its old rows and inserts the new ones: a
re-run replaces exactly that month, and a run killed before its commit leaves the table as it
was (DuckDB's write-ahead log drops an uncommitted transaction). The Parquet copy is written
next to its place before the commit and renamed into it after.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from klantwaarde.errors import InputError
from klantwaarde.staging import remove_abandoned

TEXTS = pa.list_(pa.string())
SCHEMA = pa.schema([
    ("as_of", pa.date32()),
    ("customer_id", pa.string()),
    ("account_manager", pa.string()),
    ("churn_version", pa.int64()),
    ("margin_version", pa.int64()),
    ("upgrade_version", pa.int64()),
    ("churn_probability", pa.float64()),
    ("future_net_margin", pa.float64()),  # over the label horizon
    ("margin_at_risk", pa.float64()),  # churn probability x the positive part of the margin
    ("upgrade_probability", pa.float64()),
    ("next_best_categories", TEXTS),  # not owned yet, most likely adopted first
    ("expected_uplift", pa.float64()),  # EUR over the horizon from the next-best categories
    ("revenue", pa.float64()),  # over the profitability window up to as_of
    ("net_margin", pa.float64()),
    ("tier", pa.string()),  # the customer pyramid
    ("category", pa.string()),  # key, large, small or loss account
    ("cell", pa.string()),  # qualification: significant, profitable, strategic
    ("policy", pa.string()),
    ("loss_driver", pa.string()),  # loss accounts: the dominant cost driver
    ("remedy", pa.string()),
    ("churn_reasons", TEXTS),
    ("margin_reasons", TEXTS),
    ("upgrade_reasons", TEXTS),
])
_COLUMNS = ", ".join(f"{f.name} {_t}" for f, _t in zip(SCHEMA, (
    "DATE", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "BIGINT", "DOUBLE", "DOUBLE", "DOUBLE",
    "DOUBLE", "VARCHAR[]", "DOUBLE", "DOUBLE", "DOUBLE", "VARCHAR", "VARCHAR", "VARCHAR",
    "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR[]", "VARCHAR[]", "VARCHAR[]"), strict=True))


def write_scores(store: Path, parquet: Path, as_of: dt.date, scores: pa.Table) -> None:
    """Replace the month ``as_of`` in the scores table (and its Parquet copy) by ``scores``."""
    scores = scores.select(SCHEMA.names).cast(SCHEMA)
    if pc.any(pc.not_equal(scores["as_of"], pa.scalar(as_of))).as_py():
        raise ValueError(f"every score row must have as_of {as_of}")
    store.parent.mkdir(parents=True, exist_ok=True)
    folder = parquet / f"as_of={as_of.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    remove_abandoned(folder / "scores.parquet")
    staging = folder / f".scores.parquet.partial-{os.getpid()}"
    pq.write_table(scores, staging)  # before the commit: only a rename is left after it
    try:
        with duckdb.connect(str(store)) as con:
            con.execute(f"CREATE TABLE IF NOT EXISTS scores ({_COLUMNS})")
            con.register("new_scores", scores)
            con.execute("BEGIN TRANSACTION")
            con.execute("DELETE FROM scores WHERE as_of = ?", [as_of])
            con.execute("INSERT INTO scores BY NAME SELECT * FROM new_scores")
            con.execute("COMMIT")
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    os.replace(staging, folder / "scores.parquet")


def scored_months(store: Path) -> list[dt.date]:
    """The months the scores table holds, oldest first."""
    if not store.exists():
        return []
    with duckdb.connect(str(store), read_only=True) as con:
        if not con.execute("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_name = 'scores'").fetchone()[0]:
            return []
        return [r[0] for r in con.execute(
            "SELECT DISTINCT as_of FROM scores ORDER BY as_of").fetchall()]


def read_scores(store: Path, as_of: dt.date) -> pd.DataFrame:
    """The scores of month ``as_of``, one row per customer; an input error when there are
    none."""
    months = scored_months(store)
    if as_of not in months:
        held = ", ".join(str(m) for m in months[-6:]) or "none"
        raise InputError(
            f"scores: the scores table {store} holds no scores at {as_of} (months held: "
            f"{held}). Run klantwaarde score --source SRC --as-of {as_of} first.")
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute("SELECT * FROM scores WHERE as_of = ? ORDER BY customer_id",
                           [as_of]).to_arrow_table().to_pandas()
