"""Benchmark: `klantwaarde demo` end to end, and the story it tells, against targets and truth.

Runs the demo (3,000 customers over 36 months, the `make demo` default) in a child process with
its own folder and prints:

  time        the child's wall time from process start (imports included) and its peak memory;
              the target is under 3 minutes on 2 cores.
  economics   the profitability of the last 12 months as the demo's report shows it, each figure
              next to its target (configs/simulate.yaml): the whale curve's peak, what the
              customers that make the bottom 20% of revenue lose and the share of cost-to-serve
              they take, the share of active customers that lose money, the top 20%'s share of
              revenue, and the loss accounts per dominant cost driver.
  churn       the ROC-AUC of each churn candidate on the validation snapshots, side by side with
              the oracle: the simulator's true churn probability over the horizon (see
              benchmarks/train.py) on the same customers and labels. The champion should beat
              the baseline candidate.

Run from the repository root:

    .venv/bin/python benchmarks/demo.py
    .venv/bin/python benchmarks/demo.py --customers 10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 2**30
TARGETS = {  # figure: (low, high), from configs/simulate.yaml
    "whale_peak": (1.30, 2.50), "bottom_margin": (-0.30, -0.05),
    "bottom_cost_share": (0.50, 1.00), "loss_share": (0.15, 0.30),
    "top20_revenue": (0.70, 0.90)}
DRIVERS = ("visits", "small_orders", "stale_discount", "late_payment")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the demo folder
    return parser.parse_args()


def child(folder: Path, customers: int) -> None:
    """Run the demo, then measure its economics and churn models; print JSON."""
    from klantwaarde.demo import run_demo

    started = time.perf_counter()
    result = run_demo(folder, customers, None, lambda text: print(
        f"  {time.perf_counter() - started:7.1f}s {text}", file=sys.stderr, flush=True))
    print(json.dumps({"economics": economics(result.profitability), "churn": churn(result)}))


def economics(report) -> dict[str, float]:
    """The figures of TARGETS, as the product computes them, and the loss accounts' drivers."""
    c, tail = report.customers, report.concentration
    loss = c[c.category == "loss account"]
    drivers = loss.loss_driver.value_counts() / len(loss)
    active = c[c.revenue > 0]
    return {"whale_peak": report.whale.peak, "bottom_margin": tail.tail_margin_pct,
            "bottom_cost_share": tail.tail_cost_share,
            "loss_share": float((active.net_margin < 0).mean()),
            "top20_revenue": tail.top20_revenue_share,
            "net_margin": float(c.net_margin.sum()), "revenue": float(c.revenue.sum()),
            **{f"driver_{d}": float(drivers.get(d, 0.0)) for d in DRIVERS}}


def churn(result) -> dict[str, dict[str, float]]:
    """ROC-AUC of each churn candidate and of the oracle on the validation snapshots, against
    label_churn and against the simulator's own churn."""
    import mlflow
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from klantwaarde.config import load_config
    from train import oracle_scores

    sets = result.training.sets
    horizon = load_config(result.config).labels.horizon_months
    months = result.simulation.source / "truth" / "months.parquet"
    valid = pd.concat([
        sets.valid[sets.valid.as_of == as_of].merge(
            oracle_scores(months, as_of, horizon), on="customer_id", how="left")
        for as_of in sets.valid_dates])
    labels = {"label_churn": valid.label_churn.to_numpy(bool),
              "simulator": valid.truth.fillna(False).to_numpy(bool)}
    model = mlflow.pyfunc.load_model("models:/klantwaarde-churn@champion").unwrap_python_model()
    scores = {"oracle": valid.oracle.fillna(0).to_numpy(),
              "champion": model.predict(None, valid).churn_probability.to_numpy()}
    champion = result.training.promoted["churn"].run_id
    return {"chosen": next(c.candidate for c in result.training.candidates
                           if c.target == "churn" and c.run_id == champion),
            **{c.candidate: {"label_churn": c.metrics["roc_auc"]}
               for c in result.training.candidates if c.target == "churn"},
            **{name: {label: roc_auc_score(truth, score) for label, truth in labels.items()}
               for name, score in scores.items()}}


def main() -> None:
    args = parse_args()
    if args.child:
        child(args.child, args.customers)
        return
    print(f"demo of {args.customers:,} customers, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", str(Path(tmp) / "demo"), "--customers",
             str(args.customers)], stdout=subprocess.PIPE, text=True)
        output = process.stdout.read() if process.stdout else ""
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"the demo failed:\n{output}")
    found = json.loads(output.strip().splitlines()[-1])
    report(found, wall, usage)


def report(found: dict, wall: float, usage) -> None:
    verdict = "met" if wall < 180 else "NOT met"
    print(f"\ndemo: {wall:.1f} s wall (process start to end), "
          f"{usage.ru_utime + usage.ru_stime:.1f} s CPU, peak "
          f"{usage.ru_maxrss * 1024 / GIB:.2f} GiB; under 3 minutes: {verdict}")
    e = found["economics"]
    print(f"\nprofitability, last 12 months: net margin EUR {e['net_margin']:,.0f} on revenue "
          f"EUR {e['revenue']:,.0f}")
    print(f"  {'figure':<20} {'demo':>8}   target")
    for name, (low, high) in TARGETS.items():
        ok = "met" if low <= e[name] <= high else "NOT met"
        print(f"  {name:<20} {e[name]:8.3f}   {low:.2f} to {high:.2f}: {ok}")
    for driver in DRIVERS:
        share = e[f"driver_{driver}"]
        print(f"  loss accounts driven by {driver:<15} {share:6.1%}   at least 5%: "
              f"{'met' if share >= 0.05 else 'NOT met'}")
    c = found["churn"]
    print("\nchurn ROC-AUC on the validation snapshots, on label_churn: "
          + ", ".join(f"{name} {c[name]['label_churn']:.4f}"
                      for name in ("baseline", "tree", "xgboost", "oracle")))
    print(f"on the simulator's own churn: champion ({c['chosen']}) "
          f"{c['champion']['simulator']:.4f}, oracle {c['oracle']['simulator']:.4f}")
    beats = c[c["chosen"]]["label_churn"] > c["baseline"]["label_churn"]
    print(f"the champion beats the baseline candidate: {'met' if beats else 'NOT met'}")

if __name__ == "__main__":
    main()
