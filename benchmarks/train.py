"""Benchmark: `klantwaarde train` on a simulated base, checked against the simulator's truth.

Simulates (once, kept under ``--data``, gitignored) 100,000 customers over 30 months from
2023-01-01 and trains all three targets at as_of 2025-06-30 (12 monthly snapshots, the newest,
2024-12-31, validates) in a child process with its own MLflow store. Prints the wall time of the
training (imports excluded), the child's CPU time and peak memory, the validation table, and two
checks against the oracle the simulator wrote to ``truth/``:

  oracle AUC  the ROC-AUC of the true churn probability on the validation snapshot: for a
              customer active at as_of, 1 - prod(1 - hazard) over the horizon months (the true
              hazards, which already know every later complaint and visit); a customer already
              drying up or stopped at as_of ranks above every active one. Both the oracle and
              the churn challenger are scored against the simulator's own churn (a churn event
              in the horizon, or drying up or stopped at as_of) and against label_churn; the
              challenger should come within 0.03 of the oracle on the simulator's churn.
  drivers     the true churn drivers (neglect, open complaints, broken promises) and whether a
              feature that measures each is among the 15 features with the largest mean
              absolute SHAP contribution of the churn challenger: over all validation
              customers, and over the customers whose dominant true driver in the first
              horizon month is that driver (a rare driver weighs little in the overall mean
              but should lead for the customers it threatens). For those customers it also
              prints the share whose own three largest contributions include such a feature:
              what their reasons would name.

Run from the repository root:

    .venv/bin/python benchmarks/train.py                    # 100,000 customers
    .venv/bin/python benchmarks/train.py --customers 5000   # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START, MONTHS, AS_OF = dt.date(2023, 1, 1), 30, dt.date(2025, 6, 30)
GIB = 2**30
TOP = 15
DRIVERS = {  # the simulator's churn drivers and the features that measure them
    "neglect": {"days_since_last_visit", "days_since_last_call", "days_since_last_contact",
                "visits_12m", "calls_12m", "contacts_3m", "contacts_12m",
                "contacts_vs_norm_12m"},
    "open_complaints": {"open_complaints", "complaints_3m", "complaints_12m"},
    "broken_promises": {"avg_days_to_close_12m", "open_complaints", "complaints_3m",
                        "complaints_12m"},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/train"))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the source, in a child
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def child(source: Path, store: Path) -> None:
    """Train, then score the validation snapshot with the churn challenger; print JSON."""
    import warnings

    warnings.simplefilter("ignore")
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from klantwaarde.config import load_config
    from klantwaarde.sources import open_source
    from klantwaarde.training.train import train

    cfg = load_config()
    cfg = cfg.model_copy(update={"models": cfg.models.model_copy(update={"store": store})})
    started = time.perf_counter()
    result = train(open_source(str(source), cfg.source), AS_OF, cfg,
                   lambda text: print(f"  {time.perf_counter() - started:7.1f}s {text}",
                                      file=sys.stderr, flush=True))
    seconds = time.perf_counter() - started

    valid = result.sets.valid
    model = mlflow.pyfunc.load_model("models:/klantwaarde-churn@challenger").unwrap_python_model()
    values, names = model.contributions(valid)
    size = np.abs(values[:, :-1])
    importance = pd.Series(size.mean(axis=0), index=names)
    ranked = importance.sort_values(ascending=False)
    as_of = result.sets.valid_dates[-1]
    oracle = oracle_scores(source / "truth" / "months.parquet", as_of,
                           cfg.labels.horizon_months)
    scored = valid[["customer_id"]].merge(oracle, on="customer_id", how="left")
    truth = scored.truth.fillna(False).to_numpy(bool)
    predicted = model.predict(None, valid).churn_probability.to_numpy()
    truth_drivers = driver_counts(source / "truth" / "months.parquet", as_of,
                                  cfg.labels.horizon_months)
    first = valid[["customer_id"]].merge(
        first_drivers(source / "truth" / "months.parquet", as_of), on="customer_id",
        how="left").driver.to_numpy()
    top3 = np.argsort(-size, axis=1)[:, :3]
    affected = {}
    for driver, features in DRIVERS.items():
        rows = first == driver
        if not rows.any():
            continue
        within = pd.Series(size[rows].mean(axis=0), index=names).sort_values(ascending=False)
        measuring = np.isin(np.array(names)[top3[rows]], list(features)).any(axis=1)
        affected[driver] = {"customers": int(rows.sum()),
                            "ranked": list(within.index),
                            "top3_share": float(measuring.mean())}
    print(json.dumps({
        "seconds": seconds, "rows_train": len(result.sets.train), "rows_valid": len(valid),
        "as_of": str(as_of),
        "oracle_auc": roc_auc_score(truth, scored.oracle.fillna(0).to_numpy()),
        "model_auc": roc_auc_score(truth, predicted),
        "truth_rate": float(truth.mean()),
        "oracle_auc_label": roc_auc_score(valid.label_churn.to_numpy(bool),
                                          scored.oracle.fillna(0).to_numpy()),
        "candidates": [{"target": c.target, "candidate": c.candidate, "metrics": c.metrics}
                       for c in result.candidates],
        "challengers": {t: v.version for t, v in result.challengers.items()},
        "importance": ranked.round(4).to_dict(), "drivers": truth_drivers,
        "affected": affected}))


def oracle_scores(months_file: Path, as_of: dt.date, horizon: int):
    """Per customer: the true churn probability over the horizon after ``as_of`` (``oracle``,
    see above) and whether the simulator churned it (``truth``)."""
    import pandas as pd

    months = pd.read_parquet(months_file)
    months["month"] = pd.to_datetime(months.month).dt.date
    first = (as_of + dt.timedelta(days=1)).replace(day=1)
    last = (pd.Timestamp(first) + pd.DateOffset(months=horizon)).date()
    ahead = months[(months.month >= first) & (months.month < last)]
    survive = (1 - ahead.hazard.fillna(0)).groupby(ahead.customer_id).prod()
    state = months[months.month == as_of.replace(day=1)].set_index("customer_id").state
    score = (1 - survive).reindex(state.index).fillna(0)
    score[state == "declining"] = 2.0
    score[state == "churned"] = 3.0
    event = ahead.churn.notna().groupby(ahead.customer_id).any().reindex(state.index)
    truth = event.fillna(False).astype(bool) | (state != "active")
    return pd.DataFrame({"customer_id": state.index, "oracle": score.to_numpy(),
                         "truth": truth.to_numpy()})


def driver_counts(months_file: Path, as_of: dt.date, horizon: int) -> dict[str, int]:
    """How many customer-months in the horizon name each true driver."""
    import pandas as pd

    months = pd.read_parquet(months_file, columns=["month", "driver"])
    months["month"] = pd.to_datetime(months.month).dt.date
    first = (as_of + dt.timedelta(days=1)).replace(day=1)
    last = (pd.Timestamp(first) + pd.DateOffset(months=horizon)).date()
    ahead = months[(months.month >= first) & (months.month < last)]
    return {k: int(v) for k, v in ahead.driver.value_counts().items() if k != "none"}


def first_drivers(months_file: Path, as_of: dt.date):
    """Per customer, its dominant true churn driver in the first month after ``as_of``."""
    import pandas as pd

    months = pd.read_parquet(months_file, columns=["customer_id", "month", "driver"])
    first = (as_of + dt.timedelta(days=1)).replace(day=1)
    return months[pd.to_datetime(months.month).dt.date == first][["customer_id", "driver"]]


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child, args.store)
        return
    from klantwaarde.config import load_config
    from klantwaarde.simulation import simulate

    folder = args.data / f"{args.customers}-customers-{MONTHS}-months"
    if folder.exists():
        print(f"reusing {folder}")
    else:
        print(f"simulating {folder} ...", flush=True)
        simulate(args.customers, MONTHS, 1, folder, load_config(), start=START)
    print(f"training at as_of {AS_OF}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as store:
        process = subprocess.Popen([sys.executable, __file__, "--child", str(folder), "--store",
                                    store], stdout=subprocess.PIPE, text=True)
        output = process.stdout.read() if process.stdout else ""
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"training failed:\n{output}")
    found = json.loads(output.strip().splitlines()[-1])
    report(found, usage)


def report(found: dict, usage) -> None:
    print(f"\n{found['rows_train']:,} training and {found['rows_valid']:,} validation customer "
          f"snapshots (validation at {found['as_of']})")
    print(f"train, all three targets: {found['seconds']:.1f} s wall, "
          f"{usage.ru_utime + usage.ru_stime:.1f} s CPU, peak {usage.ru_maxrss * 1024 / GIB:.2f} "
          f"GiB")
    keys = {"churn": ["roc_auc", "pr_auc", "lift_top10", "brier", "emp_per_customer"],
            "margin": ["normalized_gini", "spearman", "mae", "total_ratio"],
            "upgrade": ["mean_roc_auc", "upgrade_roc_auc", "hit_rate_at_3"]}
    for target, metrics in keys.items():
        print(f"\n{target}: " + ", ".join(metrics))
        for c in found["candidates"]:
            if c["target"] == target:
                values = "  ".join(f"{c['metrics'].get(m, float('nan')):10.4f}" for m in metrics)
                print(f"  {c['candidate']:<9} {values}")
    gap = found["oracle_auc"] - found["model_auc"]
    print(f"\nthe simulator's churn ({found['truth_rate']:.1%} of the validation customers): "
          f"churn challenger ROC-AUC {found['model_auc']:.4f}, oracle {found['oracle_auc']:.4f}, "
          f"{gap:.4f} below it; within 0.03: {'met' if gap <= 0.03 else 'NOT met'}")
    print(f"(on label_churn the oracle's ROC-AUC is {found['oracle_auc_label']:.4f})")
    ranked = list(found["importance"])
    print(f"top {TOP} of {len(ranked)} features by mean |SHAP| of the churn challenger: "
          + ", ".join(f"{k} ({found['importance'][k]:.3f})" for k in ranked[:TOP]))
    for driver, months in found["drivers"].items():
        ranks = sorted((ranked.index(f) + 1, f) for f in DRIVERS.get(driver, ()) if f in ranked)
        rank, feature = ranks[0] if ranks else (None, None)
        verdict = "among the top" if rank and rank <= TOP else "NOT among the top"
        print(f"  true driver {driver} ({months:,} customer-months in the horizon): best "
              f"measured by {feature}, rank {rank}; {verdict} {TOP}")
        if driver in found["affected"]:
            mine = found["affected"][driver]
            ranks = sorted((mine["ranked"].index(f) + 1, f) for f in DRIVERS[driver]
                           if f in mine["ranked"])
            print(f"    among the {mine['customers']:,} customers it drives in the first horizon "
                  f"month: {ranks[0][1]} rank {ranks[0][0]}; a measuring feature is among their "
                  f"own top 3 contributions for {mine['top3_share']:.1%}")


if __name__ == "__main__":
    main()
