"""Net margin per customer after activity-based cost-to-serve, computed inside the engine.

Net margin = revenue - discounts - cost of goods - cost-to-serve, over the window (as_of - window,
as_of]. Cost-to-serve is the sum of its drivers: orders, order lines, invoices, franco shipments,
visits, calls, complaints and interest on late payment, each a count times a rate from
costs.yaml. A driver whose table or column is absent is skipped and reported: its column is null,
never zero, and it is left out of the sum.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from klantwaarde.config import CostsConfig
from klantwaarde.contract import table_spec
from klantwaarde.sources import Source
from klantwaarde.typed import typed_table

# cost-to-serve drivers, in the order of the output columns
DRIVERS = ("orders", "order_lines", "invoices", "franco", "visits", "calls", "complaints",
           "late_payment")


@dataclass(frozen=True)
class CustomerMargins:
    """The per-customer expression and what it had to leave out."""

    table: ir.Table
    start: dt.date  # the window is (start, as_of]
    as_of: dt.date
    skipped: tuple[str, ...]  # "driver: why", for every part left out


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` earlier (the month's last day where that day does not exist)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def customer_margins(source: Source, as_of: dt.date, costs: CostsConfig,
                     window_months: int) -> CustomerMargins:
    """One row per customer with any activity in the window: revenue, costs and net margin."""
    start = months_before(as_of, window_months)
    tables = {name: typed_table(raw.table, table_spec(name), raw.decimal_comma)
              for name, raw in source.tables.items()}
    skipped: list[str] = []

    def window(name: str, date: str) -> ir.Table | None:
        if name not in tables:
            return None
        t = tables[name]
        return t.filter((t[date] > start) & (t[date] <= as_of), t.customer_id.notnull())

    parts = [_orders(window("orders", "order_date"), tables.get("products"), costs, skipped)]
    invoices = window("invoices", "invoice_date")
    interactions = window("interactions", "date")
    complaints = window("complaints", "opened_on")
    if invoices is None:
        skipped.append("invoices, late_payment: no invoices table")
    else:
        parts.append(_invoices(invoices, as_of, costs, skipped))
    if interactions is None:
        skipped.append("visits, calls: no interactions table")
    else:
        parts.append(_interactions(interactions, costs))
    if complaints is None:
        skipped.append("complaints: no complaints table")
    else:
        parts.append(complaints.group_by("customer_id").aggregate(
            n_complaints=ibis._.count()))

    ids = ibis.union(*[p.select("customer_id") for p in parts], distinct=True)
    joined = ids
    for part in parts:
        joined = joined.left_join(part, "customer_id").drop("customer_id_right")
    if "customers" in tables:
        attributes = [c for c in ("account_manager", "industry", "strategic")
                      if c in tables["customers"].columns]
        joined = joined.left_join(tables["customers"].select("customer_id", *attributes),
                                  "customer_id").drop("customer_id_right")
    has_discounts = "discount_amount" in tables["orders"].columns
    return CustomerMargins(_margins(joined, costs, window_months, has_discounts), start, as_of,
                           tuple(skipped))


def _orders(orders: ir.Table, products: ir.Table | None, costs: CostsConfig,
            skipped: list[str]) -> ir.Table:
    """Revenue, discounts, cost of goods, lines, orders and franco orders per customer."""
    cols = orders.columns
    discount = orders.discount_amount if "discount_amount" in cols else None
    if discount is None:
        skipped.append("discounts: no orders.discount_amount")
    net = orders.gross_amount - (discount.fill_null(0) if discount is not None else 0)
    cogs = [orders.cost_amount] if "cost_amount" in cols else []
    can_cost = (products is not None and "unit_cost" in products.columns
                and {"product_id", "quantity"} <= set(cols))
    if can_cost:
        unit = products.select("product_id", unit_cost_=products.unit_cost)
        orders = orders.left_join(unit, "product_id").drop("product_id_right")
        cogs.append(orders.quantity * orders.unit_cost_)
    cogs.append(orders.gross_amount * (1 - costs.default_gross_margin))
    if "cost_amount" not in cols and not can_cost:
        skipped.append(f"cost of goods: no orders.cost_amount or products.unit_cost; the default "
                       f"gross margin of {costs.default_gross_margin:.0%} is used")
    orders = orders.mutate(net_=net, cogs_=ibis.coalesce(*cogs) if len(cogs) > 1 else cogs[0])
    lines = orders.group_by("customer_id").aggregate(
        revenue=orders.gross_amount.sum(),
        discounts=(discount.sum() if discount is not None else ibis.null("float64")),
        cost_of_goods=orders.cogs_.sum(),
        n_lines=orders.count(),
    )
    if "order_id" in cols:
        per_order = orders.group_by(["customer_id", "order_id"]).aggregate(net=orders.net_.sum())
    else:
        skipped.append("orders: no orders.order_id; every line counts as an order")
        per_order = orders.select("customer_id", net=orders.net_)
    franco = (per_order.net > 0) & (per_order.net < costs.franco_threshold)
    counts = per_order.group_by("customer_id").aggregate(
        n_orders=per_order.count(), n_franco=franco.sum().cast("int64"))
    return lines.join(counts, "customer_id")


def _invoices(invoices: ir.Table, as_of: dt.date, costs: CostsConfig,
              skipped: list[str]) -> ir.Table:
    """Invoices per customer and the interest on the days each was paid late, up to as_of."""
    metrics = {"n_invoices": invoices.count()}
    if {"due_date", "paid_date"} <= set(invoices.columns):
        today = ibis.literal(as_of)
        settled = ibis.least(invoices.paid_date.fill_null(today), today)
        late = ibis.greatest(settled.delta(invoices.due_date, unit="day"), 0)
        interest = ibis.greatest(invoices.amount, 0) * late * (
            costs.late_payment_interest_per_year / 365)
        metrics["interest"] = interest.fill_null(0).sum()
    else:
        skipped.append("late_payment: invoices lack due_date or paid_date")
    return invoices.group_by("customer_id").aggregate(**metrics)


def _interactions(interactions: ir.Table, costs: CostsConfig) -> ir.Table:
    kind = interactions.kind.lower()
    return interactions.group_by("customer_id").aggregate(
        n_visits=kind.isin([k.lower() for k in costs.visit_kinds]).sum().cast("int64"),
        n_calls=kind.isin([k.lower() for k in costs.call_kinds]).sum().cast("int64"),
    )


def _margins(t: ir.Table, costs: CostsConfig, window_months: int,
             has_discounts: bool) -> ir.Table:
    """Driver costs, totals and the discount the turnover warrants, from the joined counts."""
    rates = {"orders": ("n_orders", costs.per_order),
             "order_lines": ("n_lines", costs.per_order_line),
             "invoices": ("n_invoices", costs.per_invoice),
             "franco": ("n_franco", costs.per_franco_shipment),
             "visits": ("n_visits", costs.per_visit),
             "calls": ("n_calls", costs.per_call),
             "complaints": ("n_complaints", costs.per_complaint),
             "late_payment": ("interest", 1.0)}
    drivers = {name: (t[column].fill_null(0) * rate).cast("float64")
               for name, (column, rate) in rates.items() if column in t.columns}
    counts = {column: (t[column].fill_null(0) if column in t.columns else ibis.null("int64"))
              for column, _ in rates.values() if column != "interest"}
    revenue = t.revenue.fill_null(0)
    discounts = t.discounts.fill_null(0) if has_discounts else ibis.null("float64")
    cost_of_goods = t.cost_of_goods.fill_null(0)
    cost_to_serve = sum(drivers.values(), ibis.literal(0.0))
    gross_margin = revenue - discounts.fill_null(0) - cost_of_goods
    net_margin = gross_margin - cost_to_serve
    yearly = revenue * (12 / window_months)
    warranted = ibis.cases(*[(yearly >= band.min_turnover, band.discount)
                             for band in reversed(costs.discount_bands)], else_=0.0)
    positive = revenue > 0
    extra = [c for c in ("account_manager", "industry", "strategic") if c in t.columns]
    return t.select(
        "customer_id", *extra,
        revenue=revenue, discounts=discounts, cost_of_goods=cost_of_goods,
        gross_margin=gross_margin,
        **{f"cost_{name}": drivers.get(name, ibis.null("float64")) for name in DRIVERS},
        cost_to_serve=cost_to_serve, net_margin=net_margin,
        net_margin_pct=ibis.ifelse(positive, net_margin / revenue, ibis.null("float64")),
        discount_pct=ibis.ifelse(positive, discounts / revenue, ibis.null("float64")),
        warranted_discount_pct=warranted,
        # GREATEST skips nulls: a missing discount stays null only when tested first
        stale_discount=ibis.ifelse(positive & discounts.notnull(),
                                   ibis.greatest(discounts - warranted * revenue, 0),
                                   ibis.null("float64")),
        **counts,
    ).order_by("customer_id")
