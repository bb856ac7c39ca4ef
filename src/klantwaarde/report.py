"""``klantwaarde report``: one self-contained HTML page for management at one scored month.

Everything comes from the stores: the month's rows of the scores table (profitability, segments,
lists), the champions' validation metrics in the model registry and the evaluation of last
period's scores in the scoring experiment. Charts are embedded as PNG data, so the file can be
mailed or opened offline.
"""

from __future__ import annotations

import base64
import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2
import mlflow
import pandas as pd
from mlflow import MlflowClient

from klantwaarde import __version__
from klantwaarde.config import Config
from klantwaarde.lists import SHEETS, build_lists
from klantwaarde.models import registry
from klantwaarde.models.targets import NAMES
from klantwaarde.profitability.charts import pyramid_png, whale_curve_png
from klantwaarde.profitability.segments import (
    INACTIVE,
    REMEDIES,
    concentration,
    summary,
    whale_curve,
)
from klantwaarde.scoring.store import read_scores

# per target: the validation metrics shown, and how
METRICS = {"churn": {"roc_auc": "{:.3f}", "lift_top10": "{:.2f}x",
                     "emp_per_customer": "EUR {:.2f}", "brier": "{:.3f}"},
           "margin": {"normalized_gini": "{:.3f}", "spearman": "{:.3f}", "mae": "EUR {:,.0f}",
                      "total_ratio": "{:.2f}"},
           "upgrade": {"mean_roc_auc": "{:.3f}", "hit_rate_at_3": "{:.1%}"}}
EVALUATION = {"churn_roc_auc": "{:.3f}", "at_risk_hit_rate": "{:.1%}", "at_risk_lift": "{:.2f}x",
              "at_risk_capture": "{:.1%}", "margin_mae": "EUR {:,.0f}",
              "margin_total_ratio": "{:.2f}", "cross_sell_hit_rate": "{:.1%}",
              "retention_rate": "{:.1%}", "retention_goal": "{:.0%}",
              "pyramid_moved_up": "{:.1%}", "pyramid_moved_down": "{:.1%}"}


@dataclass(frozen=True)
class Report:
    as_of: dt.date
    html: str
    sections: tuple[str, ...]


def build_page(as_of: dt.date, cfg: Config) -> Report:
    """The page for the scored month ``as_of``."""
    scores = read_scores(cfg.scoring.parquet, as_of)
    registry.connect(cfg.models, f"{cfg.models.experiment}-scoring")
    active = scores.assign(tier=scores.tier.fillna(INACTIVE))
    segments = summary(active, cfg.profitability)
    whale = whale_curve(active.net_margin)
    tail = concentration(active)
    tiers = segments[(segments.segment == "tier") & (segments.value != INACTIVE)]
    with tempfile.TemporaryDirectory() as tmp:
        whale_curve_png(whale, Path(tmp) / "whale.png")
        pyramid_png(tiers, Path(tmp) / "pyramid.png")
        images = {name: _data_uri(Path(tmp) / f"{name}.png") for name in ("whale", "pyramid")}
    revenue = active.revenue.sum()
    loss = active[active.category == "loss account"]
    context = {
        "as_of": as_of, "version": __version__, "images": images,
        "headline": [("customers scored", f"{len(active):,}"),
                     ("revenue", f"EUR {revenue:,.0f}"),
                     ("net margin", f"EUR {active.net_margin.sum():,.0f} "
                                    f"({active.net_margin.sum() / revenue:.1%} of revenue)"
                      if revenue else "-"),
                     ("loss accounts", f"{len(loss):,}, losing EUR {-loss.net_margin.sum():,.0f}"),
                     ("whale curve peak", f"{whale.peak:.0%} of total profit"),
                     ("customers that make all the profit", f"{whale.profit_makers_share:.0%}"),
                     ("top 20% of customers", f"{tail.top20_revenue_share:.0%} of revenue"),
                     ("the small customers that make the last 20% of revenue",
                      f"{tail.tail_customer_share:.0%} of customers, earning "
                      f"{tail.tail_margin_pct:.1%} of their revenue")],
        "tiers": _table(segments[segments.segment == "tier"]),
        "cells": _cells(active),
        "drivers": _drivers(loss),
        "models": _champions(),
        "evaluation": _evaluation(as_of),
        "lists": _list_sizes(scores, as_of, cfg),
    }
    template = jinja2.Environment(
        loader=jinja2.PackageLoader("klantwaarde", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined).get_template("report.html")
    html = template.render(**context)
    return Report(as_of, html, ("headline", "whale", "pyramid", "qualification", "loss-drivers",
                                "models", "evaluation", "lists"))


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _table(frame: pd.DataFrame) -> list[dict[str, str]]:
    return [{"tier": r.value, "customers": f"{r.customers:,}",
             "share of revenue": f"{r.revenue_share:.1%}", "net margin": f"EUR {r.net_margin:,.0f}"}
            for r in frame.itertuples()]


def _cells(active: pd.DataFrame) -> list[dict[str, str]]:
    grouped = active.groupby(["cell", "policy"]).agg(
        customers=("customer_id", "size"), net_margin=("net_margin", "sum")).reset_index()
    return [{"cell": r.cell, "customers": f"{r.customers:,}",
             "net margin": f"EUR {r.net_margin:,.0f}", "policy": r.policy}
            for r in grouped.sort_values("customers", ascending=False).itertuples()]


def _drivers(loss: pd.DataFrame) -> list[dict[str, str]]:
    grouped = loss.groupby("loss_driver").agg(customers=("customer_id", "size"),
                                              loss=("net_margin", "sum")).reset_index()
    return [{"dominant cost driver": r.loss_driver.replace("_", " "),
             "loss accounts": f"{r.customers:,}", "their loss": f"EUR {-r.loss:,.0f}",
             "remedy": REMEDIES.get(r.loss_driver, "")}
            for r in grouped.sort_values("loss").itertuples()]


def _champions() -> list[dict[str, str]]:
    client = MlflowClient()
    rows = []
    for target, shown in METRICS.items():
        version = registry.alias_version(target, registry.CHAMPION)
        if version is None:
            rows.append({"model": NAMES[target], "version": "no champion",
                         "candidate": "", "validation": ""})
            continue
        run = client.get_run(version.run_id)
        metrics = run.data.metrics
        rows.append({"model": version.name, "version": str(version.version),
                     "candidate": run.data.tags.get("mlflow.runName", ""),
                     "validation": ", ".join(f"{k} {f.format(metrics[k])}"
                                             for k, f in shown.items() if k in metrics)})
    return rows


def _evaluation(as_of: dt.date) -> dict[str, object]:
    """The newest evaluation run at ``as_of`` in the scoring experiment, if any."""
    runs = mlflow.search_runs(filter_string=f"tags.kind = 'evaluation' and "
                                            f"params.as_of = '{as_of.isoformat()}'",
                              order_by=["attributes.start_time DESC"], max_results=1,
                              output_format="list")
    if not runs:
        return {"scored_at": None, "rows": []}
    run = runs[0]
    scored_at = run.data.params.get("scored_at")
    prefix = ""
    if run.data.tags.get("in_sample") == "true":  # its metrics are logged as in_sample.NAME
        prefix = "in_sample."
        scored_at = (f"{scored_at} (in-sample: a champion that made them was trained on data "
                     "after that month, so this is not an out-of-time result)")
    metrics = run.data.metrics
    return {"scored_at": scored_at,
            "rows": [{"measure": k.replace("_", " "), "value": f.format(metrics[prefix + k])}
                     for k, f in EVALUATION.items() if prefix + k in metrics]}


def _list_sizes(scores: pd.DataFrame, as_of: dt.date, cfg: Config) -> list[dict[str, str]]:
    lists = build_lists(scores, as_of, cfg)
    counts = {name: t.account_manager.value_counts() for name, t in lists.tables.items()}
    return [{"account manager": m, **{name: f"{counts[name].get(m, 0):,}" for name in SHEETS}}
            for m in lists.managers]
