"""Benchmark: the simulator's speed and memory at scale.

Runs ``klantwaarde simulate`` as a user would, each size in its own process, and reports wall
time, rows written per second and the process's peak memory, side by side with the targets:
100,000 customers over 36 months in under 2 minutes, and 1,000,000 customers over 36 months
(tens of millions of order lines, written chunk by chunk) with peak memory under 6 GiB.

Run from the repository root:

    .venv/bin/python benchmarks/simulate.py                    # both sizes
    .venv/bin/python benchmarks/simulate.py --customers 100000 # one size
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {100_000: ("seconds", 120.0), 1_000_000: ("peak GiB", 6.0)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=list(TARGETS))
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--format", choices=["parquet", "csv", "duckdb"], default="parquet")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the output is written (and removed afterwards)")
    return parser.parse_args()


def run(customers: int, months: int, fmt: str, work: Path) -> dict[str, float]:
    """Simulate in a child process; wall time, rows written and the child's peak RSS."""
    out = work / f"klantwaarde-bench-simulate-{customers}"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "klantwaarde", "simulate", "--customers", str(customers),
               "--months", str(months), "--seed", "1", "--format", fmt, "--out", str(out)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    output = process.stdout.read() if process.stdout else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    shutil.rmtree(out, ignore_errors=True)
    if process.returncode:
        raise SystemExit(f"simulate failed ({process.returncode}):\n{output}")
    rows = {name: int(count.replace(",", "")) for name, count in
            re.findall(r"^\s+(\S+)\s+([\d,]+) rows$", output, re.MULTILINE)}
    written = sum(v for k, v in rows.items() if not k.startswith("truth/"))
    return {"seconds": elapsed, "order lines": rows["orders"], "rows": written,
            "rows/s": written / elapsed, "peak GiB": usage.ru_maxrss / 2**20}


def main() -> None:
    args = parse_args()
    results = {}
    for customers in args.customers:
        print(f"simulating {customers:,} customers over {args.months} months ...", flush=True)
        results[customers] = run(customers, args.months, args.format, args.work)
    print()
    print(f"{'customers':>10} {'order lines':>12} {'rows':>12} {'seconds':>8} {'rows/s':>10} "
          f"{'peak GiB':>9}  target")
    for customers, r in results.items():
        measure, limit = TARGETS.get(customers, ("seconds", float("inf")))
        value = r[measure]
        verdict = (f"{measure} < {limit:g}: {'met' if value < limit else 'NOT met'} "
                   f"({value / limit:.2f} of the limit)" if limit != float("inf") else "-")
        print(f"{customers:>10,} {r['order lines']:>12,} {r['rows']:>12,} {r['seconds']:>8.1f} "
              f"{r['rows/s']:>10,.0f} {r['peak GiB']:>9.2f}  {verdict}")


if __name__ == "__main__":
    main()
