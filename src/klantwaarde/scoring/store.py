"""The scores table: one partition per as_of in a DuckDB file, and a Parquet copy per month.

A month is written in one transaction that deletes its old rows and inserts the new ones: a
re-run replaces exactly that month, and a run killed before its commit leaves the table as it
was (DuckDB's write-ahead log drops an uncommitted transaction). The Parquet copy is written
next to its place before the commit and renamed into it after.

DuckDB lets no process write a file that another process has open, even read-only. So only the
writer opens the DuckDB file: every reader in klantwaarde reads the Parquet copies, which a
rename replaces whole. The writer checks before it computes that no one else holds the file, and
waits a bounded time for one that opened it since.

Scoring on Spark writes only the Parquet copy, as a folder of part files: into a hidden staging
folder next to its place (``staging``), which ``publish`` renames to a version of the month and
then points ``scores.parquet`` at, a link replaced in one rename. A failed job leaves the month
as it was, and a reader finds the old month or the new one, never neither. The previous version
stays until the next publish, for a reader still in the middle of it. This needs a file system
with links and atomic renames that the driver and executors share (local, NFS, a fuse mount).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
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
    ("response_version", pa.int64()),  # null without a response champion
    ("churn_probability", pa.float64()),
    ("future_net_margin", pa.float64()),  # over the label horizon
    ("margin_at_risk", pa.float64()),  # churn probability x the positive part of the margin
    ("upgrade_probability", pa.float64()),
    ("next_best_categories", TEXTS),  # not owned yet, most likely adopted first
    ("expected_uplift", pa.float64()),  # EUR over the horizon from the next-best categories
    # adoption probability x a peer buyer's 12-month margin, over the next-best categories
    ("adoption_margin", pa.float64()),
    # the reduction in churn probability over the horizon from a visit or call in the next
    # month (the response model); null where it gives no estimate, or without its champion
    ("contact_effect", pa.float64()),
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
    ("in_sample", pa.bool_()),  # a champion was trained on data after as_of
    ("days_since_last_order", pa.int64()),  # at as_of: who is gone (the win-back sheet)
    # the decisions (klantwaarde.decisions), taken when the month is scored
    ("expected_saved_margin", pa.float64()),  # of a retention contact, net of its cost
    ("cross_sell_margin", pa.float64()),  # adoption_margin net of the contact's cost
    ("retention", pa.string()),  # at risk, held out (the control group), win-back or null
    ("cross_sell", pa.bool_()),  # on the cross-sell sheet
    ("capacity", pa.int64()),  # the account manager's contacts a month
])
_DUCKDB = {pa.date32(): "DATE", pa.string(): "VARCHAR", pa.int64(): "BIGINT",
           pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN", TEXTS: "VARCHAR[]"}
_TYPES = {field.name: _DUCKDB[field.type] for field in SCHEMA}
# DuckDB's error when another process holds the file
_LOCK = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")
Step = Callable[[str], None]


def check_unlocked(store: Path, parquet: Path) -> None:
    """No other process has the scores table ``store`` open, so a score can write it when it is
    done; otherwise an input error naming that process and the fix. Whether the paths can be
    written at all is the preflight's check (klantwaarde.outputs). Changes nothing."""
    if store.exists():
        _connect(store, parquet).close()


def write_scores(store: Path, parquet: Path, as_of: dt.date, scores: pa.Table,
                 wait: float = 0.0, step: Step = lambda _: None) -> None:
    """Replace the month ``as_of`` in the scores table (and its Parquet copy) by ``scores``;
    wait up to ``wait`` seconds for another process to close the DuckDB file."""
    scores = scores.select(SCHEMA.names).cast(SCHEMA)
    if pc.any(pc.not_equal(scores["as_of"], pa.scalar(as_of))).as_py():
        raise ValueError(f"every score row must have as_of {as_of}")
    store.parent.mkdir(parents=True, exist_ok=True)
    folder = parquet / f"as_of={as_of.isoformat()}"
    staging = folder / f".scores.parquet.partial-{os.getpid()}"
    with _connect(store, parquet, wait, step) as con:
        folder.mkdir(parents=True, exist_ok=True)
        remove_abandoned(folder / "scores.parquet")
        try:
            pq.write_table(scores, staging)  # before the commit: only a rename is left after it
            con.execute(f"CREATE TABLE IF NOT EXISTS scores "
                        f"({', '.join(f'{n} {t}' for n, t in _TYPES.items())})")
            con.register("new_scores", scores)
            con.execute("BEGIN TRANSACTION")
            for name, kind in _TYPES.items():  # a table written before the column existed
                con.execute(f"ALTER TABLE scores ADD COLUMN IF NOT EXISTS {name} {kind}")
            con.execute("DELETE FROM scores WHERE as_of = ?", [as_of])
            con.execute("INSERT INTO scores BY NAME SELECT * FROM new_scores")
            con.execute("COMMIT")
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
    os.replace(staging, folder / "scores.parquet")
    _remove_versions(folder, keep=())


def staging(parquet: Path, as_of: dt.date) -> Path:
    """A new hidden folder path next to the month ``as_of`` for a writer of part files; a
    staging folder that a killed run left is removed."""
    folder = parquet / f"as_of={as_of.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    remove_abandoned(folder / "scores.parquet")
    return folder / f".scores.parquet.partial-{os.getpid()}"


def publish(parquet: Path, as_of: dt.date, written: Path) -> Path:
    """Make the folder ``written`` (at ``staging``) the month ``as_of``: renamed to a version of
    its own, then ``scores.parquet`` replaced by a link to it in one rename; the version before
    the one replaced is removed. The month's path."""
    folder = parquet / f"as_of={as_of.isoformat()}"
    target = folder / "scores.parquet"
    version = folder / f".scores-{uuid.uuid4().hex}.parquet"
    written.rename(version)
    previous = target.resolve() if target.is_symlink() else None
    link = folder / f".scores.parquet.link-{os.getpid()}"
    link.symlink_to(version.name)
    os.replace(link, target)
    _remove_versions(folder, keep=(version.resolve(), previous))
    return target


def _remove_versions(folder: Path, keep: tuple[Path | None, ...]) -> None:
    for version in folder.glob(".scores-*.parquet"):
        if version.resolve() not in keep:
            shutil.rmtree(version, ignore_errors=True)


def scored_months(parquet: Path) -> list[dt.date]:
    """The months with a Parquet copy (a file, or a folder of part files) under ``parquet``,
    oldest first."""
    months = []
    for path in parquet.glob("as_of=*/scores.parquet"):
        try:
            months.append(dt.date.fromisoformat(path.parent.name.removeprefix("as_of=")))
        except ValueError:  # not a folder of klantwaarde score
            continue
    return sorted(months)


def month_path(parquet: Path, as_of: dt.date) -> Path:
    """The Parquet copy of month ``as_of``: a file, or a link to a folder of part files."""
    return parquet / f"as_of={as_of.isoformat()}" / "scores.parquet"


def read_columns(parquet: Path, as_of: dt.date, columns: tuple[str, ...]) -> pa.Table:
    """Those of ``columns`` that the Parquet copy of month ``as_of`` holds (a month written
    before a column existed lacks it)."""
    path = month_path(parquet, as_of)
    held = set(pq.ParquetDataset(path).schema.names)
    return pq.read_table(path, columns=[c for c in columns if c in held])


def read_scores(parquet: Path, as_of: dt.date) -> pd.DataFrame:
    """The scores of month ``as_of`` from its Parquet copy (a file, or a folder of part files),
    one row per customer, with every column of SCHEMA (empty where the month was written
    before the column existed); an input error when there are none. Never opens the DuckDB
    file, so it never blocks a writer."""
    path = month_path(parquet, as_of)
    if not path.exists():
        held = ", ".join(str(m) for m in scored_months(parquet)[-6:]) or "none"
        raise InputError(
            f"scores: the scores table (its Parquet copies under {parquet}) holds no scores "
            f"at {as_of} (months held: {held}). Run klantwaarde score --source SRC --as-of "
            f"{as_of} first.")
    table = pq.read_table(path)
    for field in SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(len(table), field.type))
    return table.select(SCHEMA.names).cast(SCHEMA).sort_by("customer_id").to_pandas()


def _connect(store: Path, parquet: Path, wait: float = 0.0, step: Step = lambda _: None
             ) -> duckdb.DuckDBPyConnection:
    """A connection that can write ``store``; while another process has the file open, retry
    for ``wait`` seconds, then an input error naming that process and the fix."""
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            return duckdb.connect(str(store))
        except duckdb.Error as exc:
            holder = _holder(exc)
            if holder is None:
                raise InputError(f"scoring.yaml store: {store} cannot be opened as a DuckDB "
                                 f"database ({exc}). Fix: set store to the scores table that "
                                 "klantwaarde score writes, or to a new file.") from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise _held(store, parquet, holder, wait) from None
            if not told:
                step(f"{store} is open in {holder}; waiting up to {wait:g} s for it to close")
                told = True
            time.sleep(min(0.5, left))


def _holder(error: duckdb.Error) -> str | None:
    """The process that DuckDB's lock error names, with its command line where readable."""
    found = _LOCK.search(str(error))
    if found is None:
        return None
    try:
        command = Path(f"/proc/{found['pid']}/cmdline").read_bytes()
    except OSError:  # gone, not Linux, or not ours to read
        command = b""
    shown = " ".join(command.replace(b"\0", b" ").decode(errors="replace").split())
    return f"process {found['pid']} ({shown[:200] or found['program']})"


def _held(store: Path, parquet: Path, holder: str, waited: float) -> InputError:
    outcome = (f"after waiting {waited:g} s the month was not written; the table and its "
               "Parquet copies keep what they held" if waited else "nothing was scored")
    return InputError(
        f"scores: the scores table {store} is open in {holder}, and DuckDB lets no process "
        f"write a file that another has open, even read-only; {outcome}. Fix: close that "
        "notebook or connection (con.close(), or restart its kernel), or read the Parquet "
        f"copies under {parquet} instead, which never block scoring (pandas.read_parquet, or "
        f"duckdb's read_parquet('{parquet}/*/scores.parquet')); then run klantwaarde score "
        "again.")
