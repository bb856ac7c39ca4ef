"""``klantwaarde explain``: one scored customer in full, for the account manager who calls it.

Its scores, expected saved margin and lists come from the scores table (the month ``as_of``,
with the decisions taken when it was scored); its reasons from the scores table where the
row holds them, and otherwise computed on demand: the model versions stamped on the row (not
necessarily today's champions) explain the customer's features at ``as_of`` with the same
TreeSHAP code and words as ``klantwaarde score``. Its monthly history (revenue, margins, orders,
contacts, complaints) comes from the same monthly panels as the features.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import ibis
import numpy as np
import pandas as pd

from klantwaarde.config import Config
from klantwaarde.decisions import decided
from klantwaarde.errors import InputError
from klantwaarde.features.snapshots import build
from klantwaarde.history import History, build_history
from klantwaarde.models import registry
from klantwaarde.models.customer_model import model_input
from klantwaarde.models.targets import REQUIRED, TARGETS
from klantwaarde.periods import anchor_of, date_of, period_of
from klantwaarde.profitability.margins import margin_values
from klantwaarde.scoring.champions import check_inputs, load_version
from klantwaarde.scoring.reasons import peer_reasons, peer_shares, top_reasons
from klantwaarde.scoring.store import read_scores
from klantwaarde.sources import Source

Step = Callable[[str], None]
HISTORY_MONTHS = 12
MONEY = ["revenue", "discounts", "cost_of_goods"]  # the panel sums in euros
# the scores of a row, in the order they are shown; the keys of the JSON output
SCORES = ("churn_probability", "future_net_margin", "margin_at_risk", "upgrade_probability",
          "next_best_categories", "expected_uplift", "adoption_margin", "contact_effect",
          "expected_saved_margin", "cross_sell_margin", "retention", "cross_sell", "revenue",
          "net_margin", "tier", "category", "cell", "policy", "loss_driver", "remedy",
          "days_since_last_order", "in_sample")
STORED, COMPUTED = "scores table", "computed"


@dataclass(frozen=True)
class Month:
    """One month of a customer's history: the period that ends on ``month_end``. Late payment
    is left out of its cost-to-serve (it belongs to the months an invoice is overdue); a count
    whose table the source lacks is None."""

    month_end: dt.date
    revenue: float
    gross_margin: float  # revenue - discounts - cost of goods
    cost_to_serve: float
    net_margin: float
    orders: int
    order_lines: int
    visits: int | None
    calls: int | None
    contacts: int | None
    complaints: int | None


@dataclass(frozen=True)
class Explanation:
    as_of: dt.date
    customer_id: str
    account_manager: str | None
    versions: dict[str, int | None]  # the model version per target that scored the row
    # SCORES: a float, text, a list of text, a flag or None; retention is the sheet of the
    # month's decisions (at risk, held out, win-back or None), cross_sell whether it is on that
    # sheet
    scores: dict[str, object]
    reasons: dict[str, list[str]]  # churn, margin, upgrade: strongest first, in words
    reasons_from: dict[str, str]  # per target: STORED or COMPUTED
    history: list[Month]  # the last HISTORY_MONTHS months up to as_of, oldest first
    notices: list[str]

    def as_json(self) -> dict[str, object]:
        """Plain JSON values with stable keys: dates ISO, a missing number None."""
        return {"as_of": self.as_of.isoformat(), "customer_id": self.customer_id,
                "account_manager": self.account_manager, "versions": self.versions,
                "scores": {k: _plain(v) for k, v in self.scores.items()},
                "reasons": self.reasons, "reasons_from": self.reasons_from,
                "history": [{k: _plain(v) for k, v in asdict(m).items()} for m in self.history],
                "notices": self.notices}


def scored_row(cfg: Config, as_of: dt.date, customer: str) -> pd.Series:
    """The customer's row of the month ``as_of`` in the scores table's Parquet copies, with the
    month's decisions (``decisions.decided``) and its account manager as stored (None without
    one); an input error naming the months held, or the customer, how many were scored and the
    fix."""
    scores = read_scores(cfg.scoring.parquet, as_of)
    wanted = customer.strip()
    found = scores.index[scores.customer_id == wanted]
    if len(found):
        row = decided(scores, as_of, cfg).loc[found[0]]
        row["account_manager"] = scores.account_manager[found[0]]
        return row
    like = scores.customer_id[scores.customer_id.str.casefold() == wanted.casefold()]
    hint = f" Did you mean {like.iat[0]}?" if len(like) else ""
    example = scores.customer_id.iat[0] if len(scores) else "none"
    raise InputError(
        f"--customer {customer}: no customer {wanted!r} was scored at {as_of} "
        f"({len(scores):,} customers were, for example {example}).{hint} A customer is scored "
        f"when it has an order line in the {cfg.labels.active_months} months up to --as-of. "
        "Fix: check the id (as in the source's customer_id), or score a month in which this "
        "customer was active (klantwaarde score --source SRC --as-of DATE) and explain that "
        "month.")


def explain(row: pd.Series, source: Source, cfg: Config, step: Step = lambda _: None
            ) -> Explanation:
    """The explanation of the scores-table ``row`` (``scored_row``), its history and missing
    reasons from ``source``."""
    as_of: dt.date = row["as_of"]
    customer = str(row["customer_id"])
    notices: list[str] = []
    anchor = anchor_of(as_of)
    last = period_of(as_of, anchor)
    step(f"reading the history up to {as_of}")
    history = build_history(source, cfg, anchor, last)
    months = _history(history, customer, cfg, last)
    reasons, origin = _reasons(row, history, cfg, last, step, notices)
    scores = {name: _value(row[name]) for name in SCORES}
    if scores["contact_effect"] is None:
        notices.append("no contact_effect: the month was scored without a response champion, "
                       "so there is no expected saved margin")
    versions = {t: _version(row, t) for t in TARGETS}
    manager = _value(row["account_manager"])
    return Explanation(as_of, customer, None if manager is None else str(manager), versions,
                       scores, reasons, origin, months, notices)


def _reasons(row: pd.Series, history: History, cfg: Config, last: int, step: Step,
             notices: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Per target, the row's stored reasons, or where it holds none those the row's model
    version gives now."""
    reasons = {t: _texts(row[f"{t}_reasons"]) for t in REQUIRED}
    origin = dict.fromkeys(REQUIRED, STORED)
    missing = [t for t in REQUIRED if not reasons[t]]
    k, language = cfg.scoring.reasons, cfg.scoring.language
    if not missing or k == 0:
        if k == 0:
            notices.append("scoring.yaml reasons is 0: no reasons are given")
        return reasons, origin
    customer = str(row["customer_id"])
    step(f"building the features at {row['as_of']}")
    fs = build(history, cfg, [last], labels=False)
    frame = model_input(fs)
    at = np.flatnonzero(frame.customer_id.to_numpy() == customer)
    if len(at) == 0:
        raise InputError(
            f"--source: customer {customer} was scored at {row['as_of']}, but has no order line "
            f"in the {cfg.labels.active_months} months up to it in this source, so its reasons "
            "cannot be computed. Fix: pass the source the month was scored from.")
    declared = {f.name: f for f in fs.features}
    one = frame.iloc[at[:1]].reset_index(drop=True)
    registry.connect(cfg.models)
    for target in missing:
        number = _version(row, target)
        if number is None:
            notices.append(f"{target}: the row has no model version, so no reasons")
            continue
        step(f"{target}: explaining with version {number}")
        model = load_version(target, number)
        check_inputs({target: model}, frame, fs.skipped)
        found = model.model.contributions(one)
        computed: list[str] = []
        if found is None:
            notices.append(f"{model.version.name} version {number} is a "
                           f"{model.model.candidate}; reasons come from xgboost models only")
        else:
            values, names = found
            computed = top_reasons(target, values, names, one, declared, k, language)[0]
        if target == "upgrade":
            industry = one.industry.iat[0] if "industry" in one else None
            [peer] = peer_reasons([_texts(row["next_best_categories"])], [industry],
                                  peer_shares(fs.table), language)
            computed = [peer, *computed[:k - 1]] if peer else computed
        reasons[target], origin[target] = computed, COMPUTED
    return reasons, origin


def _history(history: History, customer: str, cfg: Config, last: int) -> list[Month]:
    """The customer's last HISTORY_MONTHS months up to period ``last``, from the panels."""
    first = last - HISTORY_MONTHS + 1

    def panel(table: ibis.Table | None, **sums: str) -> pd.DataFrame | None:
        if table is None:
            return None
        mine = table.filter((table.customer_id == customer) & (table.p >= first)
                            & (table.p <= last))
        grouped = mine.group_by("p").aggregate(**{n: mine[c].sum() for n, c in sums.items()})
        return grouped.to_pandas().set_index("p")

    orders = panel(history.orders, revenue="revenue_cents", discounts="discount_cents",
                   cost_of_goods="cogs_cents", n_orders="n_orders", n_lines="n_lines",
                   n_franco="n_franco")
    if orders is not None:  # whole cents, summed exactly, in euros
        orders[MONEY] = orders[MONEY].astype(float) / 100
    contacts = panel(history.interactions, n_visits="n_visits", n_calls="n_calls",
                     n_contacts="n_contacts")
    complaints = panel(history.complaints, n_complaints="n_complaints")
    invoices = panel(history.invoices, n_invoices="n_invoices")
    periods = pd.Index(range(first, last + 1), name="p")
    given: dict[str, pd.Series] = {}
    for part in (orders, contacts, complaints, invoices):
        if part is not None:
            given |= {c: part[c].astype(float).reindex(periods).fillna(0.0) for c in part}
    if not history.has_discounts:
        given.pop("discounts", None)
    values = pd.DataFrame(given, index=periods)
    table = ibis.memtable(values.reset_index())
    m = table.select("p", **margin_values({c: table[c] for c in values}, cfg.costs, 1,
                                          history.has_discounts)).to_pandas().set_index("p")
    m = m.reindex(periods)

    def count(column: str) -> pd.Series | None:
        return values[column].astype(int) if column in values else None

    counts = {name: count(column) for name, column in (
        ("visits", "n_visits"), ("calls", "n_calls"), ("contacts", "n_contacts"),
        ("complaints", "n_complaints"))}
    return [Month(date_of(p, history.anchor), float(m.revenue[p]), float(m.gross_margin[p]),
                  float(m.cost_to_serve[p]), float(m.net_margin[p]), int(values.n_orders[p]),
                  int(values.n_lines[p]),
                  *[None if c is None else int(c[p]) for c in counts.values()])
            for p in periods]


def _version(row: pd.Series, target: str) -> int | None:
    value = _value(row[f"{target}_version"])
    return None if value is None else int(value)  # type: ignore[call-overload]


def _texts(value: object) -> list[str]:
    """A list of text from the scores table: None or a missing value is no text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [str(v) for v in value]  # type: ignore[attr-defined]


def _value(value: object) -> object:
    """A scores-table cell as a plain Python value; a missing one as None."""
    if isinstance(value, np.ndarray):
        return [str(v) for v in value]
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain(value: object) -> object:
    """A value for JSON: a date as ISO text, a missing or infinite number as None."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
