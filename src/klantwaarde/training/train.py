"""``klantwaarde train``: walk-forward data sets, the candidates of every target (three each for
churn, margin and upgrade; two meta-learners for response), MLflow runs and the challenger of
every registered model.

The snapshots are the monthly dates whose label horizon ends by ``as_of``. The newest
``validation_snapshots`` validate every candidate; the ones before train it, and the newest of
those is xgboost's early-stopping set. One parent run holds the configuration and a nested run
per candidate with its parameters, metrics, charts, rules and model. The challengers of all
targets are registered first and get their alias together at the end: a training that fails or
is killed moves none. Without an interactions table, or without contacted and uncontacted
customers in both sets, the response target is skipped with a notice.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml

from klantwaarde import __version__, plots
from klantwaarde.config import Config
from klantwaarde.errors import InputError
from klantwaarde.features import training_set
from klantwaarde.models import drift, metrics, registry
from klantwaarde.models.customer_model import load_model, log_model, model_input
from klantwaarde.models.fitted import contributions, predict
from klantwaarde.models.targets import TARGETS, TargetName, output_columns
from klantwaarde.periods import anchor_of, date_of, period_of
from klantwaarde.sources import Source
from klantwaarde.training import btyd
from klantwaarde.training.candidates import (
    CANDIDATES,
    Fitted,
    fit_baseline,
    fit_tree,
    fit_xgboost,
)
from klantwaarde.training.response import LEARNERS, ResponseModel

Step = Callable[[str], None]


@dataclass(frozen=True)
class Sets:
    """The feature table split by snapshot date."""

    features: list[str]
    train: pd.DataFrame  # every training snapshot
    fit: pd.DataFrame  # the training snapshots but the newest (xgboost's search)
    stop: pd.DataFrame  # the newest training snapshot (xgboost's early stopping)
    valid: pd.DataFrame
    train_dates: list[dt.date]
    valid_dates: list[dt.date]


@dataclass(frozen=True)
class Candidate:
    target: TargetName
    candidate: str
    metrics: dict[str, float]
    run_id: str
    model_id: str  # the logged model ("" for the comparator, which logs none)


@dataclass(frozen=True)
class Verdict:
    """The configured promotion rule applied to a target's new challenger."""

    challenger: registry.Version
    wins: bool  # beats the champion by min_improvement, or there is no champion
    reason: str


@dataclass(frozen=True)
class TrainingResult:
    run_id: str
    tracking_uri: str
    sets: Sets
    candidates: list[Candidate]
    challengers: dict[str, registry.Version]
    verdicts: dict[str, Verdict]
    promoted: dict[str, registry.Version]  # by training itself (promotion.automatic)
    notices: list[str]


def load_sets(source: Source, as_of: dt.date, cfg: Config, step: Step) -> Sets:
    """The walk-forward sets at ``as_of`` as pandas frames."""
    mc = cfg.models
    wanted = mc.train_snapshots + mc.validation_snapshots
    step(f"building features and labels for {wanted} monthly snapshots")
    fs = training_set(source, cfg, as_of, wanted)
    frame = model_input(fs)
    dates = sorted(d for d in frame.as_of.unique())
    if len(dates) < mc.validation_snapshots + 2:
        raise InputError(
            f"orders: the history up to {as_of} gives active customers with complete labels at "
            f"{len(dates)} monthly snapshot(s); training needs at least "
            f"{mc.validation_snapshots + 2} (validation, early stopping and training). Pass a "
            f"later --as-of, or lower models.validation_snapshots.")
    valid_dates, train_dates = dates[-mc.validation_snapshots:], dates[:-mc.validation_snapshots]
    train = frame[frame.as_of.isin(train_dates)]
    return Sets(features=[f.name for f in fs.features], train=train,
                fit=train[train.as_of < train_dates[-1]],
                stop=train[train.as_of == train_dates[-1]],
                valid=frame[frame.as_of.isin(valid_dates)], train_dates=train_dates,
                valid_dates=valid_dates)


def labels_of(target: TargetName, sets: Sets) -> list[str]:
    """The label columns of ``target``; for upgrade the adoptions seen in every training set."""
    if target == "churn":
        return ["label_churn"]
    if target == "margin":
        return ["label_future_net_margin"]
    if target == "response":
        return ["label_churn", "label_contacted"]  # the outcome, the treatment
    adopt = [c for c in sets.train.columns if c.startswith("label_adopt__")
             and sets.fit[c].any() and sets.stop[c].any()]
    return ["label_upgrade", *adopt]


def _y(frame: pd.DataFrame, target: TargetName, labels: list[str]) -> np.ndarray:
    if target == "margin":
        return frame[labels[0]].to_numpy(dtype=float)
    y = frame[labels].to_numpy(dtype=int)
    return y.ravel() if len(labels) == 1 else y


def train(source: Source, as_of: dt.date, cfg: Config, step: Step = lambda _: None
          ) -> TrainingResult:
    """Train, compare, log and register; judge each challenger by the promotion rule, and
    promote the winners when ``promotion.automatic`` is set."""
    sets = load_sets(source, as_of, cfg, step)
    uri = registry.connect(cfg.models, create=True)
    found: list[Candidate] = []
    challengers: dict[str, registry.Version] = {}
    verdicts: dict[str, Verdict] = {}
    notices: list[str] = []
    with registry.start_run(f"train {as_of}") as parent:
        with tempfile.TemporaryDirectory() as tmp:
            _log_setup(cfg, sets, as_of, Path(tmp))
            classical = _btyd(source, sets, cfg, step) if btyd.available() else {}
            profile = drift.profile(sets.train, sets.features)
            if not classical:
                notices.append(btyd.MISSING)
            for target in TARGETS:
                if target == "response" and (gap := response_gap(sets)):
                    notices.append(gap)
                    step(gap)
                    continue
                labels = labels_of(target, sets)
                results = [_candidate(target, name, labels, sets, cfg, profile, Path(tmp), step)
                           for name in (LEARNERS if target == "response" else CANDIDATES)]
                found += results + ([classical[target]] if target in classical else [])
                key, named = _selection(cfg, target)
                best = (next(r for r in results if r.candidate == named) if named else
                        max(results, key=lambda r: _or_minus_inf(r.metrics[key])))
                mlflow.log_metric(f"{target}_best_{key}", best.metrics[key])
                mlflow.set_tag(f"{target}_best", best.candidate)
                version = registry.register(target, best.model_id)
                challengers[target] = version
                step(f"{target}: {best.candidate} registered as version {version.version}")
                verdicts[target] = _verdict(target, best, version, labels, sets, cfg)
                notices.append(verdicts[target].reason)
        registry.move_challengers(challengers)
        step("challengers: " + ", ".join(f"{t} v{v.version}" for t, v in challengers.items()))
    result = TrainingResult(parent.info.run_id, uri, sets, found, challengers, verdicts, {},
                            notices)
    if not cfg.models.promotion.automatic:
        return replace(result, notices=notices + [
            f"{target}: not promoted, promotion.automatic is off; klantwaarde promote --target "
            f"{target} promotes it" for target, v in verdicts.items() if v.wins])
    promoted = promote_winners(result)
    return replace(result, promoted=promoted, notices=notices + [
        f"{v.name}: version {v.version} promoted to champion" for v in promoted.values()])


def response_gap(sets: Sets) -> str | None:
    """Why the response model cannot be trained on ``sets``, or None when it can."""
    if "label_contacted" not in sets.train.columns:
        return ("response: skipped, the source has no interactions table (the treatment record "
                "of visits and calls); scores get no contact_effect")
    for part, frame in (("training", sets.train), ("validation", sets.valid)):
        contacted = frame.label_contacted.astype(bool)
        if not contacted.any() or contacted.all():
            return (f"response: skipped, the {part} snapshots hold "
                    f"{'no contacted' if not contacted.any() else 'only contacted'} customers "
                    "(a visit or call in the month after as_of), so there is nothing to compare; "
                    "scores get no contact_effect")
    return None


def promote_winners(result: TrainingResult) -> dict[str, registry.Version]:
    """Move the champion alias to every challenger of ``result`` whose verdict wins; the
    registry of the training must be connected."""
    return {target: registry.promote(target, verdict.challenger.version)
            for target, verdict in result.verdicts.items() if verdict.wins}


def _or_minus_inf(value: float) -> float:
    return -np.inf if value is None or np.isnan(value) else value


def _log_setup(cfg: Config, sets: Sets, as_of: dt.date, tmp: Path) -> None:
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    mlflow.log_artifact(str(config))
    (tmp / "features.json").write_text(json.dumps(sets.features, indent=1))
    mlflow.log_artifact(str(tmp / "features.json"))
    mlflow.log_params({
        "as_of": as_of.isoformat(), "klantwaarde_version": __version__,
        "train_dates": f"{sets.train_dates[0]}..{sets.train_dates[-1]}",
        "validation_dates": ",".join(d.isoformat() for d in sets.valid_dates),
        "train_rows": len(sets.train), "validation_rows": len(sets.valid),
        "features": len(sets.features), "horizon_months": cfg.labels.horizon_months,
        "churn_definition": cfg.labels.churn.definition, "seed": cfg.models.seed})


def _fit(target: TargetName, name: str, labels: list[str], sets: Sets, cfg: Config,
         step: Step) -> Fitted:
    X, y = sets.train[sets.features], _y(sets.train, target, labels)  # noqa: N806
    if target == "response":
        rc = cfg.models.response
        model = ResponseModel(name, rc.min_propensity, rc.rounds, rc.max_depth,
                              rc.learning_rate, cfg.models.seed)
        return Fitted(model.fit(X, y[:, 1], y[:, 0]), {
            k: v for k, v in model.get_params().items() if k != "seed"})
    if name == "baseline":
        return fit_baseline(target, X, y, cfg.labels.horizon_months)
    if name == "tree":
        return fit_tree(target, X, y, cfg.models)
    return fit_xgboost(target, sets.fit[sets.features], _y(sets.fit, target, labels),
                       sets.stop[sets.features], _y(sets.stop, target, labels), cfg.models, step,
                       labels)


def _candidate(target: TargetName, name: str, labels: list[str], sets: Sets, cfg: Config,
               profile: dict[str, dict], tmp: Path, step: Step) -> Candidate:
    step(f"{target}: training {name} on {len(sets.train):,} customer snapshots")
    with registry.start_run(f"{target}/{name}", nested=True) as run:
        fitted = _fit(target, name, labels, sets, cfg, step)
        X = sets.valid[sets.features]  # noqa: N806
        scores = predict(target, fitted.pipeline, X, len(labels))
        found, tables = evaluate(target, labels, sets.valid, scores, cfg)
        mlflow.set_tags({"target": target, "candidate": name})
        mlflow.log_params({f"{name}.{k}": v for k, v in fitted.params.items()})
        mlflow.log_metrics({k: v for k, v in found.items() if v is not None and np.isfinite(v)})
        folder = tmp / f"{target}-{name}"
        folder.mkdir()
        _charts(target, name, tables, folder)
        if fitted.rules:
            (folder / "tree_rules.txt").write_text(fitted.rules)
        if name == "xgboost":
            _shap_summary(fitted, X, folder / "shap_summary.png")
        mlflow.log_artifacts(str(folder))
        model_id = log_model(target, name, fitted.pipeline, sets.features, labels, profile,
                             X.head(5))
        shown = {k: round(float(v), 4) for k, v in found.items() if k in _SHOWN}
        step(f"{target}: {name} {shown}")
        return Candidate(target, name, found, run.info.run_id, model_id)


_SHOWN = {"roc_auc", "pr_auc", "lift_top10", "normalized_gini", "spearman", "mae",
          "mean_roc_auc", "emp_per_customer", "qini", "uplift_top10", "no_estimate_share"}


def evaluate(target: TargetName, labels: list[str], valid: pd.DataFrame, scores: np.ndarray,
             cfg: Config) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    """The target's metrics and tables on the validation rows."""
    y = _y(valid, target, labels)
    if target == "churn":
        return (metrics.churn_metrics(y, scores, cfg.models.campaign),
                {"calibration": metrics.calibration_table(y, scores),
                 "gains": metrics.gains_table(y, scores)})
    if target == "response":
        churned, contacted = y[:, 0], y[:, 1]
        return (metrics.uplift_metrics(churned, contacted, scores),
                {"qini": metrics.qini_table(churned, contacted, scores)})
    if target == "margin":
        revenue = valid.label_future_revenue.to_numpy(float)
        found = metrics.margin_metrics(y, scores) | {
            "normalized_gini_revenue": metrics.normalized_gini(revenue, scores)}
        return (found,
                {"deciles": metrics.decile_table(y, scores),
                 "gains": metrics.gains_table(y, scores)})
    columns = output_columns(target, labels)
    adopt = [i for i, c in enumerate(columns) if c.startswith("adopt__")]
    y = y.reshape(len(valid), -1)
    upgrade = metrics.churn_metrics(y[:, 0], scores[:, 0], cfg.models.campaign)
    found = {"upgrade_roc_auc": upgrade["roc_auc"], "upgrade_pr_auc": upgrade["pr_auc"],
             "mean_roc_auc": upgrade["roc_auc"]}  # without categories: the upgrade label's
    if adopt:
        adopted = pd.DataFrame(y[:, adopt], columns=[columns[i] for i in adopt])
        eligible = pd.DataFrame({columns[i]: valid[f"owns__{columns[i][len('adopt__'):]}"]
                                 .fillna(0).to_numpy() == 0 for i in adopt})
        ranked = pd.DataFrame(scores[:, adopt], columns=adopted.columns)
        found |= metrics.upgrade_metrics(adopted, ranked, eligible, cfg.models.next_best_k)
    return found, {"gains": metrics.gains_table(y[:, 0], scores[:, 0])}


def _btyd(source: Source, sets: Sets, cfg: Config, step: Step) -> dict[str, Candidate]:
    """BG/NBD + Gamma-Gamma on the same validation snapshots: churn ranked by fewer expected
    purchases, future value by expected spend; one nested run."""
    step("fitting BG/NBD and Gamma-Gamma (the classical comparator)")
    horizon = cfg.labels.horizon_months
    parts = []
    for as_of in sets.valid_dates:
        anchor = anchor_of(as_of)
        days = (date_of(period_of(as_of, anchor) + horizon, anchor) - as_of).days
        found = btyd.forecast(btyd.daily_transactions(source, as_of), as_of, days)
        parts.append(found.assign(as_of=as_of))
    scored = sets.valid[["customer_id", "as_of", "label_churn", "label_future_net_margin",
                         "label_future_revenue"]].merge(pd.concat(parts), how="left",
                                                         on=["customer_id", "as_of"])
    purchases = scored.expected_purchases.fillna(0).to_numpy()
    spend = scored.expected_spend.fillna(0).to_numpy()
    churn = metrics.churn_metrics(scored.label_churn.to_numpy(bool), -purchases,
                                  cfg.models.campaign)
    churn.pop("brier")  # expected purchases are not a probability
    margin = metrics.margin_metrics(scored.label_future_net_margin.to_numpy(float), spend)
    margin = {k: margin[k] for k in ("spearman", "normalized_gini")} | {
        "normalized_gini_revenue": metrics.normalized_gini(
            scored.label_future_revenue.to_numpy(float), spend)}
    with registry.start_run("btyd", nested=True) as run:
        mlflow.set_tags({"candidate": "btyd", "target": "churn,margin"})
        mlflow.log_params({"btyd.model": "BG/NBD + Gamma-Gamma (MAP, pymc-marketing)",
                           "btyd.churn_score": "-expected purchases in the horizon"})
        mlflow.log_metrics({f"churn_{k}": v for k, v in churn.items() if np.isfinite(v)}
                           | {f"margin_{k}": v for k, v in margin.items() if np.isfinite(v)})
    step(f"btyd: churn roc_auc {churn['roc_auc']:.4f}, future revenue normalized gini "
         f"{margin['normalized_gini_revenue']:.4f}")
    return {"churn": Candidate("churn", "btyd", churn, run.info.run_id, ""),
            "margin": Candidate("margin", "btyd", margin, run.info.run_id, "")}


def _charts(target: str, name: str, tables: dict[str, pd.DataFrame], folder: Path) -> None:
    for key, table in tables.items():
        table.to_csv(folder / f"{key}.csv", index=False)
    if "gains" in tables:
        plots.gains_png(tables["gains"], f"{target} / {name}: gains", folder / "gains.png")
    if "qini" in tables:  # the share of the curve's end reached, against random
        plots.gains_png(tables["qini"], f"{target} / {name}: Qini curve", folder / "qini.png")
    if "calibration" in tables:
        plots.calibration_png(tables["calibration"], "mean_predicted", "observed_rate",
                              f"{target} / {name}: calibration", folder / "calibration.png")
    if "deciles" in tables:
        plots.calibration_png(tables["deciles"], "mean_predicted", "mean_actual",
                              f"{target} / {name}: deciles", folder / "deciles.png")


def _shap_summary(fitted: Fitted, X: pd.DataFrame, path: Path, rows: int = 2000) -> None:  # noqa: N803
    """The SHAP summary (beeswarm) on a sample of validation rows of what the reasons explain
    (``models.fitted.contributions``; upgrade: each row's best category)."""
    import matplotlib.pyplot as plt  # shap draws with pyplot
    import shap

    sample = X.sample(min(rows, len(X)), random_state=0)
    values, names = contributions(fitted.pipeline, sample)
    # text features as text (not coerced to NaN): shap draws them grey, without a colour scale
    shap.summary_plot(values[:, :-1], sample[names], feature_names=names, show=False,
                      max_display=20)
    plt.gcf().savefig(path, dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close("all")


def _selection(cfg: Config, target: TargetName) -> tuple[str, str | None]:
    """The validation metric that picks the challenger of ``target``, and the candidate that
    selection names instead, if any (the response model's ``what_if``: its observed Qini is
    the metric logged)."""
    key = getattr(cfg.models.selection, target)
    return ("qini", key) if key in LEARNERS else (key, None)


def _verdict(target: TargetName, best: Candidate, challenger: registry.Version,
             labels: list[str], sets: Sets, cfg: Config) -> Verdict:
    """The configured promotion rule: the challenger beats the champion on this validation
    snapshot by ``min_improvement`` on the selection metric (or there is no champion)."""
    rule = cfg.models.promotion
    key, named = _selection(cfg, target)
    new = f"challenger version {challenger.version}"
    champion = registry.alias_version(target, registry.CHAMPION)
    if champion is None:
        return Verdict(challenger, True, f"{target}: no champion yet; the {new} wins")
    old = f"champion version {champion.version}"
    if named:
        return Verdict(challenger, True, f"{target}: the {new} is the {named} learner that "
                       f"models.yaml selection names; it replaces the {old}")
    try:
        model, _ = load_model(champion)
    except InputError:
        return Verdict(challenger, False, f"{target}: the {old} was logged by an earlier release "
                       f"of klantwaarde, which this one cannot load, so the rule cannot compare "
                       f"it with the {new}; klantwaarde promote --target {target} promotes that "
                       "by hand")
    # as scoring calls it: on the feature table, which holds more columns than the signature
    try:
        out = model.predict(None, sets.valid)
    except Exception as exc:  # a champion of older features may not read this table
        return Verdict(challenger, False, f"{target}: the {old} cannot score this validation "
                       f"set ({exc}), so the rule cannot compare it with the {new}; klantwaarde "
                       f"promote --target {target} promotes that by hand")
    columns = output_columns(target, labels)
    if not set(columns) <= set(out.columns):
        return Verdict(challenger, False, f"{target}: the {old} predicts other categories than "
                       f"this validation set holds, so the rule cannot compare it with the {new}; "
                       f"klantwaarde promote --target {target} promotes that by hand")
    values = out[columns].to_numpy()
    held = evaluate(target, labels, sets.valid, values if target == "upgrade" else values[:, 0],
                    cfg)[0][key]
    wins = best.metrics[key] - _or_minus_inf(held) >= rule.min_improvement
    return Verdict(challenger, wins,
                   f"{target}: the {new} ({key} {best.metrics[key]:.4f}) "
                   f"{'beats' if wins else 'does not beat'} the {old} ({held:.4f}) by "
                   f"{rule.min_improvement}")
