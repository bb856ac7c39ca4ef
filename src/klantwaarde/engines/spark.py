"""Spark: a source is ``spark:<location>``, with the location of the tables.

- a folder (local, ``hdfs://``, ``s3a://``, ``abfss://``, ``dbfs:/`` ...) that holds one Parquet
  file or Parquet folder per contract table (``orders.parquet`` or ``orders/``), or
- ``catalog.schema`` (or ``schema``) of the session's catalog, e.g. Unity Catalog or a Hive
  metastore on Databricks.

Every step runs as Spark jobs through Ibis' PySpark backend, in the session that
``spark-submit`` or Databricks started, or else in a local one (``SPARK_MASTER``, default
``local[*]``). Only aggregates and, at the model boundary of training, the feature rows reach
the driver; scoring keeps them in Spark (``klantwaarde.scoring.spark``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import ibis

from klantwaarde.errors import InputError

_INSTALL = ("Fix: install the Spark extra (pip install 'klantwaarde[spark]'), which brings "
            "pyspark, and a Java 17 or 21 runtime (Debian: apt-get install openjdk-17-jre-"
            "headless), or run klantwaarde inside spark-submit or a Databricks job.")


def session():  # noqa: ANN201 (pyspark is optional)
    """The active Spark session, or a local one; an input error when pyspark or Java is
    missing or the session does not start."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError(f"--source spark:... needs pyspark, which is not installed. "
                         f"{_INSTALL}") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    java = (Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME")
            else shutil.which("java"))
    if java is None or not Path(java).exists():
        raise InputError(f"--source spark:... needs a Java runtime to start Spark, and none "
                         f"was found (no java on PATH, JAVA_HOME unset or wrong). {_INSTALL}")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # a local session binds loopback
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this Python
    builder = (SparkSession.builder.master(os.environ.get("SPARK_MASTER", "local[*]"))
               .appName("klantwaarde")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.shuffle.partitions", os.environ.get(
                   "SPARK_SHUFFLE_PARTITIONS", "8"))
               .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "4g")))
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j and pyspark raise their own types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"Spark did not start: {first}. {_INSTALL}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def connect(src: str) -> tuple[ibis.BaseBackend, str | tuple[str, ...], dict[str, str] | None]:
    """An Ibis connection to Spark for ``src`` (``spark:<location>``), with what the location
    holds: for a folder, its tables (name → path, each already readable as ``con.table(name)``);
    for a catalog schema, the schema (``con.list_tables(database=...)``) and no tables."""
    location = src.removeprefix("spark:")
    if not location:
        raise InputError("--source spark: names no location. Pass spark:<folder> (one Parquet "
                         "file or folder per table) or spark:<catalog.schema>.")
    if _is_path(location) and ":" not in location.split("/", 1)[0] \
            and not Path(location).exists():  # a local folder: no need to start Spark to see
        raise InputError(f"--source {src}: {location} does not exist. Pass spark:<folder> with "
                         "one Parquet file or folder per table, or spark:<catalog.schema>.")
    spark = session()
    con = ibis.pyspark.connect(spark)
    con.compiler = _compiler()  # this connection's queries only
    _register_before_caching(con)
    if _is_path(location):
        return con, location, _parquet_tables(spark, location, src)
    parts = location.split(".")
    if len(parts) > 2:
        raise InputError(f"--source {src}: a catalog location is catalog.schema or schema.")
    database = tuple(parts) if len(parts) == 2 else parts[0]
    try:
        con.list_tables(database=database)
    except Exception as exc:  # Spark's AnalysisException: no such schema
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"--source {src}: Spark's catalog has no schema {location} "
                         f"({first}). Fix: correct the location, or give a folder of Parquet "
                         "tables.") from None
    return con, database, None


def parquet_table(con: ibis.BaseBackend, key: str, path: str) -> ibis.Table:
    """The Parquet file or folder at ``path`` as the table of ``key``."""
    try:
        session().read.parquet(path).createOrReplaceTempView(f"klantwaarde_{key}")
        return con.table(f"klantwaarde_{key}")
    except Exception as exc:  # Spark's AnalysisException and others
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"Table {key} ({path}) cannot be read as Parquet: {first}. "
                         "Fix: export it again.") from None


def _is_path(location: str) -> bool:
    return "/" in location or ":" in location or Path(location).exists()


def _parquet_tables(spark, location: str, src: str) -> dict[str, str]:  # noqa: ANN001
    """Table name → path of each Parquet file or folder in ``location``, listed through
    Hadoop's file system, so that any URL Spark reads works."""
    jvm = spark.sparkContext._jvm
    folder = jvm.org.apache.hadoop.fs.Path(location)
    try:
        fs = folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        entries = fs.listStatus(folder) if fs.exists(folder) else None
    except Exception as exc:  # py4j wraps the JVM's errors
        raise InputError(f"--source {src}: {location} cannot be listed: "
                         f"{str(exc).strip().splitlines()[0]}") from None
    if entries is None:
        raise InputError(f"--source {src}: {location} does not exist. Pass spark:<folder> with "
                         "one Parquet file or folder per table, or spark:<catalog.schema>.")
    found: dict[str, str] = {}
    for entry in entries:
        name = entry.getPath().getName()
        if name.startswith((".", "_")):
            continue
        if name.endswith(".parquet") or entry.isDirectory():
            found[name.removesuffix(".parquet")] = entry.getPath().toString()
    return found


def _compiler():  # noqa: ANN202 (the class comes from an optional import)
    """Ibis' PySpark compiler with two rules put right:

    - the bitwise OR of a group (the categories bought, a bit mask), which Ibis 12 lacks for
      Spark: Spark's own ``bit_or`` aggregate;
    - trimming whitespace (``strip``): Ibis writes the vertical tab and form feed as ``\\v``
      and ``\\f``, which Spark reads as the letters v and f, so ``fasteners`` would lose its
      f. Here they are ``chr(11)`` and ``chr(12)``;
    - null tests: Ibis counts NaN as null on Spark (pandas' habit); here NaN is a value, as on
      DuckDB and PostgreSQL, so that validation reports it as not finite rather than missing;
    - the infinity test, which Ibis 12 compiles to a constant false on Spark.
    """
    import ibis.expr.operations as ops
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    class Corrected(PySparkCompiler):
        SIMPLE_OPS = {**PySparkCompiler.SIMPLE_OPS, ops.BitOr: "bit_or"}

        def visit_Strip(self, op, *, arg):  # noqa: N802 (Ibis' names)
            return self.f.trim(arg, self.f.concat(" \t\n\r", self.f.chr(11), self.f.chr(12)))

        def visit_IsNull(self, op, *, arg):  # noqa: N802
            return arg.is_(sge.Null())

        def visit_NotNull(self, op, *, arg):  # noqa: N802
            return arg.is_(sge.Not(this=sge.Null()))

        def visit_IsInf(self, op, *, arg):  # noqa: N802
            if not op.arg.dtype.is_floating():
                return sge.false()
            return sge.or_(arg.eq(self.POS_INF), arg.eq(self.NEG_INF))

    return Corrected()


def _register_before_caching(con: ibis.BaseBackend) -> None:
    """Ibis 12's PySpark backend caches a table without first registering the in-memory tables
    it reads (the snapshot dates); this connection registers them, as every other query does."""
    cache = con._create_cached_table  # type: ignore[attr-defined]

    def registered_first(name: str, expr):  # noqa: ANN001, ANN202
        con._run_pre_execute_hooks(expr)  # type: ignore[attr-defined]
        return cache(name, expr)

    con._create_cached_table = registered_first  # type: ignore[attr-defined]


def holds(expr: ibis.Expr) -> bool:
    """Whether ``expr`` runs on Spark."""
    return ibis.get_backend(expr).name == "pyspark"


def dataframe(expr: ibis.Table):  # noqa: ANN201 (pyspark is optional)
    """``expr`` as a Spark DataFrame, not run yet: its rows stay in Spark. Compiled as Ibis'
    PySpark backend compiles its own queries, with the in-memory tables it reads registered."""
    con = ibis.get_backend(expr)
    con._run_pre_execute_hooks(expr)  # type: ignore[attr-defined]
    return con._session.sql(con.compile(expr))  # type: ignore[attr-defined]
