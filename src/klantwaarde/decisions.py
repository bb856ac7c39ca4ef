"""Decisions: who each account manager contacts this month, within what that manager can do.

A pure function of one month's scores (one row per customer, the scores table's columns),
``lists.yaml`` and the capacities of the source's ``managers`` table. A manager's ``capacity`` is
the contacts (visits and calls) that manager can make in a month (``capacities``); retention and
cross-sell compete for it, each customer at most one contact:

- **at risk**: a retention contact, worth the expected saved margin (the ``contact_effect`` of
  the response model, at most the churn probability, x the predicted net margin of the coming
  12 months - the cost of the contact). Never loss accounts, never customers already gone.
  Where no response model scored the month, customers with a churn probability of at least
  ``at_risk_min_probability`` by margin at risk, all ranked before any cross-sell.
- **cross-sell**: an offer of the next-best categories, worth the share of the expected
  adoption margin that the offer brings about (``cross_sell_attributable`` x the adoption
  probability x the 12-month margin a buyer among the customer's peers makes on the category -
  the cost of the contact), when above ``cross_sell_min_margin``; never a customer already gone.
- One contact does both: it restores attention and makes the offer. Each manager's customers
  are ranked by what their contact is worth (the expected saved margin plus the attributable
  adoption margin, one contact's cost), and the top ones fill the capacity; a customer worth
  both is on the sheet of the larger part. Without a response model, the at-risk candidates
  come first, all on the at-risk sheet.
- **held out**: the control group. Going down each manager's ranking, a retention contact is
  held out with probability ``control_share``, drawn from (as_of, customer, ``control_seed``)
  alone; held-out customers are on no sheet (no contact at all) and take no capacity, so listed
  and held-out customers come from the same ranks.
- **win-back**: customers with no order for more than ``win_back_after_days`` that made a
  positive net margin over the last 12 months, by that lost margin, at most the capacity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from klantwaarde.config import Config, CostsConfig, ListsConfig
from klantwaarde.errors import InputError

LOSS_ACCOUNT = "loss account"
AT_RISK, HELD_OUT, WIN_BACK = "at risk", "held out", "win-back"
# the columns of the scores that the decisions read, and those they give
READS = ("customer_id", "account_manager", "days_since_last_order", "category", "net_margin",
         "churn_probability", "future_net_margin", "margin_at_risk", "contact_effect",
         "adoption_margin")
GIVES = ("retention", "cross_sell", "expected_saved_margin", "cross_sell_margin", "capacity")


def managers_of(column: pd.Series, unassigned: str) -> pd.Series:
    """Account managers, with ``unassigned`` for customers without one (null or blank)."""
    blank = column.astype(object).fillna("").astype(str).str.strip().eq("")
    return column.where(~blank, unassigned).astype(object)


def capacities(managers: pd.Series, cfg: ListsConfig,
               managers_capacity: Mapping[str, int] | None = None) -> pd.Series:
    """Each customer's manager's capacity: the manager's override in lists.yaml, else the
    manager's capacity in the source's managers table (``managers_capacity``: name → capacity,
    managers whose cell is empty left out), else ``capacity.default``. An override for a manager
    with no customer is an input error (a misspelt name would otherwise silently get the
    default); the managers table may name managers without customers this month."""
    check_overrides(set(managers), cfg)
    return _capacities(managers, cfg, managers_capacity)


def check_overrides(managers: Collection[str], cfg: ListsConfig) -> None:
    """Every manager with an override in lists.yaml is one of ``managers`` (all this month's);
    otherwise an input error."""
    unknown = sorted(set(cfg.capacity.managers) - set(managers))
    if unknown:
        known = ", ".join(sorted(managers)[:10])
        raise InputError(
            f"lists.yaml: key 'capacity.managers.{unknown[0]}': no scored customer has account "
            f"manager {unknown[0]!r} (managers this month: {known}). Fix the name, or remove "
            "the override.")


def _capacities(managers: pd.Series, cfg: ListsConfig,
                managers_capacity: Mapping[str, int] | None) -> pd.Series:
    return (managers.map(cfg.capacity.managers).fillna(managers.map(managers_capacity or {}))
            .fillna(cfg.capacity.default).astype(int))


def contact_cost(costs: CostsConfig, contact: str) -> float:
    """What one contact of the kind ``lists.contact`` costs (costs.yaml)."""
    return costs.per_visit if contact == "visit" else costs.per_call


def held_out_draw(as_of: dt.date, customers: pd.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per customer, from (as_of, customer, seed) alone."""
    def draw(customer: str) -> float:
        digest = hashlib.sha256(f"{as_of.isoformat()}|{customer}|{seed}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return np.array([draw(c) for c in customers], dtype=float)


def expected_saved_margin(scores: pd.DataFrame, costs: CostsConfig, horizon_months: int,
                          contact: str) -> pd.Series:
    """The contact's effect x the predicted net margin of the coming 12 months - its cost;
    null where there is no effect estimate. A contact cannot prevent more churn than the churn
    model predicts: the effect counts up to the churn probability."""
    effect = scores["contact_effect"] if "contact_effect" in scores else pd.Series(
        np.nan, index=scores.index)
    effect = effect.astype(float).clip(upper=scores.churn_probability.astype(float))
    yearly = scores.future_net_margin.clip(lower=0) * (12 / horizon_months)
    return effect * yearly - contact_cost(costs, contact)


def decide(scores: pd.DataFrame, as_of: dt.date, cfg: ListsConfig, costs: CostsConfig,
           horizon_months: int, managers_capacity: Mapping[str, int] | None = None
           ) -> pd.DataFrame:
    """Per customer (the index of ``scores``): ``retention`` (at risk, held out, win-back or
    none), ``cross_sell`` (on the cross-sell sheet), ``expected_saved_margin``,
    ``cross_sell_margin`` and the manager's ``capacity`` (see ``capacities``;
    ``managers_capacity`` holds those of the source's managers table, none without one)."""
    check_overrides(set(scores.account_manager), cfg)
    saved = expected_saved_margin(scores, costs, horizon_months, cfg.contact)
    return decide_managers(scores, as_of, cfg, costs, horizon_months, managers_capacity,
                           by_effect=bool(saved.notna().any()))


def decide_managers(scores: pd.DataFrame, as_of: dt.date, cfg: ListsConfig, costs: CostsConfig,
                    horizon_months: int, managers_capacity: Mapping[str, int] | None,
                    by_effect: bool) -> pd.DataFrame:
    """``decide`` for the customers of some of the managers (all of each one's), reading only
    the columns ``READS``. What spans all managers is given: ``by_effect``, whether any customer
    of the month has an expected saved margin (a response model scored it); the overrides
    are checked by the caller (``check_overrides``)."""
    managers = scores.account_manager
    capacity = _capacities(managers, cfg, managers_capacity)
    gone = scores.days_since_last_order.astype(float) > cfg.win_back_after_days
    loss = scores.category.eq(LOSS_ACCOUNT)
    saved = expected_saved_margin(scores, costs, horizon_months, cfg.contact)
    cost = contact_cost(costs, cfg.contact)
    offered = cfg.cross_sell_attributable * scores.adoption_margin.astype(float)
    cross = offered - cost
    if by_effect:
        keep = ~gone & ~loss & (saved > 0)
        worth = saved.where(keep)
    else:  # no response model scored the month: margin at risk, ahead of any cross-sell
        keep = ~gone & ~loss & (scores.churn_probability >= cfg.at_risk_min_probability)
        worth = scores.margin_at_risk.astype(float).where(keep)
    first = keep & (not by_effect)  # retention ranked first, and chosen over cross-sell
    offer = (~gone & (cross > cfg.cross_sell_min_margin)).fillna(False)
    retain = first | (keep & ~(offer & (cross > worth)))  # the sheet whose part is larger
    # one contact does both, for one cost: it restores attention and makes the offer
    value = worth.where(first, worth.where(keep, -cost) + offered.where(offer, 0))
    value = value.where(keep | offer)
    held = pd.Series(held_out_draw(as_of, scores.customer_id, cfg.control_seed)
                     < cfg.control_share, index=scores.index) & retain
    ranked = value.notna()
    order = _ranking(scores[ranked], value[ranked], first[ranked])
    kept = ~held[order]
    # the manager still had room when this rank came up: fewer listed before it than capacity
    room = kept.groupby(managers[order]).cumsum() - kept.astype(int) < capacity[order]
    listed = order[(room & kept).to_numpy()]
    retention = pd.Series(None, index=scores.index, dtype=object)
    retention[listed.intersection(retain[retain].index)] = AT_RISK
    retention[order[(room & ~kept).to_numpy()]] = HELD_OUT
    lost = scores.net_margin.astype(float)
    retention[_top(scores[gone & (lost > 0)], lost[gone & (lost > 0)], capacity)] = WIN_BACK
    return pd.DataFrame({"retention": retention,
                         "cross_sell": scores.index.isin(listed) & ~retain,
                         "expected_saved_margin": saved, "cross_sell_margin": cross,
                         "capacity": capacity}, index=scores.index)


def decided(scores: pd.DataFrame, as_of: dt.date, cfg: Config) -> pd.DataFrame:
    """A month of the scores table with its account managers (``managers_of``) and its
    decisions: those taken when the month was scored, or, for a month scored before klantwaarde
    stored them, those of ``decide`` with today's lists.yaml."""
    scores = scores.assign(account_manager=managers_of(scores.account_manager,
                                                       cfg.lists.unassigned))
    if "capacity" in scores and scores.capacity.notna().all():
        return scores
    fresh = decide(scores, as_of, cfg.lists, cfg.costs, cfg.labels.horizon_months)
    return scores.drop(columns=fresh.columns, errors="ignore").join(fresh)


def _ranking(rows: pd.DataFrame, value: pd.Series, ahead: pd.Series | bool = False
             ) -> pd.Index:
    """The index of ``rows`` by manager, then the rows ``ahead`` before the others, then
    ``value`` (highest first), ties by customer."""
    keyed = pd.DataFrame({"manager": rows.account_manager, "ahead": ahead, "value": value,
                          "customer": rows.customer_id})
    return keyed.sort_values(["manager", "ahead", "value", "customer"],
                             ascending=[True, False, False, True], kind="stable").index


def _top(rows: pd.DataFrame, value: pd.Series, capacity: pd.Series) -> pd.Index:
    """The index of each manager's highest ``value`` rows, as many as the manager's capacity."""
    order = _ranking(rows, value)
    rank = pd.Series(1, index=order).groupby(rows.account_manager[order]).cumsum()
    return order[(rank <= capacity[order]).to_numpy()]
