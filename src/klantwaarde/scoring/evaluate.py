"""``klantwaarde evaluate``: the scores made one label horizon before as_of against what
happened since — realised churn ranking and calibration, the at-risk list's lift and capture,
the margin error, cross-sell conversions, the retention rate and the movement of customers
through the pyramid; one MLflow run in the scoring experiment."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.metrics import roc_auc_score

from klantwaarde.config import Config
from klantwaarde.decisions import contact_cost
from klantwaarde.errors import InputError
from klantwaarde.features import training_set
from klantwaarde.lists import AT_RISK, CROSS_SELL, build_lists
from klantwaarde.models import registry
from klantwaarde.models.metrics import (
    calibration_table,
    churn_metrics,
    gains_table,
    margin_metrics,
    uplift_metrics,
)
from klantwaarde.models.targets import NAMES
from klantwaarde.periods import months_before
from klantwaarde.plots import calibration_png, gains_png
from klantwaarde.profitability.margins import margins_of
from klantwaarde.profitability.report import report_of
from klantwaarde.profitability.segments import INACTIVE
from klantwaarde.scoring.champions import trained_as_of
from klantwaarde.scoring.store import read_scores, scored_months
from klantwaarde.sources import Source

Step = Callable[[str], None]


class NoScoresError(InputError):
    """The scores table has no month one label horizon before the evaluated as_of."""


IN_SAMPLE = ("the scores at {then} are in-sample ({versions}): a champion that made them was "
             "trained on data after {then}, so these figures measure fit to the "
             "training data, not out-of-time performance. They are logged with the prefix "
             "in_sample. and the tag in_sample=true. Evaluate a month scored at or after the "
             "champions' training --as-of for an out-of-time result.")


@dataclass(frozen=True)
class EvaluationResult:
    as_of: dt.date
    scored_at: dt.date  # the month of the scores evaluated: as_of minus the label horizon
    customers: int
    versions: dict[str, int]
    metrics: dict[str, float]
    calibration: pd.DataFrame  # churn: per decile of the score, predicted against observed
    migration: pd.DataFrame  # customers per pyramid tier at scored_at (rows) and at as_of
    run_id: str
    notices: list[str]
    in_sample: bool  # a model that made the scores was trained on data after scored_at


def evaluate(source: Source, as_of: dt.date, cfg: Config, step: Step = lambda _: None
             ) -> EvaluationResult:
    """Compare the scores of ``as_of`` minus the horizon with the outcomes up to ``as_of``."""
    then = months_before(as_of, cfg.labels.horizon_months)
    step(f"reading the scores of {then}")
    months = scored_months(cfg.scoring.parquet)
    if then not in months:
        held = ", ".join(str(m) for m in months[-6:]) or "none"
        raise NoScoresError(
            f"scores: the scores table (its Parquet copies under {cfg.scoring.parquet}) holds no "
            f"scores at {then}, one label horizon ({cfg.labels.horizon_months} months) before "
            f"{as_of} (months held: {held}). Evaluate an --as-of "
            f"{cfg.labels.horizon_months} months after a scored month.")
    scores = read_scores(cfg.scoring.parquet, then)
    step(f"computing what happened between {then} and {as_of}")
    labels = training_set(source, cfg, as_of, 1)
    outcome = labels.table.select("customer_id", *labels.labels).to_pyarrow().to_pandas()
    margins = margins_of(labels.history, source, cfg, cfg.profitability.window_months)
    now = report_of(margins, cfg).customers[["customer_id", "tier"]]
    joined = scores.merge(outcome, on="customer_id", how="inner")
    notices = []
    if len(joined) < len(scores):
        notices.append(f"{len(scores) - len(joined):,} of {len(scores):,} customers scored at "
                       f"{then} are no longer in the source's active base at {then}; they are "
                       "left out of the evaluation.")
    if joined.empty:
        raise InputError(f"scores: none of the {len(scores):,} customers scored at {then} is in "
                         "this source's active base at that date. Evaluate with the source "
                         "that was scored.")
    step("comparing scores with outcomes")
    metrics = _metrics(joined, scores, then, cfg)
    churned = joined.label_churn.to_numpy(bool)
    calibration = calibration_table(churned, joined.churn_probability)
    migration = _migration(scores, now, [t.tier for t in cfg.profitability.pyramid])
    metrics |= _movement(migration)
    versions = {t: int(joined[f"{t}_version"].iloc[0]) for t in ("churn", "margin", "upgrade")}
    registry.connect(cfg.models, f"{cfg.models.experiment}-scoring")
    in_sample = _in_sample(scores, versions, then)
    if in_sample:
        notices.append(IN_SAMPLE.format(then=then, versions=", ".join(
            f"{t} v{v}" for t, v in versions.items())))
    prefix = "in_sample." if in_sample else ""
    with registry.start_run(f"evaluate {as_of}") as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tag("kind", "evaluation")
        mlflow.set_tag("in_sample", str(in_sample).lower())
        mlflow.log_params({"as_of": as_of.isoformat(), "scored_at": then.isoformat(),
                           **{f"{t}_version": v for t, v in versions.items()}})
        mlflow.log_metrics({prefix + k: v for k, v in metrics.items() if np.isfinite(v)})
        _artifacts(Path(tmp), calibration, migration, churned, joined.churn_probability)
    return EvaluationResult(as_of, then, len(joined), versions, metrics, calibration, migration,
                            run.info.run_id, notices, in_sample)


def _in_sample(scores: pd.DataFrame, versions: dict[str, int], then: dt.date) -> bool:
    """Whether a model that made the scores had seen what happened after ``then``: as the month
    records it, or, for a month scored before it recorded that, by the training --as-of of its
    versions in the registry."""
    recorded = scores.in_sample.dropna()
    if len(recorded):
        return bool(recorded.any())
    client = MlflowClient()
    for target, version in versions.items():
        name = NAMES[target]
        try:
            run_id = client.get_model_version(name, str(version)).run_id
        except MlflowException:  # a version no longer in this registry
            continue
        trained = trained_as_of(registry.Version(target, name, version, run_id))
        if trained is not None and then < trained:
            return True
    return False


def _metrics(joined: pd.DataFrame, scores: pd.DataFrame, scored_at: dt.date, cfg: Config
             ) -> dict[str, float]:
    churned = joined.label_churn.to_numpy(bool)
    out = {f"churn_{k}": float(v) for k, v in
           churn_metrics(churned, joined.churn_probability, cfg.models.campaign).items()}
    out |= {f"margin_{k}": float(v) for k, v in
            margin_metrics(joined.label_future_net_margin, joined.future_net_margin).items()}
    upgraded = joined.label_upgrade.to_numpy(bool)
    out["upgrade_roc_auc"] = (roc_auc_score(upgraded, joined.upgrade_probability)
                              if 0 < upgraded.sum() < len(upgraded) else float("nan"))
    out["customers"] = float(len(joined))
    out["retention_rate"] = 1 - float(churned.mean())
    out["retention_goal"] = cfg.scoring.retention_goal
    lists = build_lists(scores, scored_at, cfg)
    out |= _list_effect("at_risk", joined, lists.tables[AT_RISK].customer_id, joined.label_churn)
    out |= control_effect(joined, lists.tables[AT_RISK], lists.held_out.customer_id,
                          12 / cfg.labels.horizon_months,
                          contact_cost(cfg.costs, cfg.lists.contact))
    if "label_contacted" in joined and joined.contact_effect.notna().any():
        # the response model against the contacts managers actually made after the month
        out |= {f"response_{k}": v for k, v in uplift_metrics(
            joined.label_churn, joined.label_contacted.astype(bool),
            joined.contact_effect.astype(float)).items()}
    adopted = _adopted_next_best(joined)
    offered = joined.next_best_categories.map(len) > 0
    out |= _list_effect("cross_sell", joined[offered], lists.tables[CROSS_SELL].customer_id,
                        adopted[offered])
    return out


def control_effect(joined: pd.DataFrame, listed: pd.DataFrame, held: pd.Series,
                   yearly: float, cost: float, resamples: int = 2000, seed: int = 0
                   ) -> dict[str, float]:
    """The at-risk lists (``listed``: the sheets' rows) against their control group (``held``):
    churn and realised net margin of the listed and the held-out customers, the churn the lists
    prevented (held-out rate - listed rate) with a 95% bootstrap interval, and the saved margin
    that implies (prevented churn x the listed customers' predicted margin over 12 months - the
    contacts' cost; ``yearly`` scales the horizon to 12 months) against the expected saved
    margin the sheets predicted."""
    on = joined[joined.customer_id.isin(listed.customer_id)]
    off = joined[joined.customer_id.isin(held)]
    out = {"control_listed": float(len(on)), "control_held_out": float(len(off))}
    if on.empty or off.empty:
        return out
    a, b = on.label_churn.to_numpy(float), off.label_churn.to_numpy(float)
    rng = np.random.default_rng(seed)
    draws = (rng.choice(b, (resamples, len(b))).mean(axis=1)
             - rng.choice(a, (resamples, len(a))).mean(axis=1))
    prevented = b.mean() - a.mean()
    out |= {"control_churn_listed": float(a.mean()), "control_churn_held_out": float(b.mean()),
            "control_churn_prevented": float(prevented),
            "control_churn_prevented_low": float(np.quantile(draws, 0.025)),
            "control_churn_prevented_high": float(np.quantile(draws, 0.975)),
            "control_margin_listed": float(on.label_future_net_margin.mean()),
            "control_margin_held_out": float(off.label_future_net_margin.mean()),
            "control_saved_margin_realised": float(
                prevented * on.future_net_margin.clip(lower=0).sum() * yearly - cost * len(on))}
    if listed.expected_saved_margin.notna().any():
        out["control_saved_margin_predicted"] = float(listed.expected_saved_margin.sum())
    return out


def _list_effect(name: str, base: pd.DataFrame, listed: pd.Series, hit: pd.Series
                 ) -> dict[str, float]:
    """Size of a list, its hit rate, lift over the base and the share of all hits it caught."""
    on = base.customer_id.isin(listed).to_numpy()
    hit = hit.to_numpy(bool)
    rate = hit.mean() if len(hit) else float("nan")
    found = hit[on].mean() if on.any() else float("nan")
    return {f"{name}_listed": float(on.sum()), f"{name}_hit_rate": float(found),
            f"{name}_lift": float(found / rate) if rate > 0 else float("nan"),
            f"{name}_capture": float(hit[on].sum() / hit.sum()) if hit.any() else float("nan")}


def _adopted_next_best(joined: pd.DataFrame) -> pd.Series:
    """Whether the customer adopted one of its next-best categories in the horizon."""
    offers = joined.next_best_categories.explode().dropna()
    hit = np.zeros(len(offers), bool)
    for category in offers.unique():
        label = f"label_adopt__{category}"
        if label in joined:
            mask = (offers == category).to_numpy()
            hit[mask] = joined[label].reindex(offers.index[mask]).to_numpy(bool)
    return (pd.Series(hit, index=offers.index).groupby(level=0).any()
            .reindex(joined.index, fill_value=False))


def _migration(scores: pd.DataFrame, now: pd.DataFrame, tiers: list[str]) -> pd.DataFrame:
    """Customers scored then, by their pyramid tier then (rows) and now (columns)."""
    order = [*tiers, INACTIVE]
    moved = scores[["customer_id", "tier"]].merge(now, on="customer_id", how="left",
                                                  suffixes=("_then", "_now"))
    then = pd.Categorical(moved.tier_then.fillna(INACTIVE), categories=order)
    later = pd.Categorical(moved.tier_now.fillna(INACTIVE), categories=order)
    table = pd.crosstab(then, later, dropna=False)
    table.index.name, table.columns.name = "tier then", "tier now"
    return table.reindex(index=order, columns=order, fill_value=0)


def _movement(migration: pd.DataFrame) -> dict[str, float]:
    """Shares of the customers that moved up, stayed or moved down the pyramid (inactive is
    the bottom)."""
    counts = migration.to_numpy()
    total = counts.sum()
    rank = np.arange(len(counts))
    up = counts[rank[:, None] > rank[None, :]].sum()
    down = counts[rank[:, None] < rank[None, :]].sum()
    return {"pyramid_moved_up": up / total, "pyramid_stayed": np.trace(counts) / total,
            "pyramid_moved_down": down / total} if total else {}


def _artifacts(folder: Path, calibration: pd.DataFrame, migration: pd.DataFrame,
               churned: np.ndarray, probability: pd.Series) -> None:
    calibration.to_csv(folder / "calibration.csv", index=False)
    migration.to_csv(folder / "pyramid_migration.csv")
    calibration_png(calibration, "mean_predicted", "observed_rate",
                    "churn: predicted against realised", folder / "calibration.png")
    gains_png(gains_table(churned, probability), "churn: realised gains",
              folder / "gains.png")
    for path in sorted(folder.iterdir()):
        mlflow.log_artifact(str(path))
