"""Benchmark: `klantwaarde score` on a large base, against a bare xgboost predict.

Simulates (once, kept under ``--data``, gitignored) a base of 1,000,000 customers over 14 months
from 2024-01-01 to score at its last day (2025-02-28), and a training base of 20,000 customers
over 26 months that ends on the same day. Champions are trained on the training base with the
shipped models.yaml (automatic promotion) in a store of their own, kept under ``--data`` too (delete
``models-*`` there to train again after changing the models). Then, each in its own child
process:

  score  ``score(source, as_of, cfg)``: champions resolved, features built and checked, all
         three models with their TreeSHAP reasons, next-best categories, profitability
         segments, the month written to the DuckDB scores table and as Parquet, the MLflow
         run. Wall time (imports excluded), CPU time and peak memory (``ru_maxrss``).
  bare   the same features, fetched once (not timed); then only the three champions' models
         predicting on their matrices (``Booster.predict``; the upgrade model's
         ``predict_proba``, which builds its own matrices), and separately their TreeSHAP
         contributions (``pred_contribs``; the upgrade model's ``contributions``, of each
         customer's best category, as scoring explains it) on a sample of at most 20,000
         customers: what the models themselves cost, and what the reasons of every customer
         cost at that rate.

``--reasons`` names the scoring runs, side by side: ``none`` (``reasons: 0``, no TreeSHAP),
``listed`` (the default ``reasons_for: listed``: reasons only for the customers on a sheet at the
default list capacity, by the model that ranks the sheet) and ``all`` (``reasons_for: all``,
hours for a million customers on 2 cores; left out by default, and the bare child's rate
estimates it). Each prints how many customers got reasons.

``--memory-limit`` (default 1.5GiB) is source.yaml's ``memory_limit`` for the runs: the embedded
DuckDB engine keeps to it and spills beyond it (``none`` for DuckDB's own limit, 80% of memory).

Targets: without reasons under 60 s, with reasons for the listed customers under 180 s, both
under 6 GiB.

Run from the repository root:

    .venv/bin/python benchmarks/score.py                      # 1,000,000 customers
    .venv/bin/python benchmarks/score.py --customers 50000    # a quick look
    .venv/bin/python benchmarks/score.py --reasons none,listed,all --customers 100000
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
from functools import partial
from pathlib import Path

AS_OF = dt.date(2025, 2, 28)
GIB = 2**30
SAMPLE = 20_000  # customers whose TreeSHAP the bare child times
REASONS = {"none": {"reasons": 0}, "listed": {"reasons_for": "listed"},
           "all": {"reasons_for": "all"}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--train-customers", type=int, default=20_000)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/data/score"))
    parser.add_argument("--reasons", default="none,listed",
                        help="the scoring runs, comma-separated: none, listed, all")
    parser.add_argument("--memory-limit", default="1.5GiB",
                        help="source.yaml's memory_limit for the engine; none: DuckDB's own")
    parser.add_argument("--step", help=argparse.SUPPRESS)  # train, score or bare, in a child
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def child(step: str, source: Path, config: Path) -> None:
    import warnings

    warnings.simplefilter("ignore")
    from klantwaarde.config import load_config
    from klantwaarde.sources import open_source

    cfg = load_config(config)
    src = open_source(str(source), cfg.source)
    started = time.perf_counter()
    if step == "train":
        from klantwaarde.training.train import train

        result = train(src, AS_OF, cfg)
        print(json.dumps({"seconds": time.perf_counter() - started,
                          "promoted": {t: v.version for t, v in result.promoted.items()}}))
        return
    if step == "score":
        from klantwaarde.scoring.score import score

        marks: list[tuple[str, float]] = []

        def step(text: str) -> None:
            marks.append((text, time.perf_counter() - started))
            print(f"  {marks[-1][1]:7.1f}s {text}", file=sys.stderr, flush=True)

        result = score(src, AS_OF, cfg, step)
        seconds = time.perf_counter() - started
        ends = [at for _, at in marks[1:]] + [seconds]
        stages = [(text, end - at) for (text, at), end in zip(marks, ends, strict=True)]
        from klantwaarde.scoring.store import read_scores

        written = read_scores(cfg.scoring.parquet, AS_OF)
        explained = sum(written[f"{t}_reasons"].map(len).gt(0) for t in ("churn", "margin",
                                                                            "upgrade")).gt(0)
        print(json.dumps({"seconds": seconds, "customers": result.customers,
                          "drifted": result.drifted, "explained": int(explained.sum()),
                          "stages": stages}))
        return
    print(json.dumps(bare(src, cfg)))


def bare(src, cfg) -> dict[str, float]:
    """Seconds of the three models' predict and pred_contribs on the features at AS_OF (the
    response model's meta-learner is left out: it has no reasons)."""
    import xgboost as xgb

    from klantwaarde.features import features_at
    from klantwaarde.models import registry
    from klantwaarde.models.customer_model import model_input
    from klantwaarde.models.fitted import first_output
    from klantwaarde.scoring.champions import load_champions

    registry.connect(cfg.models)
    champions = load_champions()
    frame = model_input(features_at(src, AS_OF, cfg))
    rows = min(SAMPLE, len(frame))
    models = []  # (predict, contributions on the sample), each on its prepared matrix
    for target, champion in champions.items():
        if target == "response":  # a meta-learner, not one booster; it gives no reasons
            continue
        pipeline = champion.model.pipeline
        model = pipeline.named_steps["model"]
        values = pipeline.named_steps["matrix"].transform(frame[champion.model.features])
        if hasattr(model, "contributions"):  # upgrade: a binary model per output
            models.append((partial(model.predict_proba, values),
                           partial(model.contributions, values[:rows])))
        else:
            booster, matrix = model.get_booster(), xgb.DMatrix(values)
            models.append((partial(booster.predict, matrix),
                           partial(first_output(booster).predict, matrix.slice(range(rows)),
                                   pred_contribs=True)))
    out = {"customers": len(frame)}
    started = time.perf_counter()
    for predict, _ in models:
        predict()
    out["predict"] = time.perf_counter() - started
    out["sample"] = rows
    started = time.perf_counter()
    for _, contribs in models:
        contribs()
    out["contribs"] = time.perf_counter() - started
    return out


def run(step: str, source: Path, config: Path) -> tuple[dict, float, float]:
    """The child's JSON, its CPU seconds and its peak memory in GiB."""
    process = subprocess.Popen([sys.executable, __file__, "--step", step, "--source",
                                str(source), "--config", str(config)],
                               stdout=subprocess.PIPE, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{step} failed:\n{output}")
    return (json.loads(output.strip().splitlines()[-1]), usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss * 1024 / GIB)


def ensure(folder: Path, customers: int, months: int, start: dt.date) -> Path:
    from klantwaarde.config import load_config
    from klantwaarde.simulation import simulate

    if folder.exists():
        print(f"reusing {folder}")
    else:
        print(f"simulating {folder} ...", flush=True)
        simulate(customers, months, 1, folder, load_config(), start=start)
    return folder


def main() -> None:
    args = parse_args()
    if args.step:
        child(args.step, args.source, args.config)
        return
    import yaml

    base = ensure(args.data / f"{args.customers}-customers-14-months", args.customers, 14,
                  dt.date(2024, 1, 1))
    training = ensure(args.data / f"{args.train_customers}-customers-26-months",
                      args.train_customers, 26, dt.date(2023, 1, 1))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    models = args.data / f"models-{training.name}"
    runs = args.reasons.split(",")
    scored: dict[str, tuple[dict, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config"
        config.mkdir()
        (config / "models.yaml").write_text(yaml.safe_dump({
            "store": str(models), "promotion": {"automatic": True, "min_improvement": 0.005}}))
        if args.memory_limit != "none":
            (config / "source.yaml").write_text(f"memory_limit: {args.memory_limit}\n")
        if (models / "trained.json").exists():
            print(f"reusing the champions in {models}")
        else:
            trained, _, _ = run("train", training, config)
            print(f"champions trained on {args.train_customers:,} customers in "
                  f"{trained['seconds']:.0f} s: versions {trained['promoted']}", flush=True)
            (models / "trained.json").write_text(json.dumps(trained))
        for name in runs:
            (config / "scoring.yaml").write_text(yaml.safe_dump(
                {"store": str(Path(tmp) / name / "scores.duckdb"),
                 "parquet": str(Path(tmp) / name / "parquet")} | REASONS[name]))
            scored[name] = run("score", base, config)
            print(f"  scored with reasons {name}: {scored[name][0]['seconds']:.1f} s", flush=True)
        plain, _, plain_peak = run("bare", base, config)
    every = plain["contribs"] / plain["sample"] * plain["customers"]
    print(f"\nscoring {plain['customers']:,} customers at {AS_OF} with the champions, side by "
          f"side (the engine's memory_limit: {args.memory_limit}):")
    print(f"  {'reasons':<8} {'explained':>10} {'wall':>9} {'CPU':>9} {'peak':>9}")
    for name, (result, cpu, peak) in scored.items():
        print(f"  {name:<8} {result['explained']:>10,} {result['seconds']:>8.1f}s "
              f"{cpu:>8.1f}s {peak:>6.2f} GiB")
    if "all" not in scored:
        print(f"  {'all':<8} {plain['customers']:>10,} {'~' + format(every, ',.0f'):>8}s "
              "(estimated from the bare TreeSHAP rate)")
    for name, (result, _, _) in scored.items():
        print(f"  stages of the run with reasons {name}:")
        for text, seconds in result["stages"]:
            print(f"    {seconds:7.1f} s  {text}")
    print(f"  bare xgboost predict  {plain['predict']:7.1f} s")
    print(f"  bare pred_contribs    {plain['contribs']:7.1f} s   on {plain['sample']:,} "
          f"customers, {plain['contribs'] / plain['sample'] * 1e3:.2f} ms per customer for the "
          f"three models (peak of the bare child {plain_peak:.2f} GiB)")
    for name, limit in (("none", 60), ("listed", 180)):
        if name in scored:
            result, _, peak = scored[name]
            print(f"target reasons {name}: under {limit} s "
                  f"{'met' if result['seconds'] < limit else 'NOT met'}, under 6 GiB "
                  f"{'met' if peak < 6 else 'NOT met'}")
    drifted = {d for result, _, _ in scored.values() for d in result["drifted"]}
    if drifted:
        print(f"drift warnings: {', '.join(sorted(drifted))}")


if __name__ == "__main__":
    main()
