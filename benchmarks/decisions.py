"""Benchmark: how much margin the at-risk sheets save, as a share of the best possible.

Simulates (once, kept under ``--data``, gitignored) a base of 6,000 customers over 42 months
from 2022-01, trains the demo's light models on it at 2024-12-31 (automatic promotion, so the
challengers become champions) and scores that month. The simulator knows what one contact in
the month after as_of saves: (true hazard - hazard had the account just been contacted) x 12 x
the expected net margin of that month (``truth/``). With every manager's capacity set to 5% and
to 10% of that manager's customers, it prints side by side, as a share of the best possible
saved margin for the same number of calls (the top of the true ranking):

  delivered          the at-risk sheets as ``klantwaarde lists`` writes them (control group
                     held out, win-back and loss accounts excluded), and the same sheets without
                     a control group (``control_share: 0``)
  per manager's best the delivered sheets against the best possible for as many calls by each
                     manager (a manager cannot make another's calls)
  every listed contact  the at-risk and cross-sell sheets together: a cross-sell call restores
                     attention too
  margin at risk     churn probability x predicted future net margin, the top N customers
  churn probability  the top N by churn probability
  random             N customers drawn at random (mean of 200 draws)
  true hazard        the simulator's hazard x expected margin: what a perfect churn model buys

and the cross-sell sheets' share of the scored customers (target: at most a quarter), and the
response model's Qini coefficient and uplift at 10% against the simulator's true effects.

Targets (issue "Lists that are decisions"): delivered at least 0.75 of the best at 10% and
0.65 at 5%, and at least 5x what churn probability saves.

Run from the repository root (the first run trains for a few minutes; later runs reuse it):

    .venv/bin/python benchmarks/decisions.py
    .venv/bin/python benchmarks/decisions.py --customers 10000 --seed 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

AS_OF = dt.date(2024, 12, 31)
START = dt.date(2022, 1, 1)
MONTHS = 42
SHARES = (0.05, 0.10)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/decisions"))
    return parser.parse_args()


def prepare(folder: Path, customers: int, seed: int) -> tuple[Path, Path]:
    """The simulated base and a config folder whose store holds trained champions and the
    scores at AS_OF; built once."""
    from klantwaarde.demo import SETTINGS

    base, config = folder / "source", folder / "config"
    if (folder / "scored").exists():
        return base, config
    from klantwaarde.config import load_config
    from klantwaarde.scoring.score import score
    from klantwaarde.simulation import simulate
    from klantwaarde.training.train import train
    from klantwaarde.validation import open_valid_source

    config.mkdir(parents=True, exist_ok=True)
    for section, values in SETTINGS.items():
        values = dict(values)
        for key in ("store", "parquet"):
            if key in values:
                values[key] = str((folder / values[key]).resolve())
        (config / f"{section}.yaml").write_text(yaml.safe_dump(values))
    cfg = load_config(config)
    step = _progress()
    if not base.exists():
        simulate(customers, MONTHS, seed, base, cfg, "parquet", START, step)
    source = open_valid_source(str(base), cfg, step)
    if not (folder / "trained").exists():
        train(source, AS_OF, cfg, step)
        (folder / "trained").write_text(f"{AS_OF}\n")
    score(source, AS_OF, cfg, step)
    (folder / "scored").write_text(f"{AS_OF}\n")
    return base, config


def _progress():
    started = time.perf_counter()
    return lambda text: print(f"  {time.perf_counter() - started:7.1f}s {text}",
                              file=sys.stderr, flush=True)


def true_saved(base: Path, scores: pd.DataFrame) -> pd.Series:
    """Per scored customer, the margin one contact in the month after AS_OF saves (0 where the
    simulator has no hazard: the customer is already gone)."""
    truth = pd.read_parquet(base / "truth" / "months.parquet",
                            columns=["customer_id", "month", "hazard", "hazard_if_contacted",
                                     "expected_margin"])
    month = truth[pd.to_datetime(truth.month) == pd.Timestamp(AS_OF + dt.timedelta(days=1))]
    saved = ((month.hazard - month.hazard_if_contacted) * 12 * month.expected_margin).fillna(0)
    return pd.Series(saved.to_numpy(), index=month.customer_id).reindex(
        scores.customer_id).fillna(0).set_axis(scores.index)


def share_of_best(chosen: pd.Index, saved: pd.Series) -> float:
    """The true saved margin of ``chosen`` over the best possible for as many calls."""
    best = np.sort(saved.clip(lower=0).to_numpy())[::-1][:len(chosen)].sum()
    return float(saved[chosen].sum() / best) if best > 0 else float("nan")


def share_of_managers_best(chosen: pd.Index, saved: pd.Series, managers: pd.Series) -> float:
    """The true saved margin of ``chosen`` over the best possible for as many calls per
    manager (a manager cannot make another manager's calls)."""
    calls = managers[chosen].value_counts()
    best = sum(saved[managers == m].clip(lower=0).nlargest(n).sum() for m, n in calls.items())
    return float(saved[chosen].sum() / best) if best > 0 else float("nan")


def top(value: pd.Series, n: int) -> pd.Index:
    return value.sort_values(ascending=False, kind="stable").index[:n]


def main() -> None:
    args = parse_args()
    folder = args.data / f"c{args.customers}-s{args.seed}"
    base, config = prepare(folder, args.customers, args.seed)
    from klantwaarde.config import load_config
    from klantwaarde.lists import CROSS_SELL, build_lists
    from klantwaarde.scoring.store import read_scores

    cfg = load_config(config)
    scores = read_scores(cfg.scoring.parquet, AS_OF)
    saved = true_saved(base, scores)
    per_manager = scores.account_manager.value_counts()
    rng = np.random.default_rng(0)
    print(f"{len(scores):,} customers scored at {AS_OF} ({args.customers:,} simulated, seed "
          f"{args.seed}), {len(per_manager)} managers; share of the best possible saved margin "
          "for as many calls as the delivered at-risk sheets hold")
    rows = []
    for share in SHARES:
        capacity = {m: max(1, round(share * n)) for m, n in per_manager.items()}
        figures: dict[str, float] = {}
        for name, control in (("delivered", cfg.lists.control_share), ("delivered, no control", 0)):
            lists_cfg = cfg.lists.model_copy(update={
                "capacity": cfg.lists.capacity.model_copy(update={"managers": capacity}),
                "control_share": control})
            # capacity unset: the lists decide anew with this lists config
            lists = build_lists(scores.assign(capacity=np.nan), AS_OF,
                                cfg.model_copy(update={"lists": lists_cfg}))
            listed = scores.index[scores.customer_id.isin(lists.tables["at risk"].customer_id)]
            figures[name] = share_of_best(listed, saved)
            if control:
                n = len(listed)
                offered = scores.customer_id.isin(lists.tables[CROSS_SELL].customer_id)
                cross = offered.mean()
                managers = lists_managers(scores, cfg)
                figures["delivered, per manager's best"] = share_of_managers_best(
                    listed, saved, managers)
                contacts = scores.index[offered].union(listed)
                figures["every listed contact"] = share_of_best(contacts, saved)
        figures |= {
            "margin at risk": share_of_best(top(scores.margin_at_risk, n), saved),
            "churn probability": share_of_best(top(scores.churn_probability, n), saved),
            "random": float(np.mean([share_of_best(pd.Index(rng.choice(scores.index, n, False)),
                                                   saved) for _ in range(200)])),
        }
        truth_rank = _true_hazard(base, scores) * scores.future_net_margin.clip(lower=0)
        figures["true hazard"] = share_of_best(top(truth_rank, n), saved)
        rows.append(pd.Series(figures | {"calls": n, "cross-sell share": cross},
                              name=f"{share:.0%} called"))
    table = pd.DataFrame(rows).T
    print(table.to_string(float_format=lambda v: f"{v:,.3f}"))
    for col in table.columns:
        ratio = table.loc["delivered", col] / max(table.loc["churn probability", col], 1e-9)
        print(f"{col}: delivered / churn probability = {ratio:,.1f}x")
    print(response_quality(scores, saved, base))


def lists_managers(scores: pd.DataFrame, cfg) -> pd.Series:
    from klantwaarde.decisions import managers_of

    return managers_of(scores.account_manager, cfg.lists.unassigned)


def _true_hazard(base: Path, scores: pd.DataFrame) -> pd.Series:
    truth = pd.read_parquet(base / "truth" / "months.parquet",
                            columns=["customer_id", "month", "hazard"])
    month = truth[pd.to_datetime(truth.month) == pd.Timestamp(AS_OF + dt.timedelta(days=1))]
    return pd.Series(month.hazard.to_numpy(), index=month.customer_id).reindex(
        scores.customer_id).fillna(0).set_axis(scores.index)


def response_quality(scores: pd.DataFrame, saved: pd.Series, base: Path) -> str:
    """The response model's ranking of the true effect (hazard drop): Qini coefficient and
    uplift at 10%, next to the best possible ranking."""
    truth = pd.read_parquet(base / "truth" / "months.parquet",
                            columns=["customer_id", "month", "hazard", "hazard_if_contacted"])
    month = truth[pd.to_datetime(truth.month) == pd.Timestamp(AS_OF + dt.timedelta(days=1))]
    effect = pd.Series((month.hazard - month.hazard_if_contacted).to_numpy(),
                       index=month.customer_id).reindex(scores.customer_id).fillna(0).to_numpy()
    estimate = scores.contact_effect.astype(float).fillna(-np.inf).to_numpy()
    lines = []
    for name, rank in (("response model", estimate), ("best possible", effect),
                       ("random", np.random.default_rng(1).random(len(effect)))):
        gain = np.cumsum(effect[np.argsort(-rank, kind="stable")])
        n = len(gain)
        area = (gain - np.arange(1, n + 1) / n * gain[-1]).mean() / max(gain[-1], 1e-12)
        at10 = gain[n // 10 - 1] / (n // 10)
        lines.append(f"  {name:>15}: Qini {area:.4f}, mean true effect of the top 10% "
                     f"{at10:.5f} (all: {effect.mean():.5f})")
    return "response model against the true effect of a contact (hazard drop):\n" + "\n".join(
        lines)


if __name__ == "__main__":
    main()
