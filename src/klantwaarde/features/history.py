"""The customer history, aggregated once into monthly panels inside the engine.

Every table becomes one small panel keyed by customer and period on the grid of the snapshots
(see ``periods``). Features and labels for any snapshot are then windows over these panels, so a
training set over many monthly snapshots costs little more than one snapshot. Where a feature
needs more than the event's own period (an invoice paid or a complaint closed later), the panel
keeps that second period as a key, so that "paid by as_of" stays exact to the day.

Panels are computed once and kept in the engine: every snapshot query reads them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from klantwaarde.config import Config
from klantwaarde.contract import Kind, table_spec
from klantwaarde.errors import InputError
from klantwaarde.periods import date_of, period_expr
from klantwaarde.sources import Source
from klantwaarde.typed import means_one_of, typed_column, typed_events, typed_table

NEVER = 10**6  # the period of a date that is absent (never paid, never closed)
EPOCH = dt.date(2000, 1, 1)  # day numbers count from here
MAX_CATEGORIES = 63  # categories are bits of a 64-bit integer


@dataclass(frozen=True)
class History:
    """The panels of one source up to period ``last`` on the grid of ``anchor``."""

    anchor: int
    last: int
    lines: ir.Table  # the order lines: customer_id as given, p, category_ and bit_ (if any)
    orders: ir.Table  # customer_id, p: sums of the period, last order day, category bits
    order_state: ir.Table  # customer_id, p, next_p: first order day, categories bought so far
    invoices: ir.Table | None  # customer_id, p (issued), dp (due + 1 day), sp (paid)
    interactions: ir.Table | None  # customer_id, p: counts; state: last day of each kind
    complaints: ir.Table | None  # customer_id, p (opened), cp (closed)
    interaction_state: ir.Table | None  # customer_id, p, next_p: last day of each kind so far
    customers: ir.Table | None  # customer_id and the static attributes, typed
    categories: tuple[str, ...]  # bit i of a category mask is categories[i]; () without
    has_discounts: bool
    available: frozenset[str]  # "table" and "table.column" present in the source


def day_number(day: ir.DateValue) -> ir.IntegerValue:
    """Days since EPOCH."""
    return day.delta(ibis.date(EPOCH), unit="day")


def build_history(source: Source, cfg: Config, anchor: int, last: int) -> History:
    """Aggregate every table of ``source`` into its panel, dates up to the end of ``last``."""
    available = frozenset(
        [name for name in source.tables]
        + [f"{name}.{c}" for name, raw in source.tables.items() for c in raw.table.columns])
    lines, categories = _order_lines(source, cfg, anchor, last)
    orders = _orders_panel(lines, cfg, anchor, "order_id" in lines.columns)
    interactions = _interactions(source, cfg, anchor, last)
    return History(
        anchor=anchor, last=last, lines=lines, orders=orders,
        order_state=_running(orders, first_day=("min", orders.first_day),
                             bought_ever=("bit_or", orders.bought)).cache(),
        invoices=_invoices(source, anchor, last),
        interactions=interactions,
        interaction_state=None if interactions is None else _running(
            interactions, last_visit=("max", interactions.last_visit),
            last_call=("max", interactions.last_call),
            last_contact=("max", interactions.last_contact)).cache(),
        complaints=_complaints(source, anchor, last),
        customers=_customers(source, cfg),
        categories=categories,
        has_discounts="discount_amount" in lines.columns,
        available=available,
    )


def _events(source: Source, name: str, date: str, anchor: int, last: int) -> ir.Table | None:
    """The table typed for aggregation (``typed_events``) with its period ``p``, rows up to the
    end of period ``last``."""
    if name not in source.tables:
        return None
    raw = source.tables[name]
    t = typed_events(raw.table, table_spec(name), raw.formats)
    t = t.filter(t[date] <= date_of(last, anchor))  # a date filter reaches the file's row groups
    return t.mutate(p=period_expr(t[date], anchor))


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


def _with_products(source: Source, lines: ir.Table, needed: list[str]) -> ir.Table:
    """The order lines with the ``needed`` products columns (category, unit_cost) as
    ``<column>_p_``, through the trimmed product_id."""
    raw = source.tables["products"]
    items = typed_table(raw.table, table_spec("products"), raw.formats)
    items = items.select(product_key_=items.product_id, **{f"{c}_p_": items[c] for c in needed})
    return lines.left_join(items, typed_column(lines.product_id, Kind.ID)
                           == items.product_key_).drop("product_key_")


def _category_values(lines: ir.Table, category: ir.StringValue
                     ) -> list[tuple[str | None, str | None]]:
    """The distinct values of ``category`` on the lines that buy (gross > 0), with their typed
    (trimmed) form: categories are typed per distinct value, not per line."""
    values = lines.filter(lines.gross_amount > 0).select(raw_=category).distinct()
    found = values.mutate(typed_=typed_column(values.raw_, Kind.TEXT)).to_pyarrow()
    return list(zip(found.column("raw_").to_pylist(), found.column("typed_").to_pylist(),
                    strict=True))


def _order_lines(source: Source, cfg: Config, anchor: int, last: int
                 ) -> tuple[ir.Table, tuple[str, ...]]:
    """Order lines with their period, discount, cost of goods and category bit. A line's
    category is orders.category, else its product's category; products are joined only when
    some line needs them."""
    lines = _events(source, "orders", "order_date", anchor, last)
    assert lines is not None  # orders is required; validation runs before
    products = source.tables.get("products")
    linked = products is not None and "product_id" in lines.columns
    own = "category" in lines.columns
    found = _category_values(lines, lines.category) if own else []
    blank = [raw for raw, typed in found if typed is None]
    from_products = (linked and "category" in products.table.columns
                     and (not own or bool(blank)))
    costs_from_products = (linked and "unit_cost" in products.table.columns
                           and "cost_amount" not in lines.columns and "quantity" in lines.columns)
    product_columns = (["category"] if from_products else []) \
        + (["unit_cost"] if costs_from_products else [])
    if product_columns:
        lines = _with_products(source, lines, product_columns)
    fallback = lines.gross_amount * (1 - cfg.costs.default_gross_margin)
    if "cost_amount" in lines.columns:  # as in profitability: the default margin fills gaps
        cogs = ibis.coalesce(lines.cost_amount, fallback)
    elif costs_from_products:
        cogs = ibis.coalesce(lines.quantity * lines.unit_cost_p_, fallback)
    else:
        cogs = fallback
    lines = lines.mutate(
        cogs_=cogs,
        discount_=(lines.discount_amount if "discount_amount" in lines.columns
                   else ibis.null("float64")))
    if not own and not from_products:
        return lines.mutate(bit_=ibis.literal(0, "int64")), ()
    category = lines.category if own else lines.category_p_
    if own and from_products:
        missing = lines.category.isnull() | lines.category.isin([b for b in blank if b])
        category = ibis.ifelse(missing, lines.category_p_, lines.category)
    if from_products:
        found = _category_values(lines, category)
    categories = tuple(sorted({typed for _, typed in found if typed is not None}))
    if len(categories) > MAX_CATEGORIES:
        raise InputError(
            f"orders: {len(categories)} distinct product categories (for example "
            f"{', '.join(categories[:5])}); klantwaarde models cross-sell over at most "
            f"{MAX_CATEGORIES}. Fix: map products to broader categories in orders.category or "
            f"products.category.")
    index = {name: i for i, name in enumerate(categories)}
    bits = {raw: 1 << index[typed] for raw, typed in found if typed is not None}
    # a category seen only on returns or credit lines has no bit: it was never bought
    lines = lines.mutate(category_bit_=category.substitute(bits, else_=0).cast("int64")
                         if bits else ibis.literal(0, "int64"))
    bit = ibis.ifelse(lines.gross_amount > 0, lines.category_bit_, 0)
    return lines.mutate(bit_=bit.cast("int64")), categories


def _orders_panel(lines: ir.Table, cfg: Config, anchor: int, has_order_id: bool) -> ir.Table:
    """Per customer and period: revenue, discounts, cost of goods, lines, orders, orders below
    the franco threshold, first and last order day, and the categories bought (a bit mask)."""
    if has_order_id:  # an order is the lines that share customer, order_id and date
        orders = lines.group_by("customer_id", "order_id", "order_date").aggregate(
            gross=lines.gross_amount.sum(), discount=lines.discount_.sum(),
            cogs=lines.cogs_.sum(), n_lines=lines.count(), bit=lines.bit_.bit_or())
        orders = orders.mutate(p=period_expr(orders.order_date, anchor))
    else:  # each line is an order
        orders = lines.select("customer_id", "order_date", "p", gross=lines.gross_amount,
                              discount=lines.discount_, cogs=lines.cogs_,
                              n_lines=ibis.literal(1, "int64"), bit=lines.bit_)
    net = (orders.gross - orders.discount.fill_null(0)).round(2)  # in cents: no float ties
    franco = ((net > 0) & (net < cfg.costs.franco_threshold)).cast("int64")
    day = day_number(orders.order_date)
    return per_customer(
        orders, ("p",), revenue=("sum", orders.gross), discounts=("sum", orders.discount),
        cost_of_goods=("sum", orders.cogs), n_lines=("sum", orders.n_lines),
        n_orders=("count", None), n_franco=("sum", franco),
        first_day=("min", day), last_day=("max", day), bought=("bit_or", orders.bit))


def _invoices(source: Source, anchor: int, last: int) -> ir.Table | None:
    """Per customer, period issued, period after the due date (dp) and period paid (sp): counts
    and amounts for the invoice cost, the cost of late payment and payment behaviour."""
    t = _events(source, "invoices", "invoice_date", anchor, last)
    if t is None:
        return None
    if not {"due_date", "paid_date"} <= set(t.columns):
        return per_customer(t, ("p",), n_invoices=("count", None))
    due = day_number(t.due_date)
    paid = day_number(t.paid_date)
    positive = ibis.greatest(t.amount, 0)
    late_days = ibis.greatest(paid - due, 0)  # null unless both dates are known
    t = t.mutate(dp=period_expr(t.due_date + ibis.interval(days=1), anchor).fill_null(NEVER),
                 sp=period_expr(t.paid_date, anchor).fill_null(NEVER))
    known = due.notnull() & paid.notnull()
    return per_customer(
        t, ("p", "dp", "sp"),
        n_invoices=("count", None),
        n_positive=("sum", (t.amount > 0).cast("int64")),
        positive=("sum", positive),
        # amount x days late of the invoices once paid, and amount x due day for the unpaid
        positive_late_days=("sum", (positive * late_days).fill_null(0)),
        positive_due_day=("sum", (positive * due).fill_null(0)),
        n_known=("sum", known.cast("int64")),
        late_days=("sum", late_days.fill_null(0)),
        n_late=("sum", (known & (paid > due)).cast("int64")))


def _interactions(source: Source, cfg: Config, anchor: int, last: int) -> ir.Table | None:
    """Per customer and period: visits, calls and contacts, and the last day of each."""
    t = _events(source, "interactions", "date", anchor, last)
    if t is None:
        return None
    visit = means_one_of(t.kind, cfg.costs.visit_kinds)
    call = means_one_of(t.kind, cfg.costs.call_kinds)
    day = day_number(t.date)
    return per_customer(
        t, ("p",), n_visits=("sum", visit.cast("int64")), n_calls=("sum", call.cast("int64")),
        n_contacts=("count", None),
        last_visit=("max", ibis.ifelse(visit, day, ibis.null("int64"))),
        last_call=("max", ibis.ifelse(call, day, ibis.null("int64"))),
        last_contact=("max", day))


def _complaints(source: Source, anchor: int, last: int) -> ir.Table | None:
    """Per customer, period opened and period closed (cp): counts and days to close."""
    t = _events(source, "complaints", "opened_on", anchor, last)
    if t is None:
        return None
    if "closed_on" not in t.columns:
        return per_customer(t, ("p",), n_complaints=("count", None))
    t = t.mutate(cp=period_expr(t.closed_on, anchor).fill_null(NEVER))
    return per_customer(
        t, ("p", "cp"), n_complaints=("count", None),
        close_days=("sum", t.closed_on.delta(t.opened_on, unit="day").fill_null(0)))


def _customers(source: Source, cfg: Config) -> ir.Table | None:
    """The customers table's static attributes: never the id's companions account_manager, and
    never a protected attribute."""
    if "customers" not in source.tables:
        return None
    raw = source.tables["customers"]
    t = typed_table(raw.table, table_spec("customers"), raw.formats)
    protected = {a.lower() for a in cfg.contract.protected_attributes}
    keep = [c for c in t.columns
            if c not in ("customer_id", "account_manager") and c.lower() not in protected]
    return t.select("customer_id", *keep).filter(t.customer_id.notnull())
