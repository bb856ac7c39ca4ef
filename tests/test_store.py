"""The scores table with other processes about: readers read the Parquet copies and never block
the writer, the writer refuses before computing while another process holds the DuckDB file and
waits a bounded time for one that opened it since, and months written before a column existed
still read."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import snapshot
from holder import holding
from klantwaarde.errors import InputError
from klantwaarde.scoring.store import (
    SCHEMA,
    check_unlocked,
    read_scores,
    scored_months,
    write_scores,
)

JUNE, JULY = dt.date(2025, 6, 30), dt.date(2025, 7, 31)


def _month(as_of: dt.date, churn: float, in_sample: bool | None = False) -> pa.Table:
    rows = [{"as_of": as_of, "customer_id": c, "churn_probability": churn,
             "in_sample": in_sample, "next_best_categories": ["tools"]} for c in ("c2", "c1")]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


@pytest.fixture
def stores(tmp_path: Path) -> tuple[Path, Path]:
    """A scores table and its Parquet copies holding June."""
    store, parquet = tmp_path / "scores" / "scores.duckdb", tmp_path / "scores" / "parquet"
    write_scores(store, parquet, JUNE, _month(JUNE, 0.1))
    return store, parquet


def test_readers_read_the_parquet_copies_while_a_writer_holds_the_table(
        stores: tuple[Path, Path]) -> None:
    store, parquet = stores
    with holding(store, "write"):
        assert scored_months(parquet) == [JUNE]
        june = read_scores(parquet, JUNE)
    assert june.customer_id.tolist() == ["c1", "c2"] and (june.churn_probability == 0.1).all()
    assert june.next_best_categories.map(list).tolist() == [["tools"], ["tools"]]
    with pytest.raises(InputError, match=r"no scores at 2025-07-31 \(months held: 2025-06-30\)"):
        read_scores(parquet, JULY)


def test_a_reader_holding_the_table_is_named_before_anything_is_computed(
        stores: tuple[Path, Path]) -> None:
    store, parquet = stores
    before = snapshot(store.parent)
    with holding(store) as pid:
        with pytest.raises(InputError) as error:
            check_unlocked(store, parquet)
        message = str(error.value)
        assert f"is open in process {pid} (" in message
        assert " -c import sys, time import duckdb con = duckdb.connect(" in message  # one line
        assert "\0" not in message and "\n" not in message
        assert "nothing was scored" in message and "close that notebook" in message
        assert f"read the Parquet copies under {parquet}" in message
        assert "-readonly" not in message  # DuckDB's advice for its own shell
    assert snapshot(store.parent) == before
    check_unlocked(store, parquet)  # free again


def test_the_writer_waits_for_a_reader_that_closes_in_time(stores: tuple[Path, Path]) -> None:
    store, parquet = stores
    told: list[str] = []
    with holding(store, seconds=1.5) as pid:
        write_scores(store, parquet, JUNE, _month(JUNE, 0.7), wait=60, step=told.append)
    assert len(told) == 1 and f"open in process {pid}" in told[0] and "up to 60 s" in told[0]
    assert (read_scores(parquet, JUNE).churn_probability == 0.7).all()
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute("SELECT DISTINCT churn_probability FROM scores").fetchall() == [(0.7,)]


def test_a_reader_that_stays_fails_the_write_and_leaves_the_month_in_both(
        stores: tuple[Path, Path]) -> None:
    store, parquet = stores
    before = snapshot(store.parent)
    with holding(store) as pid:
        started = time.monotonic()
        with pytest.raises(InputError) as error:
            write_scores(store, parquet, JUNE, _month(JUNE, 0.9), wait=1)
        assert time.monotonic() - started < 30
        with pytest.raises(InputError):  # a new month: not even its folder is made
            write_scores(store, parquet, JULY, _month(JULY, 0.9), wait=0)
    message = str(error.value)
    assert f"is open in process {pid}" in message and "after waiting 1 s" in message
    assert snapshot(store.parent) == before  # the table, the copy, and no staged file left
    assert (read_scores(parquet, JUNE).churn_probability == 0.1).all()


def test_a_store_that_is_no_duckdb_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "junk.duckdb").write_text("no database")
    with pytest.raises(InputError, match=r"scoring.yaml store: .*junk.duckdb cannot be opened "
                                         r"as a DuckDB database.*Fix: set store"):
        check_unlocked(tmp_path / "junk.duckdb", tmp_path / "parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["junk.duckdb"]


def test_a_month_written_before_the_in_sample_column_still_reads_and_a_new_one_adds_it(
        tmp_path: Path) -> None:
    store, parquet = tmp_path / "scores.duckdb", tmp_path / "parquet"
    old = _month(JUNE, 0.1).drop_columns(["in_sample"])
    (parquet / "as_of=2025-06-30").mkdir(parents=True)
    pq.write_table(old, parquet / "as_of=2025-06-30" / "scores.parquet")
    with duckdb.connect(str(store)) as con:
        con.register("old", old)
        con.execute("CREATE TABLE scores AS SELECT * FROM old")
    write_scores(store, parquet, JULY, _month(JULY, 0.2, in_sample=True))
    assert read_scores(parquet, JUNE).in_sample.isna().all()
    assert read_scores(parquet, JULY).in_sample.tolist() == [True, True]
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute("SELECT as_of, count(*), bool_or(in_sample) FROM scores GROUP BY "
                           "as_of ORDER BY as_of").fetchall() == [(JUNE, 2, None),
                                                                  (JULY, 2, True)]
