"""Benchmark: the loop list -> action -> outcome -> evaluate at scale, against the truth.

Simulates (once, kept under ``--data``, gitignored) a base of ``--customers`` over 30 months from
2023-07-01, trains small models at 2025-06-30 (automatic promotion), scores that month and makes
the lists (half of each manager's at-risk ranking held out, a capacity of 1,000 so every
candidate is listed), simulates the base again with the managers following the lists in July
2025 (``simulate --from base --follow lists``) and evaluates the followed base at 2025-12-31,
all through the command line. It prints, for the listed and the held-out customers: how
many; label_churn as evaluate measures it (evaluate's figures come from its MLflow run) with its
bootstrap interval of the churn prevented; from the simulator's truth, the mean monthly hazard
and the share with a churn event (stop or dry-up) in the six months after 2025-06-30, in the
base (nobody followed the lists) and followed; and the saved margin: predicted (the sheets'
expected saved margin, net of the call), true from the hazard drop one contact buys at
2025-07-01 (x 12 x the expected margin, as benchmarks/decisions.py), true from the churn events
(base - followed, x 12 x the expected margin at 2025-07-01), and evaluate's realised (prevented
label churn x predicted margin - the calls' cost). The followed base draws its own randomness
after June 2025: base and followed are two draws, not pairs of one customer's fate. The
question: can evaluate's control group see what the lists did, and how does the predicted saved
margin compare with the truth and the realised?

Run from the repository root (the first run takes about 7 minutes on 2 cores; later runs reuse
the data):

    .venv/bin/python benchmarks/loop.py
    .venv/bin/python benchmarks/loop.py --customers 10000 --seed 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

LISTED_AT, EVALUATED_AT = "2025-06-30", "2025-12-31"
MONTHS = pd.date_range("2025-07-01", "2025-12-01", freq="MS")  # the label horizon
MODELS = {"seed": 7, "train_snapshots": 3, "validation_snapshots": 1, "response": {"rounds": 100},
          "xgboost": {"max_rounds": {"churn": 40, "margin": 40, "upgrade": 40},  # small, quick
                      "early_stopping_rounds": 10, "search": {"max_depth": [3],
                                                              "learning_rate": [0.3]}},
          "promotion": {"automatic": True, "min_improvement": 0.005}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=40000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/loop"))
    return parser.parse_args()


def prepare(folder: Path, customers: int, seed: int) -> Path:
    """Runs each step of the loop that has not run yet (a ``<step>.done`` file marks it)."""
    folder = folder.resolve()
    config = folder / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "models.yaml").write_text(yaml.safe_dump(MODELS | {"store": str(folder / "models")}))
    (config / "scoring.yaml").write_text(yaml.safe_dump(
        {"store": str(folder / "scores" / "scores.duckdb"), "parquet": str(folder / "parquet")}))
    (config / "lists.yaml").write_text("control_share: 0.5\ncapacity: {default: 1000}\n")
    base, lists, followed = folder / "base", folder / "lists", folder / "followed"
    steps = {"simulate": ["--customers", customers, "--months", 30, "--seed", seed,
                          "--start", "2023-07-01", "--out", base],
             "train": ["--source", base, "--as-of", LISTED_AT],
             "score": ["--source", base, "--as-of", LISTED_AT],
             "lists": ["--as-of", LISTED_AT, "--out", lists],
             "follow": ["--from", base, "--follow", lists, "--out", followed],
             "evaluate": ["--source", followed, "--as-of", EVALUATED_AT]}
    for step, args in steps.items():
        if (folder / f"{step}.done").exists():
            continue
        command = "simulate" if step == "follow" else step
        print(f"  klantwaarde {command} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "klantwaarde", command, *map(str, args),
                        "--config", str(config)], check=True, stdout=subprocess.DEVNULL)
        (folder / f"{step}.done").touch()
    return folder


def evaluation(folder: Path) -> dict[str, float]:
    """The metrics of evaluate's latest run."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'models' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("klantwaarde-scoring")
    runs = client.search_runs([experiment.experiment_id], "tags.kind = 'evaluation'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].data.metrics


def horizon(base: Path) -> pd.DataFrame:
    """The truth's months in the label horizon after LISTED_AT."""
    months = pd.read_parquet(base / "truth" / "months.parquet",
                             columns=["customer_id", "month", "hazard", "hazard_if_contacted",
                                      "churn", "expected_margin"])
    months["month"] = pd.to_datetime(months.month)
    return months[months.month.isin(MONTHS)]


ROWS = {"customers": "{:,.0f}", "realised churn (label_churn)": "{:.1%}",
        "true monthly hazard, base": "{:.4f}", "true monthly hazard, followed": "{:.4f}",
        "churned per the truth, base": "{:.1%}", "churned per the truth, followed": "{:.1%}",
        "saved margin predicted (net of calls)": "{:,.0f}",
        "true: hazard drop at 07 x 12 x margin": "{:,.0f}",
        "true: (churned base - followed) x 12 x margin": "{:,.0f}",
        "realised by evaluate (net of calls)": "{:,.0f}", "the calls' cost": "{:,.0f}"}


def main() -> None:
    args = parse_args()
    folder = prepare(args.data / f"c{args.customers}-s{args.seed}", args.customers, args.seed)
    from klantwaarde.config import load_config
    from klantwaarde.decisions import contact_cost
    from klantwaarde.scoring.store import read_scores

    m = evaluation(folder)
    cfg = load_config(folder / "config")
    scores = read_scores(cfg.scoring.parquet, pd.Timestamp(LISTED_AT).date())
    predicted = scores.set_index("customer_id").expected_saved_margin
    sheets = (folder / "lists" / "managers").glob("*_at_risk.csv")
    groups = {"listed": set(pd.concat(pd.read_csv(f).customer_id for f in sheets)),
              "held out": set(pd.read_csv(folder / "lists" / "control_group.csv").customer_id)}
    truth = {name: horizon(folder / name) for name in ("base", "followed")}
    first = truth["base"][truth["base"].month == MONTHS[0]].set_index("customer_id")
    yearly = 12 * first.expected_margin
    churned = {name: set(t[t.churn.notna()].customer_id) for name, t in truth.items()}

    def column(ids: set[str], name: str) -> list[float]:
        hazard = {run: t[t.customer_id.isin(ids)].hazard.mean() for run, t in truth.items()}
        prevented = pd.Series(1.0, list(ids & churned["base"])).sub(
            pd.Series(1.0, list(ids & churned["followed"])), fill_value=0)
        return [len(ids), m[f"control_churn_{name.replace(' ', '_')}"],
                hazard["base"], hazard["followed"],
                len(ids & churned["base"]) / len(ids), len(ids & churned["followed"]) / len(ids),
                predicted.reindex(list(ids)).sum(),
                ((first.hazard - first.hazard_if_contacted) * yearly).reindex(list(ids)).sum(),
                (prevented * yearly.reindex(prevented.index)).sum(),
                m["control_saved_margin_realised"] if name == "listed" else float("nan"),
                contact_cost(cfg.costs, cfg.lists.contact) * len(ids)]

    table = pd.DataFrame({name: column(ids, name) for name, ids in groups.items()}, index=ROWS)
    print(f"{args.customers:,} customers simulated (seed {args.seed}), {len(scores):,} scored and "
          f"listed at {LISTED_AT}, lists followed in July 2025, evaluated at {EVALUATED_AT}")
    print(table.apply(lambda row: row.map(
        lambda v: "-" if pd.isna(v) else ROWS[row.name].format(v)), axis=1).to_string())
    churn = table.loc["churned per the truth, followed"]
    print(f"evaluate: churn prevented (held out - listed) {m['control_churn_prevented']:+.1%} "
          f"[{m['control_churn_prevented_low']:+.1%}, {m['control_churn_prevented_high']:+.1%}]"
          f"; the truth: {churn['held out'] - churn['listed']:+.1%} held out - listed, "
          f"{table.loc['churned per the truth, base', 'listed'] - churn['listed']:+.1%} base - "
          "followed for the listed")
    listed = table["listed"]
    cost, net = listed["the calls' cost"], listed["saved margin predicted (net of calls)"]
    print("listed, net of the calls' cost, over the predicted saved margin: true (hazard drop) "
          f"{(listed.iloc[7] - cost) / net:.2f}x, true (churn events) "
          f"{(listed.iloc[8] - cost) / net:.2f}x, realised {listed.iloc[9] / net:.2f}x")


if __name__ == "__main__":
    main()
