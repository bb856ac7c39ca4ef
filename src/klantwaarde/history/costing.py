"""Order lines costed once: the one costing that the profitability figures and every feature read.

A line's amounts become whole cents (``gross_cents``, ``discount_cents``, ``cogs_cents``), so that
every sum over them is exact and the same whatever order the engine adds them in, on any number
of threads. Cost of goods is ``orders.cost_amount``, else quantity x ``products.unit_cost``, else
the gross amount at the default gross margin (also where a line's own cost is empty). An order is
the lines that share customer, order_id and date (each line without order_id); an order whose
net amount lies below the franco threshold is a franco shipment.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from klantwaarde.config import Config
from klantwaarde.contract import Kind, table_spec
from klantwaarde.errors import InputError
from klantwaarde.periods import date_of, period_expr
from klantwaarde.sources import Source
from klantwaarde.typed import ones, typed_column, typed_events, typed_table

MAX_CATEGORIES = 63  # categories are bits of a 64-bit integer


def cents(amount: ir.NumericValue) -> ir.IntegerValue:
    """An amount in euros as whole cents."""
    return (amount * 100).round().cast("int64")


def euros(amount_cents: ir.NumericValue) -> ir.FloatingValue:
    """Whole cents (or cents x days) as euros."""
    return amount_cents.cast("float64") / 100


@dataclass(frozen=True)
class CostedLines:
    """The costed order lines and what the source lacked for them."""

    lines: ir.Table  # customer_id, order_date, p, order_id (if given), the cents, category bits
    categories: tuple[str, ...]  # bit i of a category mask is categories[i]; () without
    has_discounts: bool
    notes: tuple[str, ...]  # "part: why", for every part of the costing left out


def events(source: Source, name: str, date: str, anchor: int, last: int,
           first: int | None = None) -> ir.Table | None:
    """The table typed for aggregation (``typed_events``) with its period ``p``, dates in the
    periods after ``first`` (from the beginning without) up to the end of ``last``."""
    if name not in source.tables:
        return None
    raw = source.tables[name]
    t = typed_events(raw.table, table_spec(name), raw.formats)
    t = t.filter(t[date] <= date_of(last, anchor))  # a date filter reaches the file's row groups
    if first is not None:
        t = t.filter(t[date] > date_of(first, anchor))
    return t.mutate(p=period_expr(t[date], anchor))


def costed_lines(source: Source, cfg: Config, anchor: int, last: int,
                 first: int | None = None) -> CostedLines:
    """Order lines (dated after period ``first`` up to the end of ``last``) with their period,
    amounts in cents and category bit. A line's category is orders.category, else its product's
    category; products are joined only when some line needs them."""
    lines = events(source, "orders", "order_date", anchor, last, first)
    assert lines is not None  # orders is required; validation runs before
    notes = []
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
    has_discounts = "discount_amount" in lines.columns
    if not has_discounts:
        notes.append("discounts: no orders.discount_amount")
    fallback = lines.gross_amount * (1 - cfg.costs.default_gross_margin)
    if "cost_amount" in lines.columns:
        cogs = ibis.coalesce(lines.cost_amount, fallback)
    elif costs_from_products:
        cogs = ibis.coalesce(lines.quantity * lines.unit_cost_p_, fallback)
    else:
        notes.append(f"cost of goods: no orders.cost_amount or products.unit_cost; the default "
                     f"gross margin of {cfg.costs.default_gross_margin:.0%} is used")
        cogs = fallback
    if "order_id" not in lines.columns:
        notes.append("orders: no orders.order_id; every line counts as an order")
    lines = lines.mutate(
        gross_cents=cents(lines.gross_amount), cogs_cents=cents(cogs),
        discount_cents=cents(lines.discount_amount) if has_discounts
        else ibis.null("int64"))
    categories: tuple[str, ...] = ()
    if own or from_products:
        category = lines.category if own else lines.category_p_
        if own and from_products:
            missing = lines.category.isnull() | lines.category.isin([b for b in blank if b])
            category = ibis.ifelse(missing, lines.category_p_, lines.category)
        if from_products:
            found = _category_values(lines, category)
        categories = _categories(found)
        index = {name: i for i, name in enumerate(categories)}
        bits = {raw: 1 << index[typed] for raw, typed in found if typed is not None}
        # a category seen only on returns or credit lines has no bit: it was never bought
        lines = lines.mutate(category_bit_=category.substitute(bits, else_=0).cast("int64")
                             if bits else ibis.literal(0, "int64"))
        bit = ibis.ifelse(lines.gross_cents > 0, lines.category_bit_, 0)
    else:
        bit = ibis.literal(0, "int64")
    keep = ["customer_id", "order_date", "p", "gross_cents", "discount_cents", "cogs_cents",
            *(["order_id"] if "order_id" in lines.columns else []),
            *(["category_bit_"] if own or from_products else [])]
    return CostedLines(lines.select(*keep, bit_=bit.cast("int64")), categories, has_discounts,
                       tuple(notes))


def costed_orders(costed: CostedLines, cfg: Config, anchor: int) -> ir.Table:
    """One row per order: customer_id, order_date, p, its amounts in cents, its lines, whether
    it is a franco shipment, and the categories it bought (a bit mask)."""
    lines = costed.lines
    if "order_id" in lines.columns:
        orders = lines.group_by("customer_id", "order_id", "order_date").aggregate(
            gross_cents=lines.gross_cents.sum(), discount_cents=lines.discount_cents.sum(),
            cogs_cents=lines.cogs_cents.sum(), n_lines=lines.count(), bit=lines.bit_.bit_or())
        orders = orders.mutate(p=period_expr(orders.order_date, anchor)).drop("order_id")
    else:
        orders = lines.select("customer_id", "order_date", "p", "gross_cents", "discount_cents",
                              "cogs_cents", n_lines=ibis.literal(1, "int64"), bit=lines.bit_)
    net = orders.gross_cents - orders.discount_cents.fill_null(0)
    threshold = round(cfg.costs.franco_threshold * 100)
    return orders.mutate(franco=ones((net > 0) & (net < threshold)))


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


def _categories(found: list[tuple[str | None, str | None]]) -> tuple[str, ...]:
    categories = tuple(sorted({typed for _, typed in found if typed is not None}))
    if len(categories) > MAX_CATEGORIES:
        raise InputError(
            f"orders: {len(categories)} distinct product categories (for example "
            f"{', '.join(categories[:5])}); klantwaarde models cross-sell over at most "
            f"{MAX_CATEGORIES}. Fix: map products to broader categories in orders.category or "
            f"products.category.")
    return categories
