"""Features and labels for monthly snapshots: windows over the panels of the history.

Each panel row joins the snapshots whose window holds its period (``age`` = snapshot period -
row period: 0 is the month up to as_of, negative ages lie in the label horizon), and one grouped
pass per panel gives every window sum. What accumulates over all history (first order day,
categories bought so far, last visit) comes from the panel's running state at the latest period
on or before the snapshot. Nothing dated after as_of reaches a feature: its period is larger.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from klantwaarde.config import Config
from klantwaarde.features.catalog import FEATURES, Feature, attribute_feature, owns_feature
from klantwaarde.history import (
    EPOCH,
    History,
    euros,
    late_cent_days,
    per_customer,
    reminders_sent,
)
from klantwaarde.periods import date_of
from klantwaarde.profitability.margins import DRIVERS, late_payment_cost, margin_values
from klantwaarde.typed import ones

FEATURE_WINDOW = 12  # the longest feature window, in months


@dataclass(frozen=True)
class FeatureSet:
    """Features (and labels) per active customer and snapshot, as an engine expression."""

    table: ir.Table  # customer_id, as_of, the features, the labels
    features: tuple[Feature, ...]
    labels: tuple[str, ...]
    skipped: tuple[str, ...]  # "family (features): why", for every feature left out
    as_of: tuple[dt.date, ...]
    history: History  # the panels it was built from


def _snapshots(periods: list[int], anchor: int, horizon: int) -> ir.Table:
    dates = [date_of(p, anchor) for p in periods]
    ends = [date_of(p + horizon, anchor) for p in periods]
    return ibis.memtable({
        "snap": periods, "as_of": dates,
        "day": [(d - EPOCH).days for d in dates],
        "end_day": [(d - EPOCH).days for d in ends],
    }, schema={"snap": "int64", "as_of": "date", "day": "int64", "end_day": "int64"})


def _windows(panel: ir.Table, snaps: ir.Table, back: int, forward: int
             ) -> tuple[ir.Table, ir.IntegerValue]:
    """Panel rows joined to each snapshot whose window (back .. forward periods) holds them."""
    j = panel.join(snaps, [panel.p > snaps.snap - back, panel.p <= snaps.snap + forward])
    return j, j.snap - j.p


def _state(running: ir.Table, snaps: ir.Table) -> ir.Table:
    """The running state of each customer at each snapshot: its latest row on or before it."""
    j = running.join(snaps, [running.p <= snaps.snap, running.next_p > snaps.snap])
    return j.drop("p", "next_p", "as_of", "day", "end_day")


def _sum(value: ir.NumericColumn, where: ir.BooleanValue) -> ir.NumericScalar:
    return value.sum(where=where).fill_null(0)


def _eur(cents: ir.IntegerColumn, where: ir.BooleanValue) -> ir.FloatingScalar:
    """The sum of whole cents, in euros."""
    return euros(_sum(cents, where))


def build(history: History, cfg: Config, periods: list[int], labels: bool) -> FeatureSet:
    """The features at every snapshot period in ``periods`` and, with ``labels``, the labels."""
    lab = cfg.labels
    horizon = lab.horizon_months
    forward = horizon if labels else 0
    snaps = _snapshots(periods, history.anchor, horizon)
    present, skipped = _present(history)
    has = {f.family for f in present} | {f.name for f in present}

    t = _orders(history, snaps, cfg, forward)
    t = t.left_join(_state(history.order_state, snaps), ["customer_id", "snap"]) \
        .drop("customer_id_right", "snap_right")
    parts = [_invoices(history, snaps, cfg, forward, "payment" in has),
             _interactions(history, snaps, forward),
             _complaints(history, snaps, forward, "open_complaints" in has)]
    for part in parts:
        if part is not None:
            t = t.left_join(part, ["customer_id", "snap"]).drop("customer_id_right", "snap_right")
            t = t.mutate(**{c: t[c].fill_null(0) for c in part.columns
                            if c not in ("customer_id", "snap") and not c.startswith("last_")})
    if history.interaction_state is not None:
        t = t.left_join(_state(history.interaction_state, snaps), ["customer_id", "snap"]) \
            .drop("customer_id_right", "snap_right")
    if history.customers is not None:
        t = t.left_join(history.customers, "customer_id").drop("customer_id_right")

    if labels and history.categories:
        t = t.left_join(_adoptions(history, cfg, snaps), ["customer_id", "snap"]) \
            .drop("customer_id_right", "snap_right")
    t = _relative(t.cache(), history, has)
    values = _feature_values(t, history, cfg, has) | _margin_features(t, history, cfg, has)
    label_values = _label_values(t, history, cfg) if labels else {}
    out = t.select("customer_id", "as_of", **{f.name: values[f.name] for f in present},
                   **label_values)
    return FeatureSet(out.order_by(["as_of", "customer_id"]), present, tuple(label_values),
                      skipped, tuple(date_of(p, history.anchor) for p in periods), history)


def _present(history: History) -> tuple[tuple[Feature, ...], tuple[str, ...]]:
    """The declared features the source can give, and a notice per family it cannot."""
    has_category = "category_bit_" in history.lines.columns

    def missing(feature: Feature) -> list[str]:
        gaps = []
        for need in feature.requires:
            if need == "category":
                if not has_category:
                    gaps.append("orders.category (or orders.product_id with products.category)")
            elif need not in history.available:
                gaps.append(need)
        return gaps

    present: list[Feature] = []
    why: dict[str, tuple[list[str], set[str]]] = {}
    for feature in FEATURES:
        gaps = missing(feature)
        if gaps:
            names, needs = why.setdefault(feature.family, ([], set()))
            names.append(feature.name)
            needs.update(gaps)
        else:
            present.append(feature)
    if has_category:
        present.extend(owns_feature(name) for name in history.categories)
    if history.customers is not None:
        schema = history.customers.schema()
        for column in history.customers.columns:
            if column == "customer_id":
                continue
            dtype = schema[column]
            kind = ("boolean" if dtype.is_boolean() else "float64" if dtype.is_numeric()
                    else "int64" if dtype.is_date() else "string")
            present.append(attribute_feature(column, kind))
    else:
        why["static"] = (["industry", "region", "strategic", "..."], {"customers"})
    skipped = tuple(f"{family} ({', '.join(names)}): needs {', '.join(sorted(needs))}"
                    for family, (names, needs) in why.items())
    return tuple(present), skipped


def _orders(history: History, snaps: ir.Table, cfg: Config, forward: int) -> ir.Table:
    """Window sums of the orders panel per customer and snapshot; active customers only."""
    lab = cfg.labels
    back = max(FEATURE_WINDOW, lab.active_months, lab.horizon_months)
    j, age = _windows(history.orders, snaps, back, forward)

    def within(start: int, stop: int) -> ir.BooleanValue:
        return (age >= start) & (age < stop)

    m: dict[str, ir.Scalar] = {"active_lines": _sum(j.n_lines, within(0, lab.active_months))}
    for w in (3, 6, 12):
        m[f"orders_{w}"] = _sum(j.n_orders, within(0, w))
        m[f"revenue_{w}"] = _eur(j.revenue_cents, within(0, w))
    m |= {"revenue_3_6": _eur(j.revenue_cents, within(3, 6)),
          "revenue_6_12": _eur(j.revenue_cents, within(6, 12)),
          "orders_3_6": _sum(j.n_orders, within(3, 6)),
          "active_months": j.count(where=within(0, 12)),
          "lines_12": _sum(j.n_lines, within(0, 12)),
          "discounts_12": euros(j.discount_cents.sum(where=within(0, 12))),
          "cogs_12": _eur(j.cogs_cents, within(0, 12)),
          "franco_12": _sum(j.n_franco, within(0, 12)),
          "last_day": j.last_day.max(where=age >= 0),
          "bought_12": j.bought.bit_or(where=within(0, 12))}
    if forward:
        ahead = age < 0
        m |= {"revenue_prev": _eur(j.revenue_cents, within(0, lab.horizon_months)),
              "revenue_baseline": _eur(j.revenue_cents,
                                       within(0, lab.churn.dry_up_baseline_months)),
              "revenue_next": _eur(j.revenue_cents, ahead),
              "orders_next": _sum(j.n_orders, ahead),
              "lines_next": _sum(j.n_lines, ahead),
              "discounts_next": euros(j.discount_cents.sum(where=ahead)),
              "cogs_next": _eur(j.cogs_cents, ahead),
              "franco_next": _sum(j.n_franco, ahead)}
    t = j.group_by(["customer_id", "snap"]).aggregate(**m)
    t = t.filter(t.active_lines > 0)
    return t.join(snaps, "snap")


def _invoices(history: History, snaps: ir.Table, cfg: Config, forward: int, payment: bool
              ) -> ir.Table | None:
    """Invoices, the cost of late payment and payment behaviour per customer and snapshot."""
    v = history.invoices
    if v is None:
        return None
    j, age = _windows(v, snaps, FEATURE_WINDOW, forward)
    recent = age >= 0
    m: dict[str, ir.Scalar] = {"invoices_12": _sum(j.n_invoices, recent)}
    if forward:
        m["invoices_next"] = _sum(j.n_invoices, age < 0)
    if payment:
        paid = recent & (j.sp <= j.snap)
        overdue = recent & (j.dp <= j.snap) & (j.sp > j.snap)
        m |= {"paid_known": _sum(j.n_known, paid),
              "paid_late_days": _sum(j.late_days, paid),
              "paid_late": _sum(j.n_late, paid),
              "overdue_amount": _eur(j.positive_cents, overdue),
              "overdue_invoices": _sum(j.n_positive, overdue)}
        most = cfg.costs.max_reminders
        m |= {"late_amount_days_12": _eur(late_cent_days(j, j.snap, j.day), recent),
              "reminders_12": _sum(reminders_sent(j, j.snap, most), recent)}
        if forward:
            end = j.snap + forward
            m |= {"late_amount_days_next": _eur(late_cent_days(j, end, j.end_day), age < 0),
                  "reminders_next": _sum(reminders_sent(j, end, most), age < 0)}
    return j.group_by(["customer_id", "snap"]).aggregate(**m)


def _interactions(history: History, snaps: ir.Table, forward: int) -> ir.Table | None:
    i = history.interactions
    if i is None:
        return None
    j, age = _windows(i, snaps, FEATURE_WINDOW, forward)
    recent = age >= 0
    m = {"visits_12": _sum(j.n_visits, recent), "calls_12": _sum(j.n_calls, recent),
         "contacts_12": _sum(j.n_contacts, recent),
         "contacts_3": _sum(j.n_contacts, recent & (age < 3))}
    if forward:
        m |= {"visits_next": _sum(j.n_visits, age < 0), "calls_next": _sum(j.n_calls, age < 0),
              "contacts_first": _sum(j.n_visits + j.n_calls, age == -1)}
    return j.group_by(["customer_id", "snap"]).aggregate(**m)


def _complaints(history: History, snaps: ir.Table, forward: int, closing: bool
                ) -> ir.Table | None:
    c = history.complaints
    if c is None:
        return None
    j, age = _windows(c, snaps, FEATURE_WINDOW, forward)
    recent = age >= 0
    m = {"complaints_12": _sum(j.n_complaints, recent),
         "complaints_3": _sum(j.n_complaints, recent & (age < 3))}
    if forward:
        m["complaints_next"] = _sum(j.n_complaints, age < 0)
    if closing:
        m |= {"complaints_open": _sum(j.n_complaints, recent & (j.cp > j.snap)),
              "complaints_closed": _sum(j.n_complaints, recent & (j.cp <= j.snap)),
              "close_days": _sum(j.close_days, recent & (j.cp <= j.snap))}
    return j.group_by(["customer_id", "snap"]).aggregate(**m)


def _ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.NumericValue:
    """numerator / denominator, null where the denominator is 0."""
    return numerator / denominator.nullif(0)


def _trend(last: ir.NumericValue, before: ir.NumericValue) -> ir.NumericValue:
    return ibis.ifelse(before > 0, (last - before) / before, ibis.null("float64"))


def _feature_values(t: ir.Table, history: History, cfg: Config, has: set[str]
                    ) -> dict[str, ir.Value]:
    """The expression of every feature but the margin family and the relative ones."""
    first_day = t.first_day
    v: dict[str, ir.Value] = {
        "days_since_last_order": t.day - t.last_day,
        "tenure_days": t.day - first_day,
        **{f"orders_{w}m": t[f"orders_{w}"] for w in (3, 6, 12)},
        **{f"revenue_{w}m": t[f"revenue_{w}"] for w in (3, 6, 12)},
        "avg_order_value_12m": _ratio(t.revenue_12, t.orders_12),
        "active_months_12m": t.active_months,
        "lines_per_order_12m": _ratio(t.lines_12.cast("float64"), t.orders_12),
        "revenue_trend_3m": _trend(t.revenue_3, t.revenue_3_6),
        "revenue_trend_6m": _trend(t.revenue_6, t.revenue_6_12),
        "orders_trend_3m": _trend(t.orders_3.cast("float64"), t.orders_3_6),
    }
    if "payment" in has:
        v |= {"avg_days_late_12m": _ratio(t.paid_late_days.cast("float64"), t.paid_known),
              "share_paid_late_12m": _ratio(t.paid_late.cast("float64"), t.paid_known),
              "overdue_amount": t.overdue_amount, "overdue_invoices": t.overdue_invoices}
    if "attention" in has:
        for kind in ("visit", "call", "contact"):
            v[f"days_since_last_{kind}"] = t.day - ibis.coalesce(t[f"last_{kind}"], first_day)
        v |= {"visits_12m": t.visits_12, "calls_12m": t.calls_12,
              "contacts_3m": t.contacts_3, "contacts_12m": t.contacts_12}
    if "complaints" in has:
        v |= {"complaints_3m": t.complaints_3, "complaints_12m": t.complaints_12}
    if "open_complaints" in has:
        v |= {"open_complaints": t.complaints_open,
              "avg_days_to_close_12m": _ratio(t.close_days.cast("float64"),
                                              t.complaints_closed)}
    if "attention" in has:
        v["contacts_vs_norm_12m"] = t.contacts_vs_norm_12m
    if "breadth" in has:
        v["white_space_12m"] = t.white_space_12m
        v |= {"categories_12m": _bit_count(t.bought_12.fill_null(0), history),
              "categories_ever": _bit_count(t.bought_ever.fill_null(0), history)}
        v |= {f"owns__{name}": _bit(t.bought_ever.fill_null(0), i)
              for i, name in enumerate(history.categories)}
    if history.customers is not None:
        for column in history.customers.columns:
            if column == "acquired_on":
                age = t.as_of.delta(t.acquired_on, unit="day")
                v["account_age_days"] = ibis.ifelse(age >= 0, age, ibis.null("int64"))
            elif column != "customer_id":
                v[column] = t[column]
    return v


def _bit(mask: ir.IntegerValue, index: int) -> ir.BooleanValue:
    return (mask & (1 << index)) != 0


def _bit_count(mask: ir.IntegerValue, history: History) -> ir.IntegerValue:
    return sum((ones(_bit(mask, i)) for i in range(len(history.categories))),
               ibis.literal(0, "int64"))


def _margin_features(t: ir.Table, history: History, cfg: Config, has: set[str]
                     ) -> dict[str, ir.Value]:
    """The profitability module's figures over the 12 months up to as_of."""
    m = _margins(t, history, cfg, FEATURE_WINDOW, "12")
    out = {"gross_margin_12m": m["gross_margin"], "cost_to_serve_12m": m["cost_to_serve"],
           "net_margin_12m": m["net_margin"], "net_margin_pct_12m": m["net_margin_pct"],
           **{f"cost_{d}_12m": m[f"cost_{d}"] for d in DRIVERS}}
    if "discounts" in has:
        out |= {"discount_pct_12m": m["discount_pct"], "stale_discount_12m": m["stale_discount"]}
    return out


def _margins(t: ir.Table, history: History, cfg: Config, window: int, suffix: str
             ) -> dict[str, ir.Value]:
    """``profitability.margin_values`` of the sums ending in ``suffix`` ("12": up to as_of,
    "next": over the horizon)."""
    sums = {"revenue": "revenue", "discounts": "discounts", "cost_of_goods": "cogs",
            "n_orders": "orders", "n_lines": "lines", "n_franco": "franco",
            "n_invoices": "invoices", "n_visits": "visits", "n_calls": "calls",
            "n_complaints": "complaints"}
    given = {name: t[f"{column}_{suffix}"] for name, column in sums.items()
             if f"{column}_{suffix}" in t.columns}
    if f"late_amount_days_{suffix}" in t.columns:
        given["late_payment"] = late_payment_cost(t[f"late_amount_days_{suffix}"],
                                                  t[f"reminders_{suffix}"], cfg.costs)
    return margin_values(given, cfg.costs, window, history.has_discounts)


def _adoptions(history: History, cfg: Config, snaps: ir.Table) -> ir.Table:
    """Per customer and snapshot, the mask of categories adopted in the horizon: never bought
    up to as_of, and bought for at least the minimum amount in the horizon."""
    horizon = cfg.labels.horizon_months
    lines = history.lines.filter(history.lines.category_bit_ > 0)
    cat = per_customer(lines, ("category_bit_", "p"), amount=("sum", lines.gross_cents),
                        bought=("max", ones(lines.gross_cents > 0)))
    first = ibis.ifelse(cat.bought > 0, cat.p, ibis.null("int64")).min().over(
        group_by=["customer_id", "category_bit_"])
    cat = cat.mutate(first_p=first)
    # only the months up to the horizon after a first purchase can hold an adoption
    cat = cat.filter(cat.first_p.notnull(), cat.p < cat.first_p + horizon)
    j = cat.join(snaps, [cat.p > snaps.snap, cat.p <= snaps.snap + horizon,
                         cat.first_p > snaps.snap])
    amounts = j.group_by(["customer_id", "snap", "category_bit_"]).aggregate(
        amount=j.amount.sum())
    amounts = amounts.filter(amounts.amount >= cfg.labels.upgrade.min_category_amount * 100)
    return amounts.group_by(["customer_id", "snap"]).aggregate(
        adopted=amounts.category_bit_.bit_or())


def _label_values(t: ir.Table, history: History, cfg: Config) -> dict[str, ir.Value]:
    """Churn, future net margin, upgrade and the adoption of each category over the horizon;
    with interactions, the treatment of the response model: a visit or call in the first month
    after as_of."""
    lab = cfg.labels
    before, after = t.revenue_prev, t.revenue_next
    ordered = t.lines_next > 0
    churn = ~ordered
    if lab.churn.definition == "dry_up":
        usual = t.revenue_baseline * (lab.horizon_months / lab.churn.dry_up_baseline_months)
        churn = churn | (after < lab.churn.dry_up_fraction * usual)
    growth = (before > 0) & (after >= (1 + lab.upgrade.growth) * before)
    labels: dict[str, ir.Value] = {
        "label_churn": churn,
        "label_future_net_margin": _margins(t, history, cfg, lab.horizon_months,
                                            "next")["net_margin"],
        "label_future_revenue": after}
    if "contacts_first" in t.columns:
        labels["label_contacted"] = t.contacts_first > 0
    if not history.categories:
        return labels | {"label_upgrade": growth}
    adopted = t.adopted.fill_null(0)
    return labels | {"label_upgrade": (adopted != 0) | growth} | {
        f"label_adopt__{name}": _bit(adopted, i) for i, name in enumerate(history.categories)}


def _relative(t: ir.Table, history: History, has: set[str]) -> ir.Table:
    """The features that compare a customer with the other active customers at the same as_of:
    contacts against the norm for its size, and white space against its industry. Ranks and
    means are taken on narrow tables and joined back: a window over every feature column would
    carry them all through its sort."""
    if "attention" in has:
        n = t.select("customer_id", "snap", "contacts_12", revenue_=t.revenue_12)
        rank = ibis.percent_rank().over(group_by="snap", order_by=n.revenue_)
        n = n.mutate(size_band_=ibis.least((rank * 5).floor().cast("int64"), 4))
        norms = n.group_by(["snap", "size_band_"]).aggregate(norm_=n.contacts_12.mean())
        n = n.join(norms, ["snap", "size_band_"])
        n = n.select("customer_id", "snap", contacts_vs_norm_12m=_ratio(
            n.contacts_12.cast("float64"), n.norm_))
        t = t.join(n, ["customer_id", "snap"])
    if "breadth" in has:
        group = ["snap"] + (["industry"] if "industry" in t.columns else [])
        bits = [ones(_bit(t.bought_12.fill_null(0), i), "float64")
                for i in range(len(history.categories))]
        rates = t.group_by(group).aggregate(**{f"rate_{i}_": b.mean() for i, b in enumerate(bits)})
        # a null industry is a group of its own, as in a window partition
        t = t.join(rates, [t[g].identical_to(rates[g]) for g in group]) \
            .drop(*[f"{g}_right" for g in group])
        t = t.mutate(white_space_12m=sum(
            (t[f"rate_{i}_"] * (1 - ones(_bit(t.bought_12.fill_null(0), i), "float64"))
             for i in range(len(history.categories))), ibis.literal(0.0)))
    return t
