"""Benchmark: customer profitability inside the engine against a plain DuckDB scan.

Simulates (once, kept under ``--data``, gitignored) a base of 500,000 customers over 12 months,
about 20 million order lines, as Parquet. Then times, alternately and ``--repeat`` times in this
process: a plain DuckDB scan that reads every value of the columns profitability reads (all
tables); the per-customer margins (``customer_margins``, run in the engine and
fetched); and the whole report (margins plus pyramid, whale curve, qualification and remedies in
pandas). The target: the margins take at most 4x the scan.

Run from the repository root:

    .venv/bin/python benchmarks/profitability.py
    .venv/bin/python benchmarks/profitability.py --customers 50000   # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time
from pathlib import Path

import duckdb

from klantwaarde.config import load_config
from klantwaarde.profitability.margins import customer_margins
from klantwaarde.profitability.report import build_report
from klantwaarde.simulation import simulate
from klantwaarde.sources import open_source

TARGET_RATIO = 4.0
START = dt.date(2024, 1, 1)
AS_OF = dt.date(2024, 12, 31)
COLUMNS = {
    "orders": ["customer_id", "order_id", "order_date", "gross_amount", "discount_amount",
               "cost_amount"],
    "invoices": ["customer_id", "invoice_date", "amount", "due_date", "paid_date"],
    "interactions": ["customer_id", "date", "kind"],
    "complaints": ["customer_id", "opened_on"],
    "customers": ["customer_id", "account_manager", "industry", "strategic"],
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/profitability"))
    parser.add_argument("--repeat", type=int, default=3)
    return parser.parse_args()


def ensure_source(root: Path, customers: int, months: int) -> Path:
    folder = root / f"{customers}-customers-{months}-months"
    if folder.exists():
        print(f"reusing {folder}")
    else:
        print(f"simulating {folder} ...", flush=True)
        simulate(customers, months, 1, folder, load_config(), start=START)
    return folder


def scan_sql(folder: Path) -> list[str]:
    """One aggregate query per table that reads every value of the columns profitability reads
    (a hash of each value: count(column) could be answered from Parquet metadata alone)."""
    queries = []
    for table, columns in COLUMNS.items():
        parts = ", ".join(f"sum(hash({c}))" for c in columns)
        queries.append(f"SELECT count(*), {parts} FROM read_parquet('{folder}/{table}.parquet')")
    return queries


def timed(run) -> float:  # noqa: ANN001
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    args = parse_args()
    folder = ensure_source(args.data, args.customers, args.months)
    cfg = load_config()
    con = duckdb.connect()
    lines = con.execute(f"SELECT count(*) FROM '{folder}/orders.parquet'").fetchone()[0]
    queries = scan_sql(folder)
    times: dict[str, list[float]] = {"scan": [], "margins": [], "report": []}
    for run in range(1, args.repeat + 1):
        times["scan"].append(timed(lambda: [duckdb.connect().execute(q).fetchall()
                                            for q in queries]))
        times["margins"].append(timed(lambda: customer_margins(
            open_source(str(folder), cfg.source), AS_OF, cfg, 12).table.to_pyarrow()))
        times["report"].append(timed(lambda: build_report(
            open_source(str(folder), cfg.source), AS_OF, cfg)))
        print(f"  run {run}/{args.repeat}: " + ", ".join(f"{k} {v[-1]:.2f}s"
                                                       for k, v in times.items()), flush=True)
    best = {k: min(v) for k, v in times.items()}
    print()
    print(f"{args.customers:,} customers, {lines:,} order lines (best of {args.repeat})")
    print(f"{'plain scan':<32} {best['scan']:>7.2f} s")
    ratio = best["margins"] / best["scan"]
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"{'margins in the engine':<32} {best['margins']:>7.2f} s  {ratio:.1f}x  "
          f"target <= {TARGET_RATIO:g}x: {verdict}")
    print(f"{'whole report (with segments)':<32} {best['report']:>7.2f} s  "
          f"{best['report'] / best['scan']:.1f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
