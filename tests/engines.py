"""The engines of the parity tests: a real PostgreSQL server started for the test session, a
local Spark session, and a simulated base loaded into each.

PostgreSQL: Debian's packages (``.ci/run`` installs them where apt-get can); ``initdb`` and
``pg_ctl`` on a temporary folder, loopback only, a free port, torn down after the session.
``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user. The
superuser logs in with a password (scram-sha-256 over TCP), so a wrong password is refused as
on a real server; the tests read through a role that may only SELECT.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from installed import Missing, missing

PG_TYPES = {"string": "text", "date32[day]": "date", "double": "double precision",
            "int64": "bigint", "bool": "boolean", "timestamp[us]": "timestamp"}


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    password: str  # of the superuser postgres

    def url(self, user: str = "postgres", password: str | None = None,
            database: str = "postgres", schema: str | None = None) -> str:
        secret = self.password if password is None else password
        query = f"?schema={schema}" if schema else ""
        return f"postgresql://{user}:{secret}@{self.host}:{self.port}/{database}{query}"


def postgres_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<v>/bin."""
    for folder in [os.path.dirname(p) for p in filter(None, [shutil.which("initdb")])] + sorted(
            glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server on 127.0.0.1 for the block; ``Missing`` where PostgreSQL is not
    installed, RuntimeError with the reason where it fails to start."""
    binaries = postgres_binaries()
    if binaries is None:
        raise Missing("PostgreSQL is not installed (no initdb/pg_ctl on PATH or under "
                           "/usr/lib/postgresql; Debian: apt-get install postgresql)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="klantwaarde-pg-"))
    if os.geteuid() == 0:  # initdb refuses root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise Missing("running as root and there is no postgres user to run "
                               "PostgreSQL as") from None
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(8)
    pwfile = folder / "pw"
    pwfile.write_text(password)
    if as_user:
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
    data, port = folder / "data", _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-500:]}")

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
            "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}")
        options = (f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l",
            str(folder / "log"), "-w", "-t", "60", "start")
        try:
            yield PostgresServer("127.0.0.1", port, password)
        finally:
            subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast",
                            "-w", "stop"], capture_output=True, timeout=60)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_postgres(server: PostgresServer, folder: Path, schema: str,
                  tables: dict[str, object] | None = None) -> None:
    """The Parquet tables of ``folder`` (or the pyarrow ``tables``) as tables of ``schema``,
    with their column types, copied in with COPY."""
    import duckdb
    import psycopg
    import pyarrow.parquet as pq

    found = tables if tables is not None else {
        p.name.removesuffix(".parquet"): pq.read_table(p) for p in sorted(folder.glob("*.parquet"))}
    with psycopg.connect(server.url(), autocommit=True) as con:
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for name, table in found.items():
            columns = ", ".join(f'"{f.name}" {PG_TYPES[str(f.type)]}' for f in table.schema)
            con.execute(f'DROP TABLE IF EXISTS "{schema}"."{name}"')
            con.execute(f'CREATE TABLE "{schema}"."{name}" ({columns})')
            with tempfile.TemporaryDirectory() as tmp:
                csv = Path(tmp) / "t.csv"
                duckdb.connect().register("t", table).execute(
                    f"COPY t TO '{csv}' (HEADER, FORMAT csv)")
                with con.cursor().copy(f'COPY "{schema}"."{name}" FROM STDIN '
                                       "WITH (FORMAT csv, HEADER true)") as copy, \
                        csv.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        copy.write(chunk)


def reader_role(server: PostgresServer, schemas: list[str], name: str = "reader") -> str:
    """A role that may only read ``schemas`` (USAGE and SELECT); its password."""
    import psycopg

    password = secrets.token_hex(8)
    with psycopg.connect(server.url(), autocommit=True) as con:
        con.execute(f"DROP ROLE IF EXISTS {name}")
        con.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        for schema in schemas:
            con.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {name}')
            con.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {name}')
    return password


def assert_same_rows(engine, reference, keys: list[str], what: str) -> None:
    """Two pandas tables hold the same rows, matched on ``keys``: the same columns, floats
    within a relative 1e-9, everything else exactly, nulls where the other has nulls."""
    import numpy as np
    import pandas as pd

    assert list(engine.columns) == list(reference.columns), (
        f"{what}: columns differ: {sorted(set(engine.columns) ^ set(reference.columns))}")
    assert len(engine) == len(reference), f"{what}: {len(engine)} rows against {len(reference)}"
    a = engine.sort_values(keys, kind="stable").reset_index(drop=True)
    b = reference.sort_values(keys, kind="stable").reset_index(drop=True)
    wrong = []
    for column in b.columns:
        x, y = a[column], b[column]
        x_null, y_null = x.isna().to_numpy(), y.isna().to_numpy()
        if (x_null != y_null).any():
            wrong.append(f"{column}: nulls differ in {int((x_null != y_null).sum())} rows")
            continue
        if pd.api.types.is_float_dtype(y) or pd.api.types.is_float_dtype(x):
            xv, yv = x.to_numpy(float)[~x_null], y.to_numpy(float)[~y_null]
            close = np.isclose(xv, yv, rtol=1e-9, atol=0) | ((xv == yv) & np.isinf(yv))
            if not close.all():
                first = int(np.flatnonzero(~close)[0])
                wrong.append(f"{column}: {int((~close).sum())} values differ "
                             f"(e.g. {xv[first]!r} against {yv[first]!r})")
        else:
            xs, ys = x[~x_null].tolist(), y[~y_null].tolist()
            bad = [i for i, (u, v) in enumerate(zip(xs, ys, strict=True)) if u != v]
            if bad:
                wrong.append(f"{column}: {len(bad)} values differ (e.g. {xs[bad[0]]!r} "
                             f"against {ys[bad[0]]!r})")
    assert not wrong, f"{what}: " + "; ".join(wrong)


def spark_session(warehouse: Path):  # noqa: ANN201
    """A local Spark session on one core for the test session; ``Missing`` without pyspark or
    Java. The library finds it as the active session."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise Missing("pyspark is not installed (pip install -e '.[dev]')") from None
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise Missing("no Java runtime (Debian: apt-get install openjdk-17-jre-headless)")
    import sys

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[1]").appName("klantwaarde-tests")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true")
             .config("spark.sql.warehouse.dir", str(warehouse))
             .config("spark.driver.memory", "2g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@pytest.fixture(scope="session", name="spark")
def spark_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One local Spark session for the test session (per xdist worker); the tests that need it
    are skipped, with the reason, where pyspark or Java is not installed (``missing``)."""
    try:
        session = spark_session(tmp_path_factory.mktemp("spark-warehouse"))
    except Missing as exc:
        missing(f"no Spark for the engine tests: {exc}")
    yield session
    session.stop()


def spark_copy(base: Path, folder: Path) -> Path:
    """The Parquet tables of ``base`` in ``folder``, orders as a folder of two Parquet files, as
    Spark writes a table."""
    import pyarrow.parquet as pq

    folder.mkdir()
    for path in base.glob("*.parquet"):
        if path.stem == "orders":
            orders = pq.read_table(path)
            (folder / "orders").mkdir()
            half = orders.num_rows // 2
            pq.write_table(orders.slice(0, half), folder / "orders" / "part-0.parquet")
            pq.write_table(orders.slice(half), folder / "orders" / "part-1.parquet")
        else:
            shutil.copy(path, folder / path.name)
    return folder


def findings(report) -> list[tuple]:  # noqa: ANN001
    """A validation report's findings and table figures, engine-independent parts: where,
    what, how many rows, the fix; the examples' rows are compared apart."""
    return sorted((f.where, f.problem, f.fix, f.rows) for f in report.errors) + sorted(
        (s.spec.name, s.rows, s.customers, s.first_date, s.last_date,
         tuple(c.name for c in s.absent_columns), s.extra_columns, s.protected_columns)
        for s in report.summaries)


def bad_copy(base: Path, out: Path) -> Path:
    """The Parquet tables of ``base`` with typed-column faults every engine can hold: missing
    required values, NaN and infinite amounts, dates far outside the horizon, unknown customers
    and products, and repeated keys."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True)
    for path in sorted(base.glob("*.parquet")):
        table = pq.read_table(path)
        if path.stem == "orders":
            df = table.to_pandas()
            df.loc[3, "customer_id"] = None
            df.loc[5, "gross_amount"] = np.nan
            df.loc[6, "gross_amount"] = np.inf
            df.loc[7, "order_date"] = pd_date("2099-01-31")
            df.loc[8, "order_date"] = None
            df.loc[9, "customer_id"] = "NOBODY"
            df.loc[10, "product_id"] = "NO-SUCH-PRODUCT"
            df.loc[11, "discount_amount"] = -np.inf
            df.loc[12, "gross_amount"] = None
            table = pa.Table.from_pandas(df, schema=table.schema, preserve_index=False)
            amounts = df.gross_amount.to_numpy(float)  # NaN stays NaN (pandas would null it)
            table = table.set_column(table.schema.get_field_index("gross_amount"),
                                     "gross_amount", pa.array(amounts, mask=df.index == 12))
        elif path.stem == "invoices":
            df = table.to_pandas()
            df.loc[1, "invoice_id"] = df.loc[0, "invoice_id"]
            df.loc[2, "paid_date"] = pd_date("2101-05-01")
            table = pa.Table.from_pandas(df, schema=table.schema, preserve_index=False)
        elif path.stem == "customers":
            table = pa.concat_tables([table, table.slice(0, 2)])
        pq.write_table(table, out / path.name)
    return out


def pd_date(text: str):  # noqa: ANN201
    import datetime as dt

    return dt.date.fromisoformat(text)


@pytest.fixture(scope="session", name="pg")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the test session (per xdist worker); the tests that need it
    are skipped, with the reason, where PostgreSQL is not installed (``missing``)."""
    manager = postgres_server()
    try:
        server = manager.__enter__()
    except Missing as exc:
        missing(f"no PostgreSQL server for the engine tests: {exc}")
    yield server
    manager.__exit__(None, None, None)
