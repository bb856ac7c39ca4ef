"""Benchmark: the feature pipeline in the engine against a plain DuckDB scan and against pandas.

Simulates (once, kept under ``--data``, gitignored) a base of 500,000 customers over 14 months
from 2024-01-01, about 20 million order lines, as Parquet; ``--source`` takes an existing folder
instead. Then runs, alternately and ``--repeat`` times, each step in its own child process, and
reports the best wall time of the work (imports excluded), the child's CPU time (user + system,
imports included: it shows how much the engine runs in parallel, and is less disturbed than wall
time by other load on the machine) and its peak memory (``ru_maxrss``, imports included):

  scan       a plain DuckDB aggregate that reads every value of the columns the features read
             (``sum(hash(col))`` per column, one query per table);
  1 as_of    what ``klantwaarde features`` does: the history's panels, the snapshot, written
             to Parquet as the engine streams it;
  12 as_of   the same with ``--snapshots 12``: the 12 monthly snapshots up to as_of in one go;
  pandas     ``features_pandas.features_pandas``: the same features for as_of in vectorised
             pandas (what a data scientist would write without the engine), in memory.

The engine's steps print their stages: the history (order lines costed and every table
aggregated into monthly panels, kept in the engine) and the snapshots (windows over the panels,
written to Parquet); the 12-snapshot step also times its output alone, read back and written
again in the same row groups (not counted in the step): with the history, a floor for any build
of the same rows. DuckDB runs on all its threads; every run's Parquet file is hashed, and the
runs of a step must give the same bytes.

as_of is the last day of the data (2025-02-28), so the 12-month windows are full. The targets:
one snapshot takes at most 5x the scan; 12 snapshots at most 1.5x one snapshot; the engine is at
least 5x faster than pandas; every engine step peaks below 6 GiB; the runs are identical.
Afterwards the engine's and pandas' tables for as_of are compared on every row and feature
(floats within a relative 1e-9 and an absolute 1e-6; everything else exactly, nulls equal to
nulls) and every disagreement is reported.

Run from the repository root:

    .venv/bin/python benchmarks/features.py                     # 500,000 customers, 3 runs
    .venv/bin/python benchmarks/features.py --customers 50000   # a quick look
    .venv/bin/python benchmarks/features.py --check-only --source /tmp/base --as-of 2024-12-31
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

START = dt.date(2024, 1, 1)
GIB = 2**30
TARGETS = {"one": 5.0, "twelve": 1.5, "speedup": 5.0, "peak_gib": 6.0}
RTOL, ATOL = 1e-9, 1e-6
# the columns the feature pipeline reads, per table (those the source lacks are left out)
COLUMNS = {
    "orders": ["customer_id", "order_id", "order_date", "gross_amount", "discount_amount",
               "cost_amount", "category", "product_id", "quantity"],
    "invoices": ["customer_id", "invoice_date", "amount", "due_date", "paid_date"],
    "interactions": ["customer_id", "date", "kind"],
    "complaints": ["customer_id", "opened_on", "closed_on"],
    "customers": None,  # every column but account_manager and the protected attributes
    "products": ["product_id", "category", "unit_cost"],
}
STEPS = {"scan": "plain DuckDB scan", "one": "features, 1 as_of",
         "twelve": "features, 12 as_of", "pandas": "pandas, 1 as_of"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--months", type=int, default=14)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/features"))
    parser.add_argument("--source", type=Path, help="an existing Parquet folder instead")
    parser.add_argument("--as-of", type=dt.date.fromisoformat,
                        help="default: the last day of the simulated months")
    parser.add_argument("--snapshots", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS))
    parser.add_argument("--check-only", action="store_true",
                        help="only compute both tables for as_of and compare them")
    parser.add_argument("--show", type=int, default=10,
                        help="disagreements listed per feature")
    parser.add_argument("--step", choices=list(STEPS), help=argparse.SUPPRESS)  # in a child
    parser.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


# ----------------------------------------------------------------------------- the child process

def scan_sql(folder: Path) -> list[str]:
    """One aggregate per table that reads every value of the columns the features read (a hash
    of each value: count(column) could be answered from Parquet metadata alone)."""
    import pyarrow.parquet as pq

    from klantwaarde.config import load_config

    protected = {p.lower() for p in load_config().contract.protected_attributes}
    queries = []
    for table, wanted in COLUMNS.items():
        file = folder / f"{table}.parquet"
        if not file.exists():
            continue
        names = pq.read_schema(file).names
        columns = ([c for c in names if c.lower() not in protected | {"account_manager"}]
                   if wanted is None else [c for c in wanted if c in names])
        parts = ", ".join(f"sum(hash({c}))" for c in columns)
        queries.append(f"SELECT count(*), {parts} FROM read_parquet('{file}')")
    return queries


def child(args: argparse.Namespace) -> None:
    """Run one step and print {"seconds": ..., "rows": ..., "stages": ..., "sha256": ...} as
    the last line."""
    import hashlib
    import tempfile

    import duckdb

    from klantwaarde.config import load_config
    from klantwaarde.features.output import write_features
    from klantwaarde.features.snapshots import build
    from klantwaarde.history import build_history
    from klantwaarde.periods import anchor_of, period_of
    from klantwaarde.sources import open_source

    sys.path.insert(0, str(Path(__file__).parent))
    from features_pandas import features_pandas

    cfg = load_config()
    folder, as_of = args.source, args.as_of
    queries = scan_sql(folder) if args.step == "scan" else []
    stages: dict[str, float] = {}
    digest = None
    started = time.perf_counter()
    if args.step == "scan":
        con = duckdb.connect()
        rows = [con.execute(q).fetchone() for q in queries][0][0]  # orders' count
    elif args.step in ("one", "twelve"):
        snapshots = args.snapshots if args.step == "twelve" else 1
        anchor = anchor_of(as_of)
        last = period_of(as_of, anchor)
        history = build_history(open_source(str(folder), cfg.source), cfg, anchor, last)
        stages["history"] = time.perf_counter() - started
        sets = (build(history, cfg, [last - k], labels=False)
                for k in reversed(range(snapshots)))
        with tempfile.TemporaryDirectory() as tmp:
            path = args.save or Path(tmp) / "features.parquet"
            _, rows = write_features(sets, path)
            stages["snapshots"] = time.perf_counter() - started - stages["history"]
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            stages["output alone"] = rewrite(path, Path(tmp) / "again.parquet")
    else:
        result = features_pandas(folder, as_of, cfg)
        rows = len(result)
    seconds = time.perf_counter() - started - stages.get("output alone", 0.0)
    if args.save and args.step == "pandas":
        result.to_parquet(args.save, index=False)
    print(json.dumps({"seconds": seconds, "rows": rows, "stages": stages, "sha256": digest}))


def rewrite(path: Path, again: Path) -> float:
    """Seconds to read the written features back and write them again in the same row groups:
    what the output's rows cost without computing any of them (not counted in the step)."""
    import pyarrow.parquet as pq

    from klantwaarde.features.output import ROW_GROUP, row_groups

    started = time.perf_counter()
    source = pq.ParquetFile(path)
    with pq.ParquetWriter(again, source.schema_arrow) as writer:
        for table in row_groups(source.iter_batches(), source.schema_arrow):
            writer.write_table(table, row_group_size=ROW_GROUP)
    return time.perf_counter() - started


def run_step(step: str, folder: Path, as_of: dt.date, snapshots: int, save: Path | None
             ) -> dict[str, float]:
    """One step in a child process: its own timing and the child's peak RSS."""
    command = [sys.executable, __file__, "--step", step, "--source", str(folder),
               "--as-of", as_of.isoformat(), "--snapshots", str(snapshots)]
    if save:
        command += ["--save", str(save)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"step {step} failed ({os.waitstatus_to_exitcode(status)}):\n{output}")
    last = json.loads(output.strip().splitlines()[-1])
    return {"seconds": last["seconds"], "rows": last["rows"], "peak": usage.ru_maxrss * 1024,
            "cpu": usage.ru_utime + usage.ru_stime, "stages": last["stages"],
            "sha256": last["sha256"]}


# ------------------------------------------------------------------------------- the comparison

def compare(engine_file: Path, pandas_file: Path, show: int) -> bool:
    """Every row and feature of the two tables; prints each disagreement. True when they agree."""
    import numpy as np
    import pandas as pd

    e = pd.read_parquet(engine_file).set_index("customer_id")
    b = pd.read_parquet(pandas_file).set_index("customer_id")
    ok = True
    print(f"agreement check, engine ({len(e):,} rows x {e.shape[1]} columns) against pandas "
          f"({len(b):,} rows x {b.shape[1]} columns):")
    for label, only in (("only in the engine", e.index.difference(b.index)),
                        ("only in pandas", b.index.difference(e.index))):
        if len(only):
            ok = False
            print(f"  rows {label}: {len(only):,}, e.g. {', '.join(map(str, only[:show]))}")
    if e.index.duplicated().any() or b.index.duplicated().any():
        ok = False
        print(f"  repeated customer_id: engine {e.index.duplicated().sum():,}, "
              f"pandas {b.index.duplicated().sum():,}")
    for label, only in (("only in the engine", e.columns.difference(b.columns)),
                        ("only in pandas", b.columns.difference(e.columns))):
        if len(only):
            ok = False
            print(f"  columns {label}: {', '.join(only)}")
    rows = e.index.intersection(b.index)
    e, b = e.loc[rows], b.loc[rows]
    checked = 0
    for column in [c for c in e.columns if c in b.columns]:
        x, y = e[column], b[column]
        numeric = (pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y)
                   and not pd.api.types.is_bool_dtype(x) and not pd.api.types.is_bool_dtype(y))
        if numeric:
            xv = x.astype("float64").to_numpy(na_value=np.nan)
            yv = y.astype("float64").to_numpy(na_value=np.nan)
            same = np.isclose(xv, yv, rtol=RTOL, atol=ATOL, equal_nan=True)
        else:
            xs = x.astype("object").where(x.notna(), None).map(str)
            ys = y.astype("object").where(y.notna(), None).map(str)
            same = (xs == ys).to_numpy()
        checked += 1
        bad = np.flatnonzero(~same)
        if len(bad):
            ok = False
            print(f"  {column}: {len(bad):,} of {len(rows):,} rows differ")
            for i in bad[:show]:
                print(f"      {rows[i]}: engine {_value(x.iloc[i])!r}, "
                      f"pandas {_value(y.iloc[i])!r}")
    if ok:
        print(f"  AGREE on all {len(rows):,} customers x {checked} columns "
              f"(floats within rtol {RTOL:g}, atol {ATOL:g})")
    return ok


def _value(v: object) -> object:
    """A NumPy scalar as the Python value it holds (for printing)."""
    return v.item() if hasattr(v, "item") else v


# ---------------------------------------------------------------------------------- the parent

def last_day(start: dt.date, months: int) -> dt.date:
    year, month = divmod(start.year * 12 + start.month - 1 + months - 1, 12)
    return dt.date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def ensure_source(root: Path, customers: int, months: int) -> Path:
    from klantwaarde.config import load_config
    from klantwaarde.simulation import simulate

    folder = root / f"{customers}-customers-{months}-months"
    if folder.exists():
        print(f"reusing {folder}")
    else:
        print(f"simulating {folder} ...", flush=True)
        simulate(customers, months, 1, folder, load_config(), start=START)
    return folder


def main() -> None:
    args = parse_args()
    if args.step:
        child(args)
        return
    if args.source:
        folder = args.source
        if not args.as_of:
            raise SystemExit("--source needs --as-of")
        as_of = args.as_of
    else:
        folder = ensure_source(args.data, args.customers, args.months)
        as_of = args.as_of or last_day(START, args.months)
    out = args.data / "results"
    out.mkdir(parents=True, exist_ok=True)
    saved = {"one": out / "engine.parquet", "pandas": out / "pandas.parquet"}
    for file in saved.values():
        file.unlink(missing_ok=True)
    if args.check_only:
        for step in ("one", "pandas"):
            r = run_step(step, folder, as_of, 1, saved[step])
            print(f"{STEPS[step]}: {r['rows']:,} rows in {r['seconds']:.2f} s")
        raise SystemExit(0 if compare(saved["one"], saved["pandas"], args.show) else 1)

    import duckdb

    lines = duckdb.sql(f"SELECT count(*) FROM '{folder}/orders.parquet'").fetchone()[0]
    version = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True).stdout.strip() or "unknown"
    print(f"as_of {as_of}, {args.snapshots} snapshots, {os.cpu_count()} CPUs, code {version}; "
          f"each step in its own process; load average {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, list[dict[str, float]]] = {s: [] for s in args.steps}
    for run in range(1, args.repeat + 1):
        for step in args.steps:
            save = saved.get(step) if run == 1 else None
            results[step].append(run_step(step, folder, as_of, args.snapshots, save))
        print(f"  run {run}/{args.repeat}: " + ", ".join(
            f"{s} {r[-1]['seconds']:.2f}s" for s, r in results.items()), flush=True)

    best = {s: min(r["seconds"] for r in rs) for s, rs in results.items()}
    peak = {s: max(r["peak"] for r in rs) / GIB for s, rs in results.items()}
    rows = {s: rs[0]["rows"] for s, rs in results.items()}
    cpu = {s: min(r["cpu"] for r in rs) for s, rs in results.items()}
    print()
    print(f"{folder}: {lines:,} order lines; best of {args.repeat}; cpu = user + system seconds "
          f"of the step's process, imports included (least of the runs); peak = its max RSS; "
          f"load average now {os.getloadavg()[0]:.2f}")
    print(f"{'step':<22} {'seconds':>8} {'cpu s':>8} {'rows':>11} {'peak GiB':>9}  ratio")
    for step in args.steps:
        ratio = ""
        if step == "one" and "scan" in best:
            ratio = f"{best['one'] / best['scan']:.1f}x the scan"
        elif step == "twelve" and "one" in best:
            ratio = f"{best['twelve'] / best['one']:.1f}x one as_of"
        elif step == "pandas" and "one" in best:
            ratio = f"{best['pandas'] / best['one']:.1f}x the engine's time"
        print(f"{STEPS[step]:<22} {best[step]:>8.2f} {cpu[step]:>8.1f} {rows[step]:>11,} "
              f"{peak[step]:>9.2f}  {ratio}")
        fastest = min(results[step], key=lambda r: r["seconds"])
        for stage, seconds in fastest["stages"].items():
            print(f"  {stage:<20} {seconds:>8.2f}")
    print()
    identical = {s: len({r["sha256"] for r in results[s]}) == 1
                 for s in ("one", "twelve") if s in results}

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    if {"one", "scan"} <= set(best):
        r = best["one"] / best["scan"]
        print(f"1 as_of <= {TARGETS['one']:g}x the scan:      {r:5.1f}x  "
              f"{verdict(r <= TARGETS['one'])}")
    if {"one", "twelve"} <= set(best):
        r = best["twelve"] / best["one"]
        print(f"12 as_of <= {TARGETS['twelve']:g}x one as_of:    {r:5.1f}x  "
              f"{verdict(r <= TARGETS['twelve'])}")
        stages = min(results["twelve"], key=lambda r: r["seconds"])["stages"]
        floor = stages["history"] + stages["output alone"]
        print(f"  (the history and the 12 snapshots' output alone, written again: "
              f"{floor:.2f} s, {floor / best['one']:.1f}x one as_of)")
    if {"one", "pandas"} <= set(best):
        r = best["pandas"] / best["one"]
        print(f"engine >= {TARGETS['speedup']:g}x faster than pandas: {r:5.1f}x  "
              f"{verdict(r >= TARGETS['speedup'])}")
    for step in ("one", "twelve"):
        if step in peak:
            print(f"peak memory < {TARGETS['peak_gib']:g} GiB ({STEPS[step]}): "
                  f"{peak[step]:.2f} GiB  {verdict(peak[step] < TARGETS['peak_gib'])}")
    if "pandas" in peak:
        print(f"(pandas peaks at {peak['pandas']:.2f} GiB)")
    for step, same in identical.items():
        print(f"{args.repeat} runs of {STEPS[step]} write identical Parquet: "
              f"{'yes' if same else 'no'}  {verdict(same and args.repeat > 1)}")
    print()
    if {"one", "pandas"} <= set(best):
        compare(saved["one"], saved["pandas"], args.show)


if __name__ == "__main__":
    main()
