"""Net margin per customer after activity-based cost-to-serve, computed inside the engine.

Net margin = revenue - discounts - cost of goods - cost-to-serve, over the window (as_of - window,
as_of]. Cost-to-serve is the sum of its drivers: orders, order lines, invoices, franco shipments,
visits, calls, complaints and late payment (interest and reminders), each a count
times a rate from costs.yaml. A driver whose table or column is absent is skipped and reported:
its column is null, never zero, and it is left out of the sum.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from klantwaarde.config import CostsConfig
from klantwaarde.contract import Kind, table_spec
from klantwaarde.periods import anchor_of, months_before, period_expr, period_of
from klantwaarde.sources import Source
from klantwaarde.typed import means_one_of, typed_column, typed_events, typed_table

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


def customer_margins(source: Source, as_of: dt.date, costs: CostsConfig,
                     window_months: int) -> CustomerMargins:
    """One row per customer with any activity in the window: revenue, costs and net margin."""
    start = months_before(as_of, window_months)
    skipped: list[str] = []

    def window(name: str, date: str) -> ir.Table | None:
        if name not in source.tables:
            return None
        raw = source.tables[name]
        t = typed_events(raw.table, table_spec(name), raw.formats)
        return t.filter((t[date] > start) & (t[date] <= as_of))

    products = (typed_table(source.tables["products"].table, table_spec("products"),
                            source.tables["products"].formats)
                if "products" in source.tables else None)
    parts = [_orders(window("orders", "order_date"), products, costs, skipped)]
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
        kind = interactions.kind
        parts.append(_per_customer(
            interactions,
            n_visits=means_one_of(kind, costs.visit_kinds).cast("int64"),
            n_calls=means_one_of(kind, costs.call_kinds).cast("int64")))
    if complaints is None:
        skipped.append("complaints: no complaints table")
    else:
        parts.append(_per_customer(complaints, count="n_complaints"))

    joined = parts[0]
    for part in parts[1:]:  # each part once: a union of their ids would compute them twice
        joined = joined.outer_join(part, "customer_id")
        joined = joined.mutate(customer_id=joined.customer_id.fill_null(
            joined.customer_id_right)).drop("customer_id_right")
    if "customers" in source.tables:
        raw = source.tables["customers"]
        customers = typed_table(raw.table, table_spec("customers"), raw.formats)
        attributes = [c for c in ("account_manager", "industry", "strategic")
                      if c in customers.columns]
        joined = joined.left_join(customers.select("customer_id", *attributes),
                                  "customer_id").drop("customer_id_right")
    has_discounts = "discount_amount" in source.tables["orders"].table.columns
    extra = [c for c in ("account_manager", "industry", "strategic") if c in joined.columns]
    table = margins(joined, costs, window_months, has_discounts, ("customer_id", *extra))
    return CustomerMargins(table.order_by("customer_id"), start, as_of, tuple(skipped))


def _per_customer(t: ir.Table, count: str | None = None, **sums: ir.Value) -> ir.Table:
    """Sums of ``sums`` (and the row count as ``count``) per customer."""
    metrics = {name: value.sum() for name, value in sums.items()}
    if count:
        metrics[count] = t.count()
    return t.group_by("customer_id").aggregate(**metrics)


def _orders(orders: ir.Table, products: ir.Table | None, costs: CostsConfig,
            skipped: list[str]) -> ir.Table:
    """Revenue, discounts, cost of goods, lines, orders and franco orders per customer."""
    cols = orders.columns
    discount = orders.discount_amount if "discount_amount" in cols else None
    if discount is None:
        skipped.append("discounts: no orders.discount_amount")
    can_cost = (products is not None and "unit_cost" in products.columns
                and {"product_id", "quantity"} <= set(cols))
    fallback = orders.gross_amount * (1 - costs.default_gross_margin)
    if "cost_amount" in cols:  # empty cost_amount lines get the default margin
        cogs = ibis.coalesce(orders.cost_amount, fallback)
    elif can_cost:
        unit = products.select(product_key_=products.product_id, unit_cost_=products.unit_cost)
        orders = orders.left_join(unit, typed_column(orders.product_id, Kind.ID)
                                  == unit.product_key_)
        cogs = ibis.coalesce(orders.quantity * orders.unit_cost_, fallback)
    else:
        skipped.append(f"cost of goods: no orders.cost_amount or products.unit_cost; the default "
                       f"gross margin of {costs.default_gross_margin:.0%} is used")
        cogs = fallback
    lines = orders.select(
        "customer_id", "order_date",
        order_key_=orders.order_id if "order_id" in cols else ibis.row_number(),
        gross=orders.gross_amount,
        discount=discount if discount is not None else ibis.null("float64"), cogs=cogs)
    if "order_id" not in cols:
        skipped.append("orders: no orders.order_id; every line counts as an order")
    # an order (a delivery): the lines that share customer, order_id and date
    per_order = lines.group_by(["customer_id", "order_key_", "order_date"]).aggregate(
        gross=lines.gross.sum(), discount=lines.discount.sum(), cogs=lines.cogs.sum(),
        n_lines=lines.count())
    net = (per_order.gross - per_order.discount.fill_null(0)).round(2)  # in cents: no float ties
    franco = (net > 0) & (net < costs.franco_threshold)
    return _per_customer(
        per_order, revenue=per_order.gross, discounts=per_order.discount,
        cost_of_goods=per_order.cogs, n_lines=per_order.n_lines, count="n_orders",
        n_franco=franco.cast("int64"))


def _invoices(invoices: ir.Table, as_of: dt.date, costs: CostsConfig,
              skipped: list[str]) -> ir.Table:
    """Invoices per customer and what their late payment cost up to as_of: interest on the
    amount for the days late and the reminders sent."""
    metrics = {}
    if {"due_date", "paid_date"} <= set(invoices.columns):
        today = ibis.literal(as_of)
        settled = ibis.least(invoices.paid_date.fill_null(today), today)
        late = ibis.greatest(settled.delta(invoices.due_date, unit="day"), 0)
        anchor = anchor_of(as_of)
        # the month ends (on as_of's grid) after the due date and before the payment
        first = period_expr(invoices.due_date + ibis.interval(days=1), anchor)
        last = ibis.least(period_expr(invoices.paid_date, anchor) - 1, period_of(as_of, anchor))
        sent = reminders(ibis.ifelse(invoices.amount > 0, 1, 0), first,
                         last.fill_null(period_of(as_of, anchor)), costs)
        metrics["late_payment"] = late_payment_cost(
            (ibis.greatest(invoices.amount, 0) * late).fill_null(0), sent.fill_null(0), costs)
    else:
        skipped.append("late_payment: invoices lack due_date or paid_date")
    return _per_customer(invoices, count="n_invoices", **metrics)


def reminders(invoices: ir.IntegerValue, first: ir.IntegerValue, last: ir.IntegerValue,
              costs: CostsConfig) -> ir.IntegerValue:
    """Reminders sent for ``invoices`` overdue at the ends of periods ``first`` to ``last``."""
    return invoices * ibis.least(ibis.greatest(last - first + 1, 0), costs.max_reminders)


def late_payment_cost(amount_days: ir.NumericValue, sent: ir.NumericValue,
                      costs: CostsConfig) -> ir.NumericValue:
    """The cost of late payment from amount x days late and the reminders sent."""
    return (amount_days * (costs.late_payment_interest_per_year / 365)
            + sent * costs.per_reminder)


def margins(t: ir.Table, costs: CostsConfig, window_months: int, has_discounts: bool,
            keys: tuple[str, ...]) -> ir.Table:
    """``margin_values`` of the table's columns of the same names; ``keys`` pass through."""
    return t.select(*keys, **margin_values({c: t[c] for c in MARGIN_INPUTS if c in t.columns},
                                           costs, window_months, has_discounts))


# the counts and sums margin_values reads; the first three are always given
MARGIN_INPUTS = ("revenue", "discounts", "cost_of_goods", "n_orders", "n_lines", "n_franco",
                 "n_invoices", "late_payment", "n_visits", "n_calls", "n_complaints")


def margin_values(given: dict[str, ir.Value], costs: CostsConfig, window_months: int,
                  has_discounts: bool) -> dict[str, ir.Value]:
    """Driver costs, totals and the discount the turnover warrants, from per-customer counts and
    sums over a window (``MARGIN_INPUTS``; a driver whose input is absent is null)."""
    rates = {"orders": ("n_orders", costs.per_order),
             "order_lines": ("n_lines", costs.per_order_line),
             "invoices": ("n_invoices", costs.per_invoice),
             "franco": ("n_franco", costs.per_franco_shipment),
             "visits": ("n_visits", costs.per_visit),
             "calls": ("n_calls", costs.per_call),
             "complaints": ("n_complaints", costs.per_complaint),
             "late_payment": ("late_payment", 1.0)}
    drivers = {name: (given[column].fill_null(0) * rate).cast("float64")
               for name, (column, rate) in rates.items() if column in given}
    counts = {column: (given[column].fill_null(0) if column in given else ibis.null("int64"))
              for column, _ in rates.values() if column != "late_payment"}
    revenue = given["revenue"].fill_null(0)
    discounts = given["discounts"].fill_null(0) if has_discounts else ibis.null("float64")
    cost_of_goods = given["cost_of_goods"].fill_null(0)
    cost_to_serve = sum(drivers.values(), ibis.literal(0.0))
    gross_margin = revenue - discounts.fill_null(0) - cost_of_goods
    net_margin = gross_margin - cost_to_serve
    yearly = revenue * (12 / window_months)
    warranted = ibis.cases(*[(yearly >= band.min_turnover, band.discount)
                             for band in reversed(costs.discount_bands)], else_=0.0)
    positive = revenue > 0
    return dict(
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
    )
