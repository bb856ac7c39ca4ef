"""The data contract v1, declared once: tables, columns, their kinds and what each one enables.

Only ``orders`` with ``customer_id``, ``order_date`` and ``gross_amount`` is required. Every other
table and column is optional; when one is absent, the capabilities that need it are switched off.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The logical type of a column; the engine type follows from it."""

    ID = "id"  # identifier, compared as text
    DATE = "date"  # ISO date YYYY-MM-DD (a timestamp is cut to its date)
    AMOUNT = "amount"  # money in the account currency; negative = return or credit note
    NUMBER = "number"
    TEXT = "text"
    FLAG = "flag"  # yes/no: true/false, 1/0, yes/no, ja/nee, y/n, j/n


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a contract table."""

    name: str
    kind: Kind
    required: bool = False
    enables: str = ""  # what is switched off when the column is absent
    whole: bool = False  # a count: a whole number, at least 0


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract."""

    name: str
    grain: str
    columns: tuple[ColumnSpec, ...]
    event_date: str | None = None  # the date that places a row in time
    key: str | None = None  # a column whose values must be unique
    required: bool = False
    enables: str = ""  # what is switched off when the table is absent

    @property
    def required_columns(self) -> tuple[ColumnSpec, ...]:
        return tuple(c for c in self.columns if c.required)

    @property
    def optional_columns(self) -> tuple[ColumnSpec, ...]:
        return tuple(c for c in self.columns if not c.required)

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _c(name: str, kind: Kind, **kw: object) -> ColumnSpec:
    return ColumnSpec(name, kind, **kw)  # type: ignore[arg-type]


CUSTOMER_ID = _c("customer_id", Kind.ID, required=True)

TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "orders", "one row per order line", event_date="order_date", required=True,
        columns=(
            CUSTOMER_ID,
            _c("order_date", Kind.DATE, required=True),
            _c("gross_amount", Kind.AMOUNT, required=True),
            _c("order_id", Kind.ID, enables="order counts and the cost per order (lines are "
               "counted as orders without it)"),
            _c("product_id", Kind.ID, enables="cost of goods from products.unit_cost"),
            _c("category", Kind.TEXT, enables="product breadth, white space and cross-sell "
               "by category (unless products.category is given)"),
            _c("quantity", Kind.NUMBER, enables="volume features and cost of goods from unit cost"),
            _c("discount_amount", Kind.AMOUNT, enables="discounts and stale-discount detection"),
            _c("cost_amount", Kind.AMOUNT, enables="cost of goods per line (falls back to "
               "products.unit_cost, then the configured default margin)"),
            _c("channel", Kind.TEXT, enables="channel mix features"),
        ),
    ),
    TableSpec(
        "customers", "one row per customer", key="customer_id",
        enables="account-manager lists, industry and region features, the strategic flag of "
        "account qualification, and the check for orders of unknown customers",
        columns=(
            _c("customer_id", Kind.ID, required=True),
            _c("account_manager", Kind.TEXT, enables="lists per account manager"),
            _c("industry", Kind.TEXT, enables="industry features and white space by industry"),
            _c("region", Kind.TEXT, enables="region features"),
            _c("acquired_on", Kind.DATE, enables="tenure from the acquisition date (first order "
               "date otherwise)"),
            _c("strategic", Kind.FLAG, enables="the strategic criterion of account qualification"),
        ),
    ),
    TableSpec(
        "invoices", "one row per invoice", event_date="invoice_date", key="invoice_id",
        enables="invoice costs and payment behaviour (days late, interest on late payment)",
        columns=(
            CUSTOMER_ID,
            _c("invoice_date", Kind.DATE, required=True),
            _c("amount", Kind.AMOUNT, required=True),
            _c("invoice_id", Kind.ID, enables="invoice counts (rows are counted "
               "as invoices without it)"),
            _c("due_date", Kind.DATE, enables="days late and interest on late payment"),
            _c("paid_date", Kind.DATE, enables="days late, open overdue amounts and interest"),
        ),
    ),
    TableSpec(
        "interactions", "one row per visit, call, email or meeting", event_date="date",
        enables="visit and call costs and the attention features (days since last contact)",
        columns=(
            CUSTOMER_ID,
            _c("date", Kind.DATE, required=True),
            _c("kind", Kind.TEXT, required=True),
            _c("account_manager", Kind.TEXT, enables="contacts per account manager"),
        ),
    ),
    TableSpec(
        "complaints", "one row per complaint", event_date="opened_on",
        enables="complaint costs and complaint features",
        columns=(
            CUSTOMER_ID,
            _c("opened_on", Kind.DATE, required=True),
            _c("closed_on", Kind.DATE, enables="open complaints and days to close"),
            _c("category", Kind.TEXT, enables="complaint categories"),
        ),
    ),
    TableSpec(
        "products", "one row per product", key="product_id",
        enables="categories and unit costs by product",
        columns=(
            _c("product_id", Kind.ID, required=True),
            _c("category", Kind.TEXT, enables="categories by product"),
            _c("unit_cost", Kind.AMOUNT, enables="cost of goods from quantity × unit cost"),
        ),
    ),
    TableSpec(
        "managers", "one row per account manager", key="account_manager",
        enables="capacities per account manager from the source (lists.yaml sets them "
        "otherwise)",
        columns=(
            _c("account_manager", Kind.ID, required=True),
            _c("capacity", Kind.NUMBER, whole=True, enables="capacities from the source "
               "(lists.yaml's capacity.default otherwise)"),
        ),
    ),
)

TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in TABLES)


def table_spec(name: str) -> TableSpec:
    """The declaration of a contract table by name."""
    return next(t for t in TABLES if t.name == name)
