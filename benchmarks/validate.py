"""Benchmark: data-contract validation of a large orders table against a plain DuckDB scan.

Measures the wall time of ``validate_source(open_source(folder))`` on a generated source (orders
and customers) and the wall time of one plain DuckDB aggregate query that reads every column of
the same orders file (customers is small next to orders). The target: validation takes at most
3x the scan. Both run alternately ``--repeat`` times in this process; the ratio uses the best times.

The data is generated with DuckDB SQL, deterministically (hash-based), and kept under ``--data``
(gitignored) in a sub-folder named after the row counts, so later runs reuse it.

Run from the repository root:

    .venv/bin/python benchmarks/validate.py                      # 20M order lines, Parquet
    .venv/bin/python benchmarks/validate.py --rows 2000000 --customers 50000 --format both
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import duckdb

from klantwaarde.config import Config, load_config
from klantwaarde.sources import open_source
from klantwaarde.validation import validate_source

TARGET_RATIO = 3.0
LINES_PER_ORDER = 8
DAYS = 1096  # 2022-01-01 to 2024-12-31

ORDERS_SQL = """
WITH line AS (SELECT i, i // {lines} AS o, hash(i, 3) % 20000 AS p FROM range({rows}) t(i))
SELECT
    printf('C%07d', hash(o, 1) % {customers}) AS customer_id,
    DATE '2022-01-01' + CAST(hash(o, 2) % {days} AS INTEGER) AS order_date,
    CAST(sign * qty * price AS DECIMAL(12, 2)) AS gross_amount,
    o AS order_id,
    printf('P%05d', p) AS product_id,
    (['tools', 'fasteners', 'paint', 'electrical', 'plumbing', 'garden', 'safety', 'cleaning',
      'lighting', 'adhesives', 'packaging', 'office'])[1 + CAST(p % 12 AS INTEGER)] AS category,
    CAST(sign * qty AS INTEGER) AS quantity,
    CAST(CASE WHEN hash(i, 6) % 5 = 0 THEN sign * qty * price * (hash(i, 7) % 15) / 100 ELSE 0 END
         AS DECIMAL(12, 2)) AS discount_amount,
    CAST(sign * qty * price * (55 + hash(p, 8) % 30) / 100 AS DECIMAL(12, 2)) AS cost_amount,
    (['webshop', 'sales rep', 'phone', 'EDI'])[1 + CAST(hash(o, 9) % 4 AS INTEGER)] AS channel
FROM (
    SELECT *, 1 + hash(i, 4) % 20 AS qty, (200 + hash(p, 5) % 50000) / 100 AS price,
           CASE WHEN hash(i, 10) % 100 < 3 THEN -1 ELSE 1 END AS sign
    FROM line
)
"""

CUSTOMERS_SQL = """
SELECT
    printf('C%07d', i) AS customer_id,
    printf('AM%02d', hash(i, 11) % 40) AS account_manager,
    (['wholesale', 'construction', 'manufacturing', 'retail', 'healthcare', 'public sector'])
        [1 + CAST(hash(i, 12) % 6 AS INTEGER)] AS industry,
    (['north', 'east', 'south', 'west', 'randstad'])[1 + CAST(hash(i, 13) % 5 AS INTEGER)] AS region
FROM range({customers}) t(i)
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000, help="order lines")
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--format", choices=["parquet", "csv", "both"], default="parquet")
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/validate"),
                        help="where generated sources are kept and reused")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side")
    return parser.parse_args()


def ensure_source(root: Path, fmt: str, rows: int, customers: int) -> Path:
    """The folder holding orders and customers in ``fmt``; generated unless it exists already."""
    folder = root / f"{rows}-rows-{customers}-customers" / fmt
    folder.mkdir(parents=True, exist_ok=True)
    queries = {
        "customers": CUSTOMERS_SQL.format(customers=customers),
        "orders": ORDERS_SQL.format(rows=rows, customers=customers, days=DAYS,
                                    lines=LINES_PER_ORDER),
    }
    for table, sql in queries.items():
        target = folder / f"{table}.{fmt}"
        if target.exists():
            print(f"reusing {target}")
            continue
        print(f"generating {target} ...", flush=True)
        started = time.perf_counter()
        partial = folder / f".{table}.{fmt}.partial"  # a dot-file: ignored by open_source
        options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER"
        duckdb.connect().execute(f"COPY ({sql}) TO '{partial}' ({options})")
        os.replace(partial, target)
        size = target.stat().st_size / 2**20
        print(f"  done in {time.perf_counter() - started:.1f}s, {size:,.0f} MiB", flush=True)
    return folder


def baseline_sql(orders: Path, fmt: str) -> str:
    """One aggregate query that reads every column of ``orders``, as validation has to."""
    if fmt == "csv":
        scan = f"read_csv('{orders}', header = true, all_varchar = true)"
    else:
        scan = f"read_parquet('{orders}')"
    aggregates = ["count(*)"]
    for name, dtype, *_ in duckdb.connect().execute(f"DESCRIBE SELECT * FROM {scan}").fetchall():
        if dtype == "DATE":
            aggregates += [f"min({name})", f"max({name})"]
        elif dtype.startswith(("DECIMAL", "INTEGER", "BIGINT", "DOUBLE")):
            aggregates.append(f"sum({name})")
        else:
            aggregates.append(f"count({name})")
    return f"SELECT {', '.join(aggregates)} FROM {scan}"


def time_baseline(sql: str) -> float:
    started = time.perf_counter()
    duckdb.connect().execute(sql).fetchall()
    return time.perf_counter() - started


def time_validate(folder: Path, cfg: Config) -> float:
    started = time.perf_counter()
    report = validate_source(open_source(str(folder), cfg.source), cfg)
    elapsed = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"validation of {folder} failed: {report.errors}")
    return elapsed


def measure(folder: Path, fmt: str, repeat: int, cfg: Config) -> tuple[list[float], list[float]]:
    """Time the baseline and validation alternately; returns both lists of seconds."""
    sql = baseline_sql(folder / f"orders.{fmt}", fmt)
    baseline, validate = [], []
    for run in range(1, repeat + 1):
        baseline.append(time_baseline(sql))
        validate.append(time_validate(folder, cfg))
        print(f"  {fmt} run {run}/{repeat}: baseline {baseline[-1]:.2f}s, "
              f"validate {validate[-1]:.2f}s", flush=True)
    return baseline, validate


def print_table(rows: int, results: dict[str, tuple[list[float], list[float]]]) -> None:
    print()
    print(f"{'format':<8} {'rows':>12} {'baseline s':>17} {'validate s':>17} {'ratio':>6}  "
          f"target <= {TARGET_RATIO:g}x")
    print(f"{'':<8} {'':>12} {'best / median':>17} {'best / median':>17} {'(best)':>6}")
    for fmt, (baseline, validate) in results.items():
        ratio = min(validate) / min(baseline)
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        print(f"{fmt:<8} {rows:>12,} {_best_median(baseline):>17} {_best_median(validate):>17} "
              f"{ratio:>5.1f}x  {verdict}")


def _best_median(seconds: list[float]) -> str:
    return f"{min(seconds):.2f} / {statistics.median(seconds):.2f}"


def main() -> None:
    args = parse_args()
    formats = ["parquet", "csv"] if args.format == "both" else [args.format]
    cfg = load_config(None)
    results = {}
    for fmt in formats:
        folder = ensure_source(args.data, fmt, args.rows, args.customers)
        results[fmt] = measure(folder, fmt, args.repeat, cfg)
    print_table(args.rows, results)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"\npeak RSS: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
