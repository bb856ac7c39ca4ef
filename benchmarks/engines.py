"""Benchmark: the features for one as_of on DuckDB, PostgreSQL and local Spark, each beside that
engine's own plain scan of the same columns, and Spark on 1 and on 2 cores.

Simulates (once, kept under ``--data``, gitignored) a base of ``--customers`` customers (500,000
by default) over 14 months from 2024-01-01, as Parquet. PostgreSQL: a server of its own
(``initdb`` and ``pg_ctl`` on a temporary folder, as the tests start it), the base copied in with
COPY. Spark: ``spark:<folder>`` in local mode, ``local[1]`` and ``local[2]``. Each step runs in a
child process and reports its wall time (the engine's own start, such as Spark's JVM, excluded):

  scan       one aggregate per table that reads every value of the columns the features read
             (DuckDB and Spark: ``max(hash(col))``; PostgreSQL: ``max(hashtext(col::text))``);
  features   what ``klantwaarde features`` computes: the history's panels and the snapshot at
             as_of, every row fetched as Arrow.

Run from the repository root:

    .venv/bin/python benchmarks/engines.py                      # 500,000 customers
    .venv/bin/python benchmarks/engines.py --customers 20000    # a quick look
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from features import COLUMNS  # the columns the features read: what each scan reads too

ROOT = Path(__file__).resolve().parents[1]
START = dt.date(2024, 1, 1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--months", type=int, default=14)
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--engines", default="duckdb,postgres,spark1,spark2")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # ENGINE SOURCE AS_OF
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    return parser.parse_args()


def _tables(source) -> dict:  # noqa: ANN001
    return {name: raw.table for name, raw in source.tables.items() if name in COLUMNS}


def child(engine: str, src: str, as_of: dt.date) -> None:
    """Time the scan and the features of one engine; print them as JSON."""
    from klantwaarde.config import load_config
    from klantwaarde.features import features_at
    from klantwaarde.sources import open_source

    cfg = load_config(None)
    source = open_source(src, cfg.source)
    tables = _tables(source)
    if engine.startswith("spark"):  # warm the JVM up on a query of its own
        next(iter(tables.values())).count().execute()
    started = time.perf_counter()
    for name, table in tables.items():
        columns = [c for c in COLUMNS[name] or table.columns if c in table.columns]
        if engine == "postgres":  # Ibis has no hash for PostgreSQL: its own hashtext
            con = table._find_backend()
            sql = ", ".join(f'max(hashtext("{c}"::text))' for c in columns)
            with con.con.cursor() as cur:
                cur.execute(f"SELECT {sql} FROM ({con.compile(table)}) AS t")
                cur.fetchall()
        else:
            table.aggregate(**{c: table[c].hash().max() for c in columns}).to_pyarrow()
    scan = time.perf_counter() - started
    started = time.perf_counter()
    rows = features_at(source, as_of, cfg).table.to_pyarrow().num_rows
    print(json.dumps({"scan": scan, "features": time.perf_counter() - started, "rows": rows}))


def simulated(args: argparse.Namespace) -> tuple[Path, dt.date]:
    from klantwaarde.config import load_config
    from klantwaarde.simulation import simulate

    folder = args.data / f"engines-{args.customers}-{args.months}"
    if not (folder / "orders.parquet").exists():
        print(f"simulating {folder} ...", flush=True)
        simulate(args.customers, args.months, 1, folder, load_config(), start=START)
    year, month = divmod(START.month - 1 + args.months - 1, 12)
    end = dt.date(START.year + year, month + 1, 1)
    return folder, end.replace(day=calendar.monthrange(end.year, end.month)[1])


def run_child(engine: str, source: str, as_of: dt.date, env: dict[str, str]) -> dict:
    """The child's times, with the machine's load average (1 minute) when it started: other
    work on the machine slows every engine."""
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, __file__, "--child", engine, "--source", source,
                           "--as-of", as_of.isoformat()], capture_output=True, text=True,
                          env=os.environ | env)
    if done.returncode:
        raise SystemExit(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"load": load}


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child, args.source, dt.date.fromisoformat(args.as_of))
        return
    folder, as_of = simulated(args)
    sys.path.insert(0, str(ROOT / "tests"))
    from engines import load_postgres, postgres_server

    wanted = args.engines.split(",")
    results: dict[str, dict] = {}
    env = {"PYTHONPATH": str(ROOT / "src")}
    if "duckdb" in wanted:
        results["DuckDB"] = run_child("duckdb", str(folder), as_of, env)
    if "postgres" in wanted:
        with postgres_server() as server:
            started = time.perf_counter()
            load_postgres(server, folder, "bench")
            print(f"PostgreSQL: base copied in in {time.perf_counter() - started:.0f} s",
                  flush=True)
            results["PostgreSQL"] = run_child("postgres", server.url(schema="bench"), as_of,
                                              env)
    for cores in (1, 2):
        if f"spark{cores}" in wanted:
            results[f"Spark local[{cores}]"] = run_child(
                f"spark{cores}", f"spark:{folder}", as_of,
                env | {"SPARK_MASTER": f"local[{cores}]", "SPARK_SHUFFLE_PARTITIONS":
                       str(4 * cores), "SPARK_DRIVER_MEMORY": "6g"})
    print(f"\nfeatures at {as_of}, {args.customers:,} customers over {args.months} months "
          f"({os.cpu_count()} cores)")
    print(f"{'engine':<18}{'scan s':>9}{'features s':>12}{'ratio':>8}{'rows':>10}"
          f"{'load at start':>15}")
    for name, r in results.items():
        print(f"{name:<18}{r['scan']:>9.1f}{r['features']:>12.1f}"
              f"{r['features'] / r['scan']:>8.1f}{r['rows']:>10,}{r['load']:>15.1f}")
    one, two = results.get("Spark local[1]"), results.get("Spark local[2]")
    if one and two:
        print(f"Spark from 1 to 2 cores: features {one['features'] / two['features']:.2f}x "
              f"faster, scan {one['scan'] / two['scan']:.2f}x")
    rows = {r["rows"] for r in results.values()}
    if len(rows) > 1:
        raise SystemExit(f"the engines gave different numbers of rows: {sorted(rows)}")


if __name__ == "__main__":
    main()
