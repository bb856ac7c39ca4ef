"""``klantwaarde score``: every active customer at as_of scored by the champion models, with
reasons, next-best categories, margin at risk, the effect of a contact (with a response
champion) and its profitability segment; one month of the
scores table, and one MLflow run in the scoring experiment."""

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
import pyarrow as pa

from klantwaarde.config import Config
from klantwaarde.contract import table_spec
from klantwaarde.decisions import AT_RISK, decide, managers_of
from klantwaarde.engines import spark as spark_engine
from klantwaarde.errors import InputError
from klantwaarde.features import CategoryValue, FeatureSet, scoring_input
from klantwaarde.features.catalog import Feature
from klantwaarde.models import registry
from klantwaarde.models.customer_model import model_input
from klantwaarde.models.drift import bin_counts, psi
from klantwaarde.models.targets import NAMES, TargetName
from klantwaarde.profitability.margins import margins_of
from klantwaarde.profitability.report import report_of
from klantwaarde.scoring.champions import Champion, check_inputs, load_champions
from klantwaarde.scoring.reasons import peer_reasons, peer_shares, top_reasons
from klantwaarde.scoring.store import SCHEMA, check_unlocked, write_scores
from klantwaarde.sources import Source, is_spark
from klantwaarde.typed import typed_table

Step = Callable[[str], None]
SEGMENT = ["customer_id", "account_manager", "revenue", "net_margin", "tier", "category", "cell",
           "policy", "loss_driver", "remedy"]


@dataclass(frozen=True)
class ScoringResult:
    as_of: dt.date
    customers: int
    versions: dict[str, int]
    summary: dict[str, float]
    drift: dict[str, float]  # PSI per feature against the training data
    drifted: list[str]  # the features above scoring.psi_warning
    store: Path  # where the month went: the DuckDB file, or (Spark) its Parquet copy
    run_id: str
    notices: list[str]
    in_sample: bool  # a champion saw outcomes after as_of: trained at a later --as-of


@dataclass(frozen=True)
class Batch:
    """The work per customer, as functions of a batch of feature rows (``model_input``): the
    whole month on DuckDB and PostgreSQL, one partition at a time on Spark, which ships this
    object with the loaded champions to its executors."""

    as_of: dt.date
    in_sample: bool
    champions: dict[TargetName, Champion]
    value: CategoryValue
    declared: dict[str, Feature]
    shares: pd.DataFrame  # peer_shares of the month
    cfg: Config

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per row of ``frame``, the columns of ``ROWS``: the champions' predictions, margin at
        risk, next-best categories and the effect of a contact."""
        n = len(frame)
        columns: dict[str, object] = {"as_of": [self.as_of] * n,
                                      "customer_id": frame.customer_id.to_numpy(),
                                      "in_sample": [self.in_sample] * n,
                                      "days_since_last_order":
                                          frame.days_since_last_order.to_numpy()}
        predictions = {}
        for target, champion in self.champions.items():
            predictions[target] = champion.model.predict(None, frame)
            columns[f"{target}_version"] = [champion.version.version] * n
        churn = predictions["churn"].churn_probability.to_numpy()
        margin = predictions["margin"].future_net_margin.to_numpy()
        columns |= {"churn_probability": churn, "future_net_margin": margin,
                    "margin_at_risk": churn * np.maximum(margin, 0),
                    "upgrade_probability": predictions["upgrade"].upgrade_probability.to_numpy()}
        columns |= _next_best(predictions["upgrade"], frame, self.value,
                              self.cfg.models.next_best_k)
        columns |= _contact_effect(predictions.get("response"), n)
        return pd.DataFrame(columns, index=frame.index)[ROWS.names]

    def reasons(self, frame: pd.DataFrame, decided: pd.DataFrame) -> pd.DataFrame:
        """The reasons columns for the rows of ``frame``, whose decisions and next-best
        categories are the same rows of ``decided`` (see ``_explained``)."""
        return pd.DataFrame({f"{target}_reasons": _reasons(
            target, self.champions[target], frame, rows, decided.next_best_categories,
            self.declared, self.shares, self.cfg)
            for target, rows in _explained(decided, self.cfg).items()}, index=frame.index)

    def bin_counts(self, frame: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
        """Per champion and feature, the rows of ``frame`` in each bin of its drift profile."""
        return {(target, name): counts for target, champion in self.champions.items()
                for name, counts in bin_counts(champion.model.profile, frame).items()}


# the columns of Batch.rows; the segments, decisions and reasons complete SCHEMA
ROWS = pa.schema([SCHEMA.field(n) for n in (
    "as_of", "customer_id", "in_sample", "days_since_last_order", "churn_version",
    "margin_version", "upgrade_version", "response_version", "churn_probability",
    "future_net_margin", "margin_at_risk", "upgrade_probability", "next_best_categories",
    "expected_uplift", "adoption_margin", "contact_effect")])
SUMMARY = ("churn_probability", "future_net_margin", "upgrade_probability", "margin_at_risk",
           "expected_uplift", "contact_effect")


@dataclass(frozen=True)
class Month:
    """A scored month before it is written: what the run logs, and how to write it."""

    customers: int
    overview: pd.DataFrame  # per customer the columns SUMMARY
    listed: pd.DataFrame  # per customer retention and cross_sell (in another order)
    counts: dict[tuple[str, str], np.ndarray]  # Batch.bin_counts of the whole month
    write: Callable[[], Path]  # writes the month; where


def score(source: Source, as_of: dt.date, cfg: Config, step: Step = lambda _: None
          ) -> ScoringResult:
    """Score, explain, segment, write the month and log the run. On a Spark source the
    customers' rows stay in Spark (``klantwaarde.scoring.spark``); elsewhere they are scored in
    one batch here."""
    if not is_spark(source.location):  # Spark writes only the Parquet copy
        check_unlocked(cfg.scoring.store, cfg.scoring.parquet)
    registry.connect(cfg.models, f"{cfg.models.experiment}-scoring")
    step("resolving the champion models")
    champions = load_champions()
    in_sample_notice = _in_sample_notice(champions, as_of)
    in_sample = in_sample_notice is not None
    step(f"building the features at {as_of}")
    fs, value = scoring_input(source, as_of, cfg)
    on_spark = spark_engine.holds(fs.table)
    if on_spark:  # read by several Spark jobs: computed once, kept in Ibis' types
        fs = replace(fs, table=fs.table.cache().cast(fs.table.schema()))
    notices = [in_sample_notice] if in_sample_notice else []
    if "response" not in champions:
        notices.append(f"{NAMES['response']} has no champion, so the scores have no "
                       "contact_effect (train on a source with an interactions table, then "
                       "klantwaarde promote --target response)")
    batch = Batch(as_of, in_sample, champions, value, {f.name: f for f in fs.features},
                  peer_shares(fs.table), cfg)
    capacity = managers_capacity(source)
    if on_spark:
        from klantwaarde.scoring.spark import score_month
    else:
        score_month = _score_month
    month = score_month(fs, batch, lambda: _segments(fs, source, cfg), capacity, step)
    for target, rows in _explained(month.listed, cfg).items():
        champion = champions[target]
        step(f"{target}: reasons for {rows.sum():,} customers")
        if cfg.scoring.reasons and rows.any() and not champion.model.explains:
            notices.append(f"{champion.version.name} version {champion.version.version} is a "
                           f"{champion.model.candidate}; reasons come from xgboost champions "
                           "only, so its scores have none from the model.")
    drift = _drift(champions, month.counts, month.customers)
    drifted = sorted(n for n, v in drift.items() if v > cfg.scoring.psi_warning)
    versions = {t: c.version.version for t, c in champions.items()}
    summary = _summary(month.overview)
    with registry.start_run(f"score {as_of}") as run:
        written = month.write()
        _log(as_of, versions, summary, drift, drifted, in_sample, cfg)
    return ScoringResult(as_of, month.customers, versions, summary, drift, drifted, written,
                         run.info.run_id, notices, in_sample)


def _score_month(fs: FeatureSet, batch: Batch, segments: Callable[[], pd.DataFrame],
                 capacity: dict[str, int], step: Step) -> Month:
    """The month scored in one batch in this process; written to the scores table's DuckDB
    file and its Parquet copy."""
    cfg = batch.cfg
    frame = model_input(fs)
    if frame.empty:
        raise no_one_to_score(batch.as_of, cfg)
    check_inputs(batch.champions, frame, fs.skipped)
    scoring_steps(batch, len(frame), step)
    rows = batch.rows(frame)
    step("segmenting by profitability")
    scores = rows.merge(segments(), on="customer_id", how="left")
    step("choosing the lists within each manager's capacity")
    managers = managers_of(scores.account_manager, cfg.lists.unassigned)
    scores = scores.join(decide(scores.assign(account_manager=managers), batch.as_of, cfg.lists,
                                cfg.costs, cfg.labels.horizon_months, capacity))
    scores = scores.join(batch.reasons(frame, scores))
    table = pa.Table.from_pandas(scores[SCHEMA.names], schema=SCHEMA, preserve_index=False)

    def write() -> Path:
        step(f"writing {len(scores):,} scores at {batch.as_of} to {cfg.scoring.store}")
        write_scores(cfg.scoring.store, cfg.scoring.parquet, batch.as_of, table,
                     cfg.scoring.lock_wait_seconds, step)
        return cfg.scoring.store

    return Month(len(scores), scores[list(SUMMARY)], scores[["retention", "cross_sell"]],
                 batch.bin_counts(frame), write)


def no_one_to_score(as_of: dt.date, cfg: Config) -> InputError:
    return InputError(f"orders: no customer has an order line in the "
                      f"{cfg.labels.active_months} months up to {as_of}, so there is no one to "
                      "score. Pass an --as-of inside the data (klantwaarde validate prints "
                      "its dates).")


def scoring_steps(batch: Batch, customers: int, step: Step) -> None:
    for target, champion in batch.champions.items():
        step(f"{target}: scoring {customers:,} customers with version "
             f"{champion.version.version} ({champion.model.candidate})")


def _in_sample_notice(champions: dict[str, Champion], as_of: dt.date) -> str | None:
    """A notice when ``as_of`` is before the training --as-of of a champion: that model saw
    what happened after as_of, so its scores there are in-sample; else None. Scoring at the
    training --as-of itself predicts what the model has not seen: out-of-time."""
    seen = [f"{t} champion version {c.version.version} was trained on data up to "
            f"{c.trained_as_of}" for t, c in champions.items()
            if c.trained_as_of is not None and as_of < c.trained_as_of]
    if not seen:
        return None
    return (f"{'; '.join(seen)}; scores at {as_of} are in-sample: a champion saw what "
            f"happened after {as_of}, so klantwaarde evaluate of this month measures fit to the "
            "training data, not out-of-time performance. The month is flagged (column "
            "in_sample, MLflow tag in_sample=true); score a month at or after the training --as-of "
            "for out-of-time results.")


def _explained(scores: pd.DataFrame, cfg: Config) -> dict[str, np.ndarray]:
    """Per model, the rows whose reasons are computed: with ``reasons_for: listed``, the churn
    model explains the at-risk sheets and the upgrade model the cross-sell sheets."""
    if cfg.scoring.reasons_for == "all":
        every = np.ones(len(scores), bool)
        return {"churn": every, "margin": every, "upgrade": every}
    return {"churn": (scores.retention == AT_RISK).to_numpy(),
            "margin": np.zeros(len(scores), bool),
            "upgrade": scores.cross_sell.to_numpy(bool)}


def _reasons(target: str, champion: Champion, frame: pd.DataFrame, rows: np.ndarray,
             categories: pd.Series, declared: dict, shares: pd.DataFrame, cfg: Config
             ) -> list[list[str]]:
    """Up to ``scoring.reasons`` reasons for each of ``rows`` (a mask of ``frame``), none for
    the other rows. The upgrade reasons are led by why the first next-best category: its share
    among the customer's peers (``shares``)."""
    out: list[list[str]] = [[] for _ in range(len(frame))]
    if cfg.scoring.reasons == 0 or not rows.any():  # no TreeSHAP at all
        return out
    chosen = frame[rows]
    found = champion.model.contributions(chosen)
    if found is None:  # not an xgboost champion: score() says so
        texts: list[list[str]] = [[] for _ in range(len(chosen))]
    else:
        values, names = found
        texts = top_reasons(target, values, names, chosen, declared, cfg.scoring.reasons,
                            cfg.scoring.language)
    if target == "upgrade":
        industries = (list(chosen.industry) if "industry" in chosen
                      else [None] * len(chosen))
        peers = peer_reasons(list(categories[rows]), industries, shares, cfg.scoring.language)
        texts = [[peer, *model[:cfg.scoring.reasons - 1]] if peer else model
                 for peer, model in zip(peers, texts, strict=True)]
    for position, text in zip(np.flatnonzero(rows), texts, strict=True):
        out[position] = text
    return out


def _next_best(upgrade: pd.DataFrame, frame: pd.DataFrame, value: CategoryValue, k: int
               ) -> dict[str, object]:
    """The k categories a customer does not own yet that it is most likely to adopt; the
    expected uplift, adoption probability x what a buyer of the category spends on it over the
    horizon; and the expected adoption margin, adoption probability x the margin a buyer among
    the customer's peers (its industry) makes on it in 12 months."""
    categories = [c.removeprefix("adopt__") for c in upgrade.columns if c.startswith("adopt__")]
    if not categories:
        return {"next_best_categories": [[] for _ in range(len(frame))],
                "expected_uplift": np.full(len(frame), np.nan),
                "adoption_margin": np.full(len(frame), np.nan)}
    p = upgrade[[f"adopt__{c}" for c in categories]].to_numpy(float)
    owned = np.column_stack([frame[f"owns__{c}"].to_numpy(float) > 0 if f"owns__{c}" in frame
                             else np.zeros(len(frame), bool) for c in categories])
    p = np.where(owned, -np.inf, p)
    best = np.argsort(-p, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(p, best, axis=1)
    offered = chosen > -np.inf
    spend = np.array([value.spend.get(c, 0.0) for c in categories])
    industry = (frame.industry.astype(object).fillna("").astype(str) if "industry" in frame
                else pd.Series("", index=frame.index))
    peers = value.peer_margin
    margin = peers.reindex(index=industry.where(industry.isin(peers.index), ""),
                           columns=categories).fillna(0.0).to_numpy(float)
    names = np.array(categories, dtype=object)[best]
    return {"next_best_categories": [list(n[c]) for n, c in zip(names, offered, strict=True)],
            "expected_uplift": np.where(offered, chosen * spend[best], 0.0).sum(axis=1),
            "adoption_margin": np.where(
                offered, chosen * np.take_along_axis(margin, best, axis=1), 0.0).sum(axis=1)}


def _contact_effect(response: pd.DataFrame | None, rows: int) -> dict[str, object]:
    """The response champion's effect of a contact; null without one."""
    if response is not None:
        return {"contact_effect": response.contact_effect.to_numpy(float)}
    return {"contact_effect": np.full(rows, np.nan), "response_version": [None] * rows}


def managers_capacity(source: Source) -> dict[str, int]:
    """Each account manager's capacity in the source's managers table (validated: one row per
    manager, whole numbers); none without the table or its capacity column, and none for a
    manager whose cell is empty: those get lists.yaml's."""
    raw = source.tables.get("managers")
    if raw is None or "capacity" not in raw.table.columns:
        return {}
    table = typed_table(raw.table, table_spec("managers"), raw.formats)
    rows = table.filter(table.capacity.notnull()).select("account_manager", "capacity")
    return {row["account_manager"]: int(row["capacity"])
            for row in rows.to_pyarrow().to_pylist()}


def _segments(fs: FeatureSet, source: Source, cfg: Config) -> pd.DataFrame:
    """The profitability segments, from the history the features were built from: the
    customers' margins come to this process, as for klantwaarde profitability, since the
    pyramid ranks all customers."""
    margins = margins_of(fs.history, source, cfg, cfg.profitability.window_months)
    return report_of(margins, cfg).customers.reindex(columns=SEGMENT)


def _drift(champions: dict[str, Champion], counts: dict[tuple[str, str], np.ndarray],
           customers: int) -> dict[str, float]:
    """Per feature, the largest PSI against any champion's training data (``counts``:
    ``Batch.bin_counts`` of the month's ``customers`` rows)."""
    out: dict[str, float] = {}
    for target, champion in champions.items():
        mine = {name: c for (t, name), c in counts.items() if t == target}
        for name, value in psi(champion.model.profile, mine, customers).items():
            out[name] = max(value, out.get(name, 0.0))
    return out


def _summary(scores: pd.DataFrame) -> dict[str, float]:
    out: dict[str, float] = {"customers": float(len(scores))}
    for column in SUMMARY:
        values = scores[column].astype(float)
        out |= {f"{column}_mean": float(values.mean()),
                **{f"{column}_p{q}": float(values.quantile(q / 100)) for q in (10, 50, 90)}}
    out |= {"future_net_margin_total": float(scores.future_net_margin.sum()),
            "margin_at_risk_total": float(scores.margin_at_risk.sum())}
    return out


def _log(as_of: dt.date, versions: dict[str, int], summary: dict[str, float],
         drift: dict[str, float], drifted: list[str], in_sample: bool, cfg: Config) -> None:
    mlflow.set_tag("kind", "scoring")
    mlflow.set_tag("in_sample", str(in_sample).lower())
    mlflow.log_params({"as_of": as_of.isoformat(), "store": str(cfg.scoring.store),
                       **{f"{t}_version": v for t, v in versions.items()}})
    mlflow.log_metrics({k: v for k, v in summary.items() if np.isfinite(v)})
    mlflow.log_metrics({f"psi.{k}": v for k, v in drift.items()} | {"drifted": len(drifted)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "drift.json"
        path.write_text(json.dumps({"psi_warning": cfg.scoring.psi_warning,
                                    "drifted": drifted, "psi": drift}, indent=1))
        mlflow.log_artifact(str(path))
