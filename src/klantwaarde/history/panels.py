"""The customer history, aggregated once into monthly panels inside the engine.

Every table becomes one small panel keyed by customer and period on the grid of the snapshots
(see ``periods``), from the order lines costed once (``costing``). Profitability, features and
labels are then windows over these panels, so a training set over many monthly snapshots costs
little more than one snapshot. Where a figure needs more than the event's own period (an invoice
paid or a complaint closed later), the panel keeps that second period as a key, so that "paid by
as_of" stays exact to the day. Money is summed in whole cents: exact, on any number of threads.

Panels are computed once and kept in the engine: every snapshot query reads them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import ibis
import ibis.expr.types as ir

from klantwaarde.config import Config
from klantwaarde.contract import table_spec
from klantwaarde.history.costing import CostedLines, cents, costed_lines, costed_orders, events
from klantwaarde.periods import period_expr
from klantwaarde.sources import Source
from klantwaarde.typed import means_one_of, ones, typed_table

NEVER = 10**6  # the period of a date that is absent (never paid, never closed)
EPOCH = dt.date(2000, 1, 1)  # day numbers count from here


@dataclass(frozen=True)
class History:
    """The panels of one source in the periods after ``first`` (from the beginning: None) up to
    period ``last`` on the grid of ``anchor``."""

    anchor: int
    first: int | None
    last: int
    lines: ir.Table  # the costed order lines (``costing.costed_lines``)
    orders: ir.Table  # customer_id, p: sums of the period (cents), last order day, category bits
    invoices: ir.Table | None  # customer_id, p (issued), dp (due + 1 day), sp (paid)
    interactions: ir.Table | None  # customer_id, p: counts; state: last day of each kind
    complaints: ir.Table | None  # customer_id, p (opened), cp (closed)
    customers: ir.Table | None  # customer_id and the static attributes, typed
    categories: tuple[str, ...]  # bit i of a category mask is categories[i]; () without
    has_discounts: bool
    notes: tuple[str, ...]  # "part: why", for every part of the order costing left out
    available: frozenset[str]  # "table" and "table.column" present in the source

    @cached_property
    def order_state(self) -> ir.Table:
        """Per customer and period with orders: the first order day and the categories bought
        so far, and the customer's next period with orders (``next_p``); computed once, when
        first read."""
        orders = self.orders
        return _running(orders, first_day=("min", orders.first_day),
                        bought_ever=("bit_or", orders.bought)).cache()

    @cached_property
    def interaction_state(self) -> ir.Table | None:
        """Per customer and period with interactions: the last day of a visit, a call and any
        contact so far, and the next period with interactions (``next_p``); computed once."""
        i = self.interactions
        if i is None:
            return None
        return _running(i, last_visit=("max", i.last_visit), last_call=("max", i.last_call),
                        last_contact=("max", i.last_contact)).cache()


def day_number(day: ir.DateValue) -> ir.IntegerValue:
    """Days since EPOCH."""
    return day.delta(ibis.date(EPOCH), unit="day")


def build_history(source: Source, cfg: Config, anchor: int, last: int,
                  first: int | None = None) -> History:
    """Aggregate every table of ``source`` into its panel, dates after period ``first`` (from
    the beginning without) up to the end of ``last``."""
    available = frozenset(
        [name for name in source.tables]
        + [f"{name}.{c}" for name, raw in source.tables.items() for c in raw.table.columns])
    costed = costed_lines(source, cfg, anchor, last, first)
    return History(
        anchor=anchor, first=first, last=last, lines=costed.lines,
        orders=_orders_panel(costed, cfg, anchor),
        invoices=_invoices(source, anchor, last, first),
        interactions=_interactions(source, cfg, anchor, last, first),
        complaints=_complaints(source, anchor, last, first),
        customers=_customers(source, cfg),
        categories=costed.categories,
        has_discounts=costed.has_discounts,
        notes=costed.notes,
        available=available,
    )


def per_customer(t: ir.Table, keys: tuple[str, ...],
                  **metrics: tuple[str, ir.Value | None]) -> ir.Table:
    """Aggregate ``metrics`` ({name: (how, value)}, how: count (of rows), sum, max, min or
    bit_or) per customer and ``keys``, kept in the engine."""
    return t.group_by("customer_id", *keys).aggregate(
        **{name: t.count() if how == "count" else getattr(value, how)()
           for name, (how, value) in metrics.items()}).cache()


def _running(panel: ir.Table, **states: tuple[str, ir.Value]) -> ir.Table:
    """Per customer and period, ``states`` ({name: (how, value)}) accumulated over the periods up
    to it, and the customer's next period with a row (``next_p``; NEVER after the last)."""
    upto = ibis.cumulative_window(group_by="customer_id", order_by="p")
    return panel.select(
        "customer_id", "p",
        next_p=panel.p.lead().over(ibis.window(group_by="customer_id", order_by="p"))
        .fill_null(NEVER),
        **{name: getattr(value, how)().over(upto) for name, (how, value) in states.items()})


def _orders_panel(costed: CostedLines, cfg: Config, anchor: int) -> ir.Table:
    """Per customer and period: revenue, discounts and cost of goods in cents, lines, orders,
    franco orders, first and last order day, and the categories bought (a bit mask)."""
    orders = costed_orders(costed, cfg, anchor)
    day = day_number(orders.order_date)
    return per_customer(
        orders, ("p",), revenue_cents=("sum", orders.gross_cents),
        discount_cents=("sum", orders.discount_cents), cogs_cents=("sum", orders.cogs_cents),
        n_lines=("sum", orders.n_lines), n_orders=("count", None),
        n_franco=("sum", orders.franco), first_day=("min", day), last_day=("max", day),
        bought=("bit_or", orders.bit))


def _invoices(source: Source, anchor: int, last: int, first: int | None) -> ir.Table | None:
    """Per customer, period issued, period after the due date (dp) and period paid (sp): counts
    and amounts for the invoice cost, the cost of late payment and payment behaviour."""
    t = events(source, "invoices", "invoice_date", anchor, last, first)
    if t is None:
        return None
    if not {"due_date", "paid_date"} <= set(t.columns):
        return per_customer(t, ("p",), n_invoices=("count", None))
    due = day_number(t.due_date)
    paid = day_number(t.paid_date)
    positive = cents(ibis.greatest(t.amount, 0))
    late_days = ibis.greatest(paid - due, 0)  # null unless both dates are known
    t = t.mutate(dp=period_expr(t.due_date + ibis.interval(days=1), anchor).fill_null(NEVER),
                 sp=period_expr(t.paid_date, anchor).fill_null(NEVER))
    known = due.notnull() & paid.notnull()
    return per_customer(
        t, ("p", "dp", "sp"),
        n_invoices=("count", None),
        n_positive=("sum", ones(t.amount > 0)),
        positive_cents=("sum", positive),
        # amount x days late of the invoices once paid, and amount x due day for the unpaid
        positive_cent_days=("sum", (positive * late_days).fill_null(0)),
        positive_cent_due_day=("sum", (positive * due).fill_null(0)),
        n_known=("sum", ones(known)),
        late_days=("sum", late_days.fill_null(0)),
        n_late=("sum", ones(known & (paid > due))))


def late_cent_days(v: ir.Table, end: ir.IntegerValue, end_day: ir.IntegerValue
                   ) -> ir.IntegerValue:
    """Amount (cents) x days late up to period ``end`` of the invoices panel rows ``v``: the
    invoices paid by then to their payment, the others overdue by then to ``end_day``."""
    overdue = v.positive_cents * end_day - v.positive_cent_due_day
    return ibis.ifelse(v.sp <= end, v.positive_cent_days,
                       ibis.ifelse(v.dp <= end, overdue, ibis.literal(0, "int64")))


def reminders_sent(v: ir.Table, end: ir.IntegerValue, most: int) -> ir.IntegerValue:
    """Reminders sent up to period ``end`` for the invoices panel rows ``v``: one at the end of
    each period from the due date on, before the payment, at most ``most`` per invoice."""
    periods = ibis.least(v.sp - 1, end) - v.dp + 1
    return v.n_positive * ibis.least(ibis.greatest(periods, 0), most)


def _interactions(source: Source, cfg: Config, anchor: int, last: int, first: int | None
                  ) -> ir.Table | None:
    """Per customer and period: visits, calls and contacts, and the last day of each."""
    t = events(source, "interactions", "date", anchor, last, first)
    if t is None:
        return None
    visit = means_one_of(t.kind, cfg.costs.visit_kinds)
    call = means_one_of(t.kind, cfg.costs.call_kinds)
    day = day_number(t.date)
    return per_customer(
        t, ("p",), n_visits=("sum", ones(visit)), n_calls=("sum", ones(call)),
        n_contacts=("count", None),
        last_visit=("max", ibis.ifelse(visit, day, ibis.null("int64"))),
        last_call=("max", ibis.ifelse(call, day, ibis.null("int64"))),
        last_contact=("max", day))


def _complaints(source: Source, anchor: int, last: int, first: int | None) -> ir.Table | None:
    """Per customer, period opened and period closed (cp): counts and days to close."""
    t = events(source, "complaints", "opened_on", anchor, last, first)
    if t is None:
        return None
    if "closed_on" not in t.columns:
        return per_customer(t, ("p",), n_complaints=("count", None))
    t = t.mutate(cp=period_expr(t.closed_on, anchor).fill_null(NEVER))
    return per_customer(
        t, ("p", "cp"), n_complaints=("count", None),
        close_days=("sum", t.closed_on.delta(t.opened_on, unit="day").fill_null(0)))


def _customers(source: Source, cfg: Config) -> ir.Table | None:
    """The customers table's static attributes, typed once and kept in the engine: never the
    id's companions account_manager, and never a protected attribute."""
    if "customers" not in source.tables:
        return None
    raw = source.tables["customers"]
    t = typed_table(raw.table, table_spec("customers"), raw.formats)
    protected = {a.lower() for a in cfg.contract.protected_attributes}
    keep = [c for c in t.columns
            if c not in ("customer_id", "account_manager") and c.lower() not in protected]
    return t.select("customer_id", *keep).filter(t.customer_id.notnull()).cache()
