"""A slow, plain-Python reference of every feature and label of the feature pipeline.

It follows /tmp/feature_spec.md (the contract of ``klantwaarde.features``) line by line: the
tables are read into lists of dicts, typed by hand, and every figure is a loop over rows. Only
the margin family (and the future net margin label) calls ``klantwaarde.profitability``, as the
spec defines them as that module's figures. Nothing here is fast, on purpose.

Readings taken where the spec leaves room:
- a line's category is ``orders.category`` when that value is present, else
  ``products.category`` through ``product_id`` (a per-line fallback);
- a null ``discount_amount`` counts as 0 in ``discount_pct_12m`` (as profitability does);
- the label categories (``label_adopt__<category>``) are the categories bought (gross > 0) by
  anyone on or before the horizon end (a training set reads no event after its cutoff);
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from klantwaarde.contract import Kind, table_spec
from klantwaarde.profitability.margins import DRIVERS, customer_margins
from klantwaarde.sources import open_source

try:  # the period grid (klantwaarde.periods; klantwaarde.features.periods in an early draft)
    from klantwaarde.periods import anchor_of, date_of, period_of
except ImportError:  # pragma: no cover
    from klantwaarde.features.periods import anchor_of, date_of, period_of

EVENT_DATE = {"orders": "order_date", "invoices": "invoice_date", "interactions": "date",
              "complaints": "opened_on"}
_FLAGS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
          "y": True, "n": False, "ja": True, "nee": False, "j": True}


# --------------------------------------------------------------------------- reading and typing

def _is_null(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _typed(value: object, kind: Kind | None) -> object:
    """One raw value as its contract kind; None where it is empty or does not convert."""
    if _is_null(value):
        return None
    if kind in (Kind.ID, Kind.TEXT):
        text = str(value).strip()
        return text or None
    if kind is Kind.DATE:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, pd.Timestamp):
            return value.date()
        try:
            return dt.date.fromisoformat(str(value).strip()[:10])
        except ValueError:
            return None
    if kind in (Kind.AMOUNT, Kind.NUMBER):
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    if kind is Kind.FLAG:
        if isinstance(value, bool):
            return value
        return _FLAGS.get(str(value).strip().lower())
    return value.item() if hasattr(value, "item") else value  # other attributes: as they are


@dataclass
class Data:
    """The contract tables of a source folder as typed rows, and the columns each table has."""

    rows: dict[str, list[dict]] = field(default_factory=dict)
    columns: dict[str, set[str]] = field(default_factory=dict)

    def has(self, requirement: str) -> bool:
        """A catalog requirement: "table", "table.column" or "category"."""
        if requirement == "category":
            return self.has("orders.category") or (
                self.has("orders.product_id") and self.has("products.category"))
        table, _, column = requirement.partition(".")
        if table not in self.columns:
            return False
        return not column or column in self.columns[table]


def load(folder: Path) -> Data:
    """Read every contract table of ``folder`` (Parquet or CSV) into typed dicts."""
    data = Data()
    for file in sorted(folder.iterdir()):
        name = file.name.lower()
        if name.endswith(".parquet"):
            frame = pd.read_parquet(file)
            table = name[: -len(".parquet")]
        elif name.endswith(".csv"):
            frame = pd.read_csv(file, dtype=str, keep_default_na=False)
            table = name[: -len(".csv")]
        else:
            continue
        table = table.strip()
        frame.columns = ["_".join(str(c).strip().lower().split()) for c in frame.columns]
        kinds = {c.name: c.kind for c in table_spec(table).columns}
        rows = []
        for raw in frame.to_dict("records"):
            rows.append({col: _typed(value, kinds.get(col)) for col, value in raw.items()})
        data.rows[table] = rows
        data.columns[table] = set(frame.columns)
    return data


def events(data: Data, table: str) -> list[dict]:
    """The rows of a table that count: customer_id and event date both present."""
    if table not in data.rows:
        return []
    date = EVENT_DATE[table]
    return [r for r in data.rows[table] if r["customer_id"] is not None and r[date] is not None]


class Grid:
    """The period grid of one as_of."""

    def __init__(self, as_of: dt.date) -> None:
        self.as_of = as_of
        self.anchor = anchor_of(as_of)
        self.P = period_of(as_of, self.anchor)

    def end_of(self, period: int) -> dt.date:
        return date_of(period, self.anchor)

    def last(self, day: dt.date, w: int) -> bool:
        """``day`` lies in the last ``w`` months."""
        return self.end_of(self.P - w) < day <= self.as_of

    def before(self, day: dt.date, w: int) -> bool:
        """``day`` lies in the ``w`` months before the last ``w`` months."""
        return self.end_of(self.P - 2 * w) < day <= self.end_of(self.P - w)

    def horizon_end(self, h: int) -> dt.date:
        return self.end_of(self.P + h)

    def in_horizon(self, day: dt.date, h: int) -> bool:
        return self.as_of < day <= self.horizon_end(h)


def _days(later: dt.date, earlier: dt.date) -> int:
    return (later - earlier).days


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _by_customer(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["customer_id"], []).append(r)
    return out


def eligible_customers(data: Data, grid: Grid, active_months: int) -> list[str]:
    return sorted({r["customer_id"] for r in events(data, "orders")
                   if grid.last(r["order_date"], active_months)})


def line_category(data: Data, line: dict) -> str | None:
    """orders.category when present, else products.category through product_id."""
    if data.has("orders.category") and line.get("category") is not None:
        return line["category"]
    if data.has("orders.product_id") and data.has("products.category"):
        for product in data.rows["products"]:
            if product["product_id"] is not None and product["product_id"] == line["product_id"]:
                return product["category"]
    return None


def all_categories(data: Data, until: dt.date | None = None) -> list[str]:
    """Every category bought (a line with gross_amount > 0) by anyone in the data (on or
    before ``until`` when given)."""
    if not data.has("category"):
        return []
    found = set()
    for line in events(data, "orders"):
        if until is not None and line["order_date"] > until:
            continue
        category = line_category(data, line)
        if category is not None and line["gross_amount"] is not None and line["gross_amount"] > 0:
            found.add(category)
    return sorted(found)


# --------------------------------------------------------------------------- feature families

def _order_key(data: Data, line: dict, index: int) -> tuple:
    if data.has("orders.order_id"):
        return (line["order_id"], line["order_date"])
    return ("line", index)  # every line is its own order


def orders_family(data: Data, grid: Grid, lines: list[tuple[int, dict]]) -> dict:
    """days_since_last_order, tenure_days, orders_w, revenue_w, avg order value, active months,
    lines per order. ``lines`` are (row index, line) of one customer."""
    up_to = [line["order_date"] for _, line in lines if line["order_date"] <= grid.as_of]
    out: dict = {
        "days_since_last_order": _days(grid.as_of, max(up_to)),
        "tenure_days": _days(grid.as_of, min(up_to)),
    }
    for w in (3, 6, 12):
        orders = set()
        revenue = 0.0
        for i, line in lines:
            if grid.last(line["order_date"], w):
                orders.add(_order_key(data, line, i))
                revenue += line["gross_amount"] or 0.0
        out[f"orders_{w}m"] = len(orders)
        out[f"revenue_{w}m"] = revenue
    out["avg_order_value_12m"] = out["revenue_12m"] / out["orders_12m"]
    periods = set()
    for _, line in lines:
        if grid.last(line["order_date"], 12):
            periods.add(period_of(line["order_date"], grid.anchor))
    out["active_months_12m"] = sum(1 for k in range(1, 13) if grid.P - k + 1 in periods)
    if data.has("orders.order_id"):
        n_lines = sum(1 for _, line in lines if grid.last(line["order_date"], 12))
        out["lines_per_order_12m"] = n_lines / out["orders_12m"]
    return out


def trends_family(data: Data, grid: Grid, lines: list[tuple[int, dict]]) -> dict:
    def revenue(inside) -> float:
        return sum(line["gross_amount"] or 0.0 for _, line in lines if inside(line["order_date"]))

    def orders(inside) -> int:
        return len({_order_key(data, line, i) for i, line in lines if inside(line["order_date"])})

    def trend(last: float, before: float) -> float | None:
        return (last - before) / before if before > 0 else None

    out = {}
    for w in (3, 6):
        out[f"revenue_trend_{w}m"] = trend(revenue(lambda d, w=w: grid.last(d, w)),
                                           revenue(lambda d, w=w: grid.before(d, w)))
    out["orders_trend_3m"] = trend(orders(lambda d: grid.last(d, 3)),
                                   orders(lambda d: grid.before(d, 3)))
    return out


def margin_rows(folder: Path, as_of: dt.date, cfg, window_months: int) -> dict[str, dict]:
    """profitability's customer_margins as one dict per customer."""
    source = open_source(str(folder), cfg.source)
    frame = customer_margins(source, as_of, cfg, window_months).table.to_pandas()
    return {row["customer_id"]: row for row in frame.to_dict("records")}


DRIVER_REQUIRES = {"orders": "orders", "order_lines": "orders", "franco": "orders",
                   "invoices": "invoices", "visits": "interactions", "calls": "interactions",
                   "complaints": "complaints"}


def margin_family(data: Data, margins: dict | None) -> dict:
    """The 12-month figures of profitability for one customer (``margins``: its row)."""
    if margins is None:  # the spec says this cannot happen for an eligible customer
        raise AssertionError("an eligible customer without a margins row")
    out = {f"{name}_12m": _value(margins[name])
           for name in ("gross_margin", "cost_to_serve", "net_margin", "net_margin_pct")}
    for driver in DRIVERS:
        if driver == "late_payment":
            present = data.has("invoices.due_date") and data.has("invoices.paid_date")
        else:
            present = data.has(DRIVER_REQUIRES[driver])
        if present:
            out[f"cost_{driver}_12m"] = _value(margins[f"cost_{driver}"])
    return out


def discounts_family(grid: Grid, lines: list[tuple[int, dict]], revenue_12m: float,
                     margins: dict) -> dict:
    discount = sum(line["discount_amount"] or 0.0 for _, line in lines
                   if grid.last(line["order_date"], 12))
    return {"discount_pct_12m": discount / revenue_12m if revenue_12m > 0 else None,
            "stale_discount_12m": _value(margins["stale_discount"])}


def payment_family(grid: Grid, invoices: list[dict]) -> dict:
    days_late = []
    paid_late = []
    overdue_amount = 0.0
    overdue_invoices = 0
    for inv in invoices:
        if not grid.last(inv["invoice_date"], 12):
            continue
        due, paid = inv["due_date"], inv["paid_date"]
        if paid is not None and paid <= grid.as_of and due is not None:
            days_late.append(max(0, _days(paid, due)))
            paid_late.append(1.0 if paid > due else 0.0)
        amount = inv["amount"]
        if (amount is not None and amount > 0 and due is not None and due < grid.as_of
                and (paid is None or paid > grid.as_of)):
            overdue_amount += amount
            overdue_invoices += 1
    return {"avg_days_late_12m": _mean(days_late), "share_paid_late_12m": _mean(paid_late),
            "overdue_amount": overdue_amount, "overdue_invoices": overdue_invoices}


def _kind(row: dict) -> str | None:
    return row["kind"].lower() if row["kind"] is not None else None


def attention_family(grid: Grid, cfg, interactions: list[dict], first_order: dt.date) -> dict:
    visit_kinds = [k.lower() for k in cfg.costs.visit_kinds]
    call_kinds = [k.lower() for k in cfg.costs.call_kinds]
    is_kind = {"visit": lambda r: _kind(r) in visit_kinds,
               "call": lambda r: _kind(r) in call_kinds,
               "contact": lambda r: True}
    out = {}
    for name, test in is_kind.items():
        dates = [r["date"] for r in interactions if test(r) and r["date"] <= grid.as_of]
        out[f"days_since_last_{name}"] = _days(grid.as_of, max(dates) if dates else first_order)
    out["visits_12m"] = sum(1 for r in interactions
                            if is_kind["visit"](r) and grid.last(r["date"], 12))
    out["calls_12m"] = sum(1 for r in interactions
                           if is_kind["call"](r) and grid.last(r["date"], 12))
    out["contacts_3m"] = sum(1 for r in interactions if grid.last(r["date"], 3))
    out["contacts_12m"] = sum(1 for r in interactions if grid.last(r["date"], 12))
    return out


def contacts_vs_norm(revenue_12m: dict[str, float], contacts_12m: dict[str, int]
                     ) -> dict[str, float | None]:
    """contacts_12m over the mean of the customers of the same revenue band (quintile)."""
    customers = sorted(revenue_12m)
    n = len(customers)
    band = {}
    for c in customers:
        rank_min = 1 + sum(1 for o in customers
                           if round(revenue_12m[o], 2) < round(revenue_12m[c], 2))
        # floor(5 * (rank_min - 1) / (n - 1)) in exact integer arithmetic
        band[c] = 0 if n == 1 else min(4, (5 * (rank_min - 1)) // (n - 1))
    out = {}
    for c in customers:
        same = [contacts_12m[o] for o in customers if band[o] == band[c]]
        norm = sum(same) / len(same)
        out[c] = contacts_12m[c] / norm if norm != 0 else None
    return out


def complaints_family(data: Data, grid: Grid, complaints: list[dict]) -> dict:
    out = {"complaints_3m": sum(1 for r in complaints if grid.last(r["opened_on"], 3)),
           "complaints_12m": sum(1 for r in complaints if grid.last(r["opened_on"], 12))}
    if data.has("complaints.closed_on"):
        recent = [r for r in complaints if grid.last(r["opened_on"], 12)]
        out["open_complaints"] = sum(1 for r in recent
                                     if r["closed_on"] is None or r["closed_on"] > grid.as_of)
        out["avg_days_to_close_12m"] = _mean([
            _days(r["closed_on"], r["opened_on"]) for r in recent
            if r["closed_on"] is not None and r["closed_on"] <= grid.as_of])
    return out


def bought(data: Data, lines: list[tuple[int, dict]], inside) -> set[str]:
    """The categories of the lines with gross_amount > 0 whose date passes ``inside``."""
    out = set()
    for _, line in lines:
        category = line_category(data, line)
        if (category is not None and line["gross_amount"] is not None
                and line["gross_amount"] > 0 and inside(line["order_date"])):
            out.add(category)
    return out


def industry_of(data: Data, customer: str) -> object:
    """The white-space group: customers.industry (null its own group); one group without it."""
    if not data.has("customers.industry"):
        return "(one group)"
    for row in data.rows["customers"]:
        if row["customer_id"] == customer:
            return row["industry"]
    return None


def breadth_family(data: Data, grid: Grid, eligible: list[str],
                   lines_of: dict[str, list[tuple[int, dict]]], categories_until: dt.date
                   ) -> dict[str, dict]:
    """Categories bought, white space, and one owns__<category> flag per category bought by
    anyone up to ``categories_until`` (the last date the history reads)."""
    categories = all_categories(data)
    bought_12m = {c: bought(data, lines_of[c], lambda d: grid.last(d, 12)) for c in eligible}
    out = {}
    for c in eligible:
        peers = [o for o in eligible if industry_of(data, o) == industry_of(data, c)]
        white_space = 0.0
        for category in categories:
            if category not in bought_12m[c]:
                white_space += sum(1 for o in peers if category in bought_12m[o]) / len(peers)
        ever = bought(data, lines_of[c], lambda d: d <= grid.as_of)
        out[c] = {"categories_12m": len(bought_12m[c]), "categories_ever": len(ever),
                  "white_space_12m": white_space}
        out[c] |= {f"owns__{category}": category in ever
                   for category in all_categories(data, categories_until)}
    return out


def static_columns(data: Data, cfg) -> list[str]:
    """The customers columns that become features (acquired_on as account_age_days)."""
    if "customers" not in data.columns:
        return []
    protected = {p.lower() for p in cfg.contract.protected_attributes}
    return sorted(c for c in data.columns["customers"]
                  if c not in ("customer_id", "account_manager") and c.lower() not in protected)


def static_family(data: Data, grid: Grid, cfg, customer: str) -> dict:
    row = next((r for r in data.rows.get("customers", []) if r["customer_id"] == customer), {})
    out = {}
    for column in static_columns(data, cfg):
        if column == "acquired_on":
            acquired = row.get("acquired_on")
            out["account_age_days"] = (_days(grid.as_of, acquired)
                                       if acquired is not None and acquired <= grid.as_of
                                       else None)
        else:
            out[column] = row.get(column)
    return out


def _value(x: object) -> object:
    """A figure from a pandas frame as a plain Python value (None for null)."""
    if _is_null(x):
        return None
    return x.item() if hasattr(x, "item") else x


# --------------------------------------------------------------------------- the two entry points

def reference_features(folder: Path, as_of: dt.date, cfg, categories_until: dt.date | None = None
                       ) -> dict[str, dict[str, object]]:
    """Every feature of every eligible customer at ``as_of``: {customer_id: {feature: value}}."""
    data = load(Path(folder))
    grid = Grid(as_of)
    eligible = eligible_customers(data, grid, cfg.labels.active_months)
    orders = events(data, "orders")
    lines_of = {c: [(i, r) for i, r in enumerate(orders) if r["customer_id"] == c]
                for c in eligible}
    margins = margin_rows(folder, as_of, cfg, 12)
    invoices = _by_customer(events(data, "invoices"))
    interactions = _by_customer(events(data, "interactions"))
    complaints = _by_customer(events(data, "complaints"))

    out: dict[str, dict[str, object]] = {}
    for c in eligible:
        features: dict[str, object] = {}
        features.update(orders_family(data, grid, lines_of[c]))
        features.update(trends_family(data, grid, lines_of[c]))
        features.update(margin_family(data, margins.get(c)))
        if data.has("orders.discount_amount"):
            features.update(discounts_family(grid, lines_of[c], features["revenue_12m"],
                                             margins[c]))
        if data.has("invoices.due_date") and data.has("invoices.paid_date"):
            features.update(payment_family(grid, invoices.get(c, [])))
        if data.has("interactions"):
            first_order = min(r["order_date"] for _, r in lines_of[c]
                              if r["order_date"] <= as_of)
            features.update(attention_family(grid, cfg, interactions.get(c, []), first_order))
        if data.has("complaints"):
            features.update(complaints_family(data, grid, complaints.get(c, [])))
        features.update(static_family(data, grid, cfg, c))
        out[c] = features
    if data.has("interactions"):
        norm = contacts_vs_norm({c: out[c]["revenue_12m"] for c in eligible},
                                {c: out[c]["contacts_12m"] for c in eligible})
        for c in eligible:
            out[c]["contacts_vs_norm_12m"] = norm[c]
    if data.has("category"):
        for c, values in breadth_family(data, grid, eligible, lines_of,
                                        categories_until or as_of).items():
            out[c].update(values)
    return out


def reference_labels(folder: Path, as_of: dt.date, cfg) -> dict[str, dict[str, object]]:
    """Every label of every eligible customer at ``as_of``: {customer_id: {label: value}}."""
    data = load(Path(folder))
    grid = Grid(as_of)
    h = cfg.labels.horizon_months
    end = grid.horizon_end(h)
    eligible = eligible_customers(data, grid, cfg.labels.active_months)
    orders = events(data, "orders")
    future = margin_rows(folder, end, cfg, h)
    categories = all_categories(data, until=end)
    interactions = _by_customer(events(data, "interactions")) if data.has("interactions") \
        else None
    kinds = [k.lower() for k in cfg.costs.visit_kinds + cfg.costs.call_kinds]
    out: dict[str, dict[str, object]] = {}
    for c in eligible:
        lines = [(i, r) for i, r in enumerate(orders) if r["customer_id"] == c]
        in_horizon = [line for _, line in lines if grid.in_horizon(line["order_date"], h)]
        revenue_next = sum(line["gross_amount"] or 0.0 for line in in_horizon)
        revenue_prev = sum(line["gross_amount"] or 0.0 for _, line in lines
                           if grid.last(line["order_date"], h))
        baseline = cfg.labels.churn.dry_up_baseline_months
        usual = sum(line["gross_amount"] or 0.0 for _, line in lines
                    if grid.last(line["order_date"], baseline)) * h / baseline
        ordered_next = bool(in_horizon)
        if cfg.labels.churn.definition == "no_order":
            churn = not ordered_next
        else:
            churn = (not ordered_next
                     or revenue_next < cfg.labels.churn.dry_up_fraction * usual)
        labels: dict[str, object] = {
            "label_churn": churn,
            "label_future_net_margin": (_value(future[c]["net_margin"]) if c in future
                                        else 0.0),
            "label_future_revenue": revenue_next,
        }
        if interactions is not None:  # a visit or call in the first month after as_of
            labels["label_contacted"] = any(
                _kind(r) in kinds and grid.in_horizon(r["date"], 1)
                for r in interactions.get(c, []))
        ever = bought(data, lines, lambda d: d <= as_of)
        adopted = False
        for category in categories:
            amount = sum(line["gross_amount"] or 0.0 for line in in_horizon
                         if line_category(data, line) == category)
            adopt = (category not in ever
                     and amount >= cfg.labels.upgrade.min_category_amount)
            labels[f"label_adopt__{category}"] = adopt
            adopted = adopted or adopt
        labels["label_upgrade"] = adopted or (
            revenue_prev > 0 and revenue_next >= (1 + cfg.labels.upgrade.growth) * revenue_prev)
        out[c] = labels
    return out


def feature_names(folder: Path, cfg, categories_until: dt.date) -> set[str]:
    """The features the source allows, whether or not a customer is eligible; the history read
    up to ``categories_until`` names the owns__<category> flags."""
    data = load(Path(folder))
    names = {"days_since_last_order", "tenure_days", "avg_order_value_12m", "active_months_12m",
             "revenue_trend_3m", "revenue_trend_6m", "orders_trend_3m", "gross_margin_12m",
             "cost_to_serve_12m", "net_margin_12m", "net_margin_pct_12m",
             "cost_orders_12m", "cost_order_lines_12m", "cost_franco_12m"}
    names |= {f"{k}_{w}m" for k in ("orders", "revenue") for w in (3, 6, 12)}
    if data.has("orders.order_id"):
        names.add("lines_per_order_12m")
    if data.has("invoices"):
        names.add("cost_invoices_12m")
    if data.has("invoices.due_date") and data.has("invoices.paid_date"):
        names |= {"cost_late_payment_12m", "avg_days_late_12m", "share_paid_late_12m",
                  "overdue_amount", "overdue_invoices"}
    if data.has("orders.discount_amount"):
        names |= {"discount_pct_12m", "stale_discount_12m"}
    if data.has("interactions"):
        names |= {"cost_visits_12m", "cost_calls_12m", "days_since_last_visit",
                  "days_since_last_call", "days_since_last_contact", "visits_12m", "calls_12m",
                  "contacts_3m", "contacts_12m", "contacts_vs_norm_12m"}
    if data.has("complaints"):
        names |= {"cost_complaints_12m", "complaints_3m", "complaints_12m"}
    if data.has("complaints.closed_on"):
        names |= {"open_complaints", "avg_days_to_close_12m"}
    if data.has("category"):
        names |= {"categories_12m", "categories_ever", "white_space_12m"}
        names |= {f"owns__{c}" for c in all_categories(data, categories_until)}
    names |= {"account_age_days" if c == "acquired_on" else c for c in static_columns(data, cfg)}
    return names


def label_names(folder: Path, as_of: dt.date, cfg) -> set[str]:
    data = load(Path(folder))
    end = Grid(as_of).horizon_end(cfg.labels.horizon_months)
    return ({"label_churn", "label_future_net_margin", "label_future_revenue", "label_upgrade"}
            | ({"label_contacted"} if data.has("interactions") else set())
            | {f"label_adopt__{c}" for c in all_categories(data, until=end)})


def is_close(expected: object, got: object, rel: float = 1e-9, abs_: float = 1e-6) -> bool:
    """Equal values: nulls equal nulls, numbers within a tolerance, the rest exactly."""
    if _is_null(expected) or _is_null(got):
        return _is_null(expected) and _is_null(got)
    got = got.item() if hasattr(got, "item") else got
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(got, bool) and isinstance(expected, bool) and expected == got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(float(expected), float(got), rel_tol=rel, abs_tol=abs_)
    return expected == got
