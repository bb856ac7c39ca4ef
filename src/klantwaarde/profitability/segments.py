"""Segments of the per-customer margins: the customer pyramid, the whale curve, account
qualification with its eight policies, and for each loss account its dominant cost driver and
remedy.

These work on the per-customer table once it has left the engine (one row per customer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from klantwaarde.config import CostsConfig, ProfitabilityConfig

INACTIVE = "inactive"

# (significant, profitable, strategic) -> policy
POLICIES = {
    (True, True, True): "keep and invest: a key account",
    (True, True, False): "keep: serve well at the current cost level",
    (True, False, True): "improve profitability: change the mix of service, delivery and price",
    (True, False, False): "improve profitability, or lower the service level",
    (False, True, True): "grow volume where the potential is large",
    (False, True, False): "serve efficiently: webshop and telesales, no field visits",
    (False, False, True): "make it profitable first, keep it for its strategic value",
    (False, False, False): "no, no, no: let the competitor have them unless a remedy closes "
                           "the gap",
}

REMEDIES = {
    "stale_discount": "realign the discount to today's turnover",
    "small_orders": "set a minimum order size or an order surcharge",
    "administration": "charge administration costs",
    "late_payment": "enforce payment terms",
    "visits": "replace field visits by telesales",
}


@dataclass(frozen=True)
class WhaleCurve:
    """Cumulative net margin over customers ranked from most to least profitable."""

    cumulative_share: np.ndarray  # of total net margin, after each customer
    peak: float  # highest point, as a share of total net margin
    profit_makers_share: float  # share of customers that together make all the profit
    loss_share: float  # share of customers with a negative net margin


@dataclass(frozen=True)
class Concentration:
    """Where revenue and profit sit among the customers with revenue: the top 20% of customers
    by revenue, and the tail of small customers that together make the last 20% of revenue."""

    top20_revenue_share: float  # share of revenue of the largest 20% of customers (rounded up)
    tail_customer_share: float  # share of customers in the tail
    tail_margin_pct: float  # the tail's net margin as a share of its revenue
    tail_cost_share: float | None  # the tail's share of all cost-to-serve (None: not known)


def concentration(customers: pd.DataFrame) -> Concentration:
    """``Concentration`` of a per-customer table with revenue, net_margin and, if known,
    cost_to_serve."""
    active = customers[customers.revenue > 0]
    if active.empty:
        return Concentration(float("nan"), float("nan"), float("nan"), None)
    smallest = active.sort_values("revenue", kind="stable")
    tail = smallest[smallest.revenue.cumsum() <= 0.2 * active.revenue.sum()]
    largest = active.revenue.sort_values(ascending=False, kind="stable")
    cost = (tail.cost_to_serve.sum() / active.cost_to_serve.sum()
            if "cost_to_serve" in active and active.cost_to_serve.sum() > 0 else None)
    return Concentration(
        float(largest.iloc[: -(-len(largest) // 5)].sum() / largest.sum()),
        len(tail) / len(active),
        float(tail.net_margin.sum() / tail.revenue.sum()) if len(tail) else float("nan"),
        None if cost is None else float(cost))


def pyramid_tiers(revenue: pd.Series, cfg: ProfitabilityConfig) -> pd.Series:
    """Tier per customer: ranked by revenue, a customer belongs to the first tier whose upper
    bound of cumulative revenue share lies above the share of the customers ranked before it."""
    active = revenue > 0
    ranked = revenue[active].sort_values(ascending=False, kind="stable")
    before = (ranked.cumsum() - ranked) / ranked.sum()
    bounds = np.array([t.revenue_share for t in cfg.pyramid])
    names = np.array([t.tier for t in cfg.pyramid])
    tiers = pd.Series(INACTIVE, index=revenue.index, dtype=object)
    tiers[ranked.index] = names[np.searchsorted(bounds, before.to_numpy(), side="right")]
    return tiers


def whale_curve(net_margin: pd.Series) -> WhaleCurve:
    ranked = np.sort(net_margin.to_numpy())[::-1]
    total = ranked.sum()
    cumulative = np.cumsum(ranked) / total if total > 0 else np.full(len(ranked), np.nan)
    makers = (np.argmax(np.cumsum(ranked) >= total) + 1) / len(ranked) if total > 0 else np.nan
    return WhaleCurve(cumulative, float(np.nanmax(cumulative)) if total > 0 else np.nan,
                      float(makers), float((ranked < 0).mean()))


def qualify(margins: pd.DataFrame, costs: CostsConfig, cfg: ProfitabilityConfig) -> pd.DataFrame:
    """Add tier, the three criteria, cell, policy, category, loss driver and remedy."""
    out = margins.copy()
    out["tier"] = pyramid_tiers(out.revenue, cfg)
    out["significant"] = out.tier.isin(cfg.significant_tiers)
    out["profitable"] = out.net_margin > 0
    strategic = out["strategic"] if "strategic" in out else pd.Series(False, index=out.index)
    out["strategic"] = strategic.fillna(False).astype(bool)
    code = (out.significant.to_numpy() * 4 + out.profitable.to_numpy() * 2
            + out.strategic.to_numpy())
    keys = sorted(POLICIES, key=lambda k: k[0] * 4 + k[1] * 2 + k[2])
    out["cell"] = np.array([_cell_name(*k) for k in keys], dtype=object)[code]
    out["policy"] = np.array([POLICIES[k] for k in keys], dtype=object)[code]
    out["category"] = np.select(
        [~out.profitable, out.significant & out.strategic, out.significant],
        ["loss account", "key account", "large account"], "small account")
    savings = remedy_savings(out, costs)
    loss = ~out.profitable
    best = savings.idxmax(axis=1).where(savings.max(axis=1) > 0)
    out["loss_driver"] = best.where(loss)
    out["remedy"] = pd.Series(None, index=out.index, dtype=object)
    gap = -out.net_margin
    single = loss & best.notna() & (savings.max(axis=1) >= gap)
    combined = loss & best.notna() & ~single & (savings.sum(axis=1) >= gap)
    out.loc[single, "remedy"] = best[single].map(REMEDIES)
    names = savings.columns.to_numpy()
    out.loc[combined, "remedy"] = [
        "; ".join(REMEDIES[names[i]] for i in np.argsort(-row) if row[i] > 0)
        for row in savings[combined].to_numpy()]
    let_go = loss & ~single & ~combined
    out.loc[let_go, "remedy"] = [f"let it go: the remedies close EUR {s:,.0f} of a EUR {g:,.0f} "
                                 "gap" for s, g in zip(savings[let_go].sum(axis=1), gap[let_go],
                                                       strict=True)]
    return out


def remedy_savings(margins: pd.DataFrame, costs: CostsConfig) -> pd.DataFrame:
    """What each remedy would save per customer (EUR over the window); 0 where it cannot."""

    def col(name: str) -> pd.Series:
        return margins[name].astype(float).fillna(0) if name in margins else 0.0

    return pd.DataFrame({
        "stale_discount": col("stale_discount"),
        "small_orders": col("cost_franco") + col("n_franco") * costs.per_order,
        "administration": col("cost_invoices"),
        "late_payment": col("cost_late_payment"),
        "visits": col("n_visits") * (costs.per_visit - costs.per_call),
    }, index=margins.index)


def _cell_name(significant: bool, profitable: bool, strategic: bool) -> str:
    return ", ".join([("" if significant else "not ") + "significant",
                      ("" if profitable else "not ") + "profitable",
                      ("" if strategic else "not ") + "strategic"])


def summary(qualified: pd.DataFrame, cfg: ProfitabilityConfig) -> pd.DataFrame:
    """Customers, revenue and net margin per pyramid tier, qualification cell and category."""
    frames = []
    for by, order in (("tier", [t.tier for t in cfg.pyramid] + [INACTIVE]),
                      ("cell", None), ("category", None)):
        grouped = qualified.groupby(by).agg(customers=("customer_id", "size"),
                                            revenue=("revenue", "sum"),
                                            net_margin=("net_margin", "sum"))
        if order:
            grouped = grouped.reindex([o for o in order if o in grouped.index])
        grouped.insert(0, "segment", by)
        frames.append(grouped.rename_axis("value").reset_index())
    result = pd.concat(frames, ignore_index=True)
    result["revenue_share"] = result.revenue / qualified.revenue.sum()
    result["customer_share"] = result.customers / len(qualified)
    return result
