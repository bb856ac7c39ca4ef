"""Benchmark: the learned models against BG/NBD + Gamma-Gamma on a bare public transaction log.

The CDNOW log (23,570 customers who first bought in the first quarter of 1997, their purchases up
to June 1998; the file the ``lifetimes`` package ships) is fetched once from PyPI (``pip download
lifetimes``, the wheel is only unpacked, never installed) into ``--data`` as an orders table with
only customer_id, order_date and gross_amount. `klantwaarde train` then runs at as_of 1998-06-30:
the snapshot 1997-12-31 validates (its six-month horizon ends at the end of the log) and the nine
monthly snapshots before it train. The comparator, fitted on the same history up to 1997-12-31,
forecasts the same horizon. The log holds spend only, so the costs to serve are set to zero and the
gross margin to 100%: future net margin is then future spend, what Gamma-Gamma forecasts. Printed:
churn ROC-AUC and the normalized Gini of future spend (revenue in the horizon) of every candidate
and of BG/NBD + Gamma-Gamma, and whether xgboost beats it on both. Needs the ``btyd`` extra
(pymc-marketing).

    .venv/bin/python benchmarks/cdnow.py
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

AS_OF = dt.date(1998, 6, 30)
MEMBER = "lifetimes/datasets/CDNOW_master.txt"


def fetch(folder: Path) -> Path:
    """The CDNOW master log as ``folder/orders.csv`` (fetched once)."""
    orders = folder / "orders.csv"
    if orders.exists():
        print(f"reusing {orders}")
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary", ":all:", "lifetimes==0.11.3", "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        lines = zipfile.ZipFile(wheel).read(MEMBER).decode().splitlines()[1:]  # no header
    with orders.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "order_date", "gross_amount"])
        for line in lines:
            customer, day, _cds, amount = line.split()
            writer.writerow([customer, dt.datetime.strptime(day, "%Y%m%d").date().isoformat(),
                             amount])
    print(f"wrote {orders} ({len(lines):,} transactions)")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/cdnow"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from klantwaarde.config import load_config
    from klantwaarde.sources import open_source
    from klantwaarde.training import btyd
    from klantwaarde.training.train import train

    if not btyd.available():
        raise SystemExit(btyd.MISSING)
    folder = fetch(args.data)
    cfg = load_config()
    # the log holds spend only: without costs to serve and with the whole amount as margin,
    # future net margin is future spend, so the margin model forecasts what Gamma-Gamma does
    free = {name: 0.0 for name in ("per_order", "per_order_line", "per_invoice",
                                   "per_franco_shipment", "per_visit", "per_call",
                                   "per_complaint", "late_payment_interest_per_year")}
    costs = cfg.costs.model_copy(update=free | {"default_gross_margin": 1.0})
    with tempfile.TemporaryDirectory() as store:
        models = cfg.models.model_copy(update={"store": Path(store), "train_snapshots": 9})
        cfg = cfg.model_copy(update={"models": models, "costs": costs})
        started = time.perf_counter()
        result = train(open_source(str(folder), cfg.source), AS_OF, cfg,
                       lambda text: print(f"  {time.perf_counter() - started:6.1f}s {text}",
                                          file=sys.stderr, flush=True))
    print(f"\nCDNOW: {len(result.sets.train):,} training and {len(result.sets.valid):,} "
          f"validation customer snapshots (validation at {result.sets.valid_dates[-1]}); "
          f"{time.perf_counter() - started:.0f} s")
    table = {(c.target, c.candidate): c.metrics for c in result.candidates}
    print(f"{'candidate':<10} {'churn ROC-AUC':>14} {'future spend Gini':>18}")
    for name in ("baseline", "tree", "xgboost", "btyd"):
        auc = table[("churn", name)]["roc_auc"]
        gini = table[("margin", name)]["normalized_gini_revenue"]
        print(f"{name:<10} {auc:14.4f} {gini:18.4f}")
    for what, target, key in (("churn ROC-AUC", "churn", "roc_auc"),
                              ("normalized Gini of future spend", "margin",
                               "normalized_gini_revenue")):
        ours, theirs = table[(target, "xgboost")][key], table[(target, "btyd")][key]
        print(f"xgboost against BG/NBD + Gamma-Gamma on {what}: {ours:.4f} vs {theirs:.4f}, "
              f"{'beats it' if ours > theirs else 'does NOT beat it'}")


if __name__ == "__main__":
    main()
