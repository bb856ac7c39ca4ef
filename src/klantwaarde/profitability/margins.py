"""Net margin per customer after activity-based cost-to-serve, as windows over the history.

Net margin = revenue - discounts - cost of goods - cost-to-serve, over the window (as_of - window,
as_of]. Cost-to-serve is the sum of its drivers: orders, order lines, invoices, franco shipments,
visits, calls, complaints and late payment (interest and reminders), each a count
times a rate from costs.yaml. A driver whose table or column is absent is skipped and reported:
its column is null, never zero, and it is left out of the sum. The sums come from the monthly
panels of the history (``klantwaarde.history``), the same ones the features read: the net margin
of a report and the one a model learns from are one number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from klantwaarde.config import Config, CostsConfig
from klantwaarde.contract import table_spec
from klantwaarde.history import (
    EPOCH,
    History,
    build_history,
    euros,
    late_cent_days,
    reminders_sent,
)
from klantwaarde.periods import anchor_of, date_of, months_before, period_of
from klantwaarde.sources import Source
from klantwaarde.typed import typed_table

# cost-to-serve drivers, in the order of the output columns
DRIVERS = ("orders", "order_lines", "invoices", "franco", "visits", "calls", "complaints",
           "late_payment")
ATTRIBUTES = ("account_manager", "industry", "strategic")  # from the customers table


@dataclass(frozen=True)
class CustomerMargins:
    """The per-customer expression and what it had to leave out."""

    table: ir.Table
    start: dt.date  # the window is (start, as_of]
    as_of: dt.date
    skipped: tuple[str, ...]  # "driver: why", for every part left out


def customer_margins(source: Source, as_of: dt.date, cfg: Config,
                     window_months: int) -> CustomerMargins:
    """One row per customer with any activity in the window: revenue, costs and net margin."""
    anchor = anchor_of(as_of)
    last = period_of(as_of, anchor)
    history = build_history(source, cfg, anchor, last, last - window_months)
    return margins_of(history, source, cfg, window_months)


def margins_of(history: History, source: Source, cfg: Config,
               window_months: int) -> CustomerMargins:
    """``customer_margins`` over the last ``window_months`` periods of ``history`` (up to its
    last period), with the customers table's account manager, industry and strategic flag."""
    last = history.last
    as_of = date_of(last, history.anchor)
    skipped = list(history.notes)
    joined = window_sums(history, cfg.costs, last, window_months)
    if history.invoices is None:
        skipped.append("invoices, late_payment: no invoices table")
    elif "sp" not in history.invoices.columns:
        skipped.append("late_payment: invoices lack due_date or paid_date")
    if history.interactions is None:
        skipped.append("visits, calls: no interactions table")
    if history.complaints is None:
        skipped.append("complaints: no complaints table")
    if "customers" in source.tables:
        raw = source.tables["customers"]
        customers = typed_table(raw.table, table_spec("customers"), raw.formats)
        attributes = [c for c in ATTRIBUTES if c in customers.columns]
        joined = joined.left_join(customers.select("customer_id", *attributes),
                                  "customer_id").drop("customer_id_right")
    extra = [c for c in ATTRIBUTES if c in joined.columns]
    table = margins(joined, cfg.costs, window_months, history.has_discounts,
                    ("customer_id", *extra))
    return CustomerMargins(table.order_by("customer_id"), months_before(as_of, window_months),
                           as_of, tuple(skipped))


def window_sums(history: History, costs: CostsConfig, last: int, window_months: int
                ) -> ir.Table:
    """Per customer with any activity in the periods ``last - window_months + 1 .. last``: the
    ``MARGIN_INPUTS`` the history gives, money in euros."""
    first = last - window_months

    def inside(panel: ir.Table) -> ir.Table:
        return panel.filter((panel.p > first) & (panel.p <= last))

    o = inside(history.orders)
    parts = [o.group_by("customer_id").aggregate(
        revenue=euros(o.revenue_cents.sum()), discounts=euros(o.discount_cents.sum()),
        cost_of_goods=euros(o.cogs_cents.sum()), n_orders=o.n_orders.sum(),
        n_lines=o.n_lines.sum(), n_franco=o.n_franco.sum())]
    if history.invoices is not None:
        v = inside(history.invoices)
        sums = {"n_invoices": v.n_invoices.sum()}
        if "sp" in v.columns:
            end_day = (date_of(last, history.anchor) - EPOCH).days
            sums["late_payment"] = late_payment_cost(
                euros(late_cent_days(v, last, end_day).sum()),
                reminders_sent(v, last, costs.max_reminders).sum(), costs)
        parts.append(v.group_by("customer_id").aggregate(**sums))
    if history.interactions is not None:
        i = inside(history.interactions)
        parts.append(i.group_by("customer_id").aggregate(n_visits=i.n_visits.sum(),
                                                         n_calls=i.n_calls.sum()))
    if history.complaints is not None:
        c = inside(history.complaints)
        parts.append(c.group_by("customer_id").aggregate(n_complaints=c.n_complaints.sum()))
    joined = parts[0]
    for part in parts[1:]:  # each part once: a union of their ids would compute them twice
        joined = joined.outer_join(part, "customer_id")
        joined = joined.mutate(customer_id=joined.customer_id.fill_null(
            joined.customer_id_right)).drop("customer_id_right")
    return joined


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
