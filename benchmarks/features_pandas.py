"""Baseline: the feature table for one ``as_of`` in plain, vectorised pandas.

What a data scientist would write without the engine: read the Parquet files with pandas (only the
columns needed, dates as ``datetime64``), then boolean masks, ``groupby`` sums and counts,
``merge`` and ``np.where``; no Python loop over rows. It implements the same definitions as the
engine (the declarations in ``klantwaarde.features.catalog``): one row per customer with an order
line in the last ``labels.active_months`` months, the columns customer_id, as_of and the
features. Ids are trimmed (blank is null). No engine code runs here: the period grid
(``klantwaarde.periods``) is re-stated in a few lines of scalar date arithmetic, and the margin
family re-implements ``klantwaarde.profitability.customer_margins`` over the last 12 months (which
groups order lines into orders by the customer and order ids as given).

It reads a folder of Parquet files (the simulator's output); CSV sources are not handled.

``benchmarks/features.py`` times it against the engine and checks that both agree. On its own:

    .venv/bin/python benchmarks/features_pandas.py FOLDER 2025-02-28 [--out features.parquet]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from klantwaarde.config import Config, load_config
from klantwaarde.periods import anchor_of, date_of, period_of  # the grid: scalar dates

NEVER_FEATURES = {"customer_id", "account_manager"}
FLAG_TEXT = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
             "y": True, "n": False, "ja": True, "nee": False, "j": True}
DRIVERS = {"orders": "n_orders", "order_lines": "n_lines", "invoices": "n_invoices",
           "franco": "n_franco", "visits": "n_visits", "calls": "n_calls",
           "complaints": "n_complaints", "late_payment": "interest"}


# ---------------------------------------------------------------------------------------- reading

def _read(folder: Path, table: str, wanted: list[str]) -> pd.DataFrame | None:
    """The columns of ``wanted`` that the table has (names matched like the engine: trimmed,
    lower case, spaces as underscores); None when the table is absent."""
    names = _columns(folder, table)
    if names is None:
        return None
    present = [c for c in wanted if c in names]
    df = pd.read_parquet(folder / f"{table}.parquet", columns=[names[c] for c in present],
                         to_pandas_kwargs={"date_as_object": False})
    return df.rename(columns={names[c]: c for c in present})


def _columns(folder: Path, table: str) -> dict[str, str] | None:
    """Contract name -> column name in the file; None when the table is absent."""
    file = folder / f"{table}.parquet"
    if not file.exists():
        return None
    return {re.sub(r"\s+", "_", n.strip().lower()): n for n in pq.read_schema(file).names}


def _id(s: pd.Series) -> pd.Series:
    """Ids as trimmed strings; blank is null."""
    s = s.astype("str").str.strip()
    return s.mask(s == "")


def _text(s: pd.Series) -> pd.Series:
    return _id(s)


def _date(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.normalize()
    return pd.to_datetime(s.astype("str").str.strip(), errors="coerce", format="ISO8601")


def _amount(s: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("float64")
    return pd.to_numeric(s.astype("str").str.strip(), errors="coerce")


def _flag(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean")
    return s.astype("str").str.strip().str.lower().map(FLAG_TEXT).astype("boolean")


def _typed_ids(raw: pd.Series) -> tuple[pd.Categorical, np.ndarray]:
    """Ids typed once per distinct value: the typed ids as a categorical, and the codes of the
    ids as given (-1 for null)."""
    given = raw.astype("category")
    typed_codes, typed = pd.factorize(_id(pd.Series(given.cat.categories)))
    codes = given.cat.codes.to_numpy()
    typed_of_row = np.where(codes >= 0, typed_codes[codes], -1)
    return pd.Categorical.from_codes(typed_of_row, categories=pd.Index(typed)), codes


def _events(df: pd.DataFrame | None, date: str) -> pd.DataFrame | None:
    """Typed customer_id (a categorical) and event date; rows where either is null dropped."""
    if df is None:
        return None
    df["customer_id"], _ = _typed_ids(df["customer_id"])
    df[date] = _date(df[date])
    return df[df["customer_id"].notna() & df[date].notna()]


# ------------------------------------------------------------------------------------ the features

class Grid:
    """The period grid of ``as_of``: ``age`` 0 is period P, 1 is P-1, ...; capped at ``depth``."""

    def __init__(self, as_of: dt.date, depth: int) -> None:
        anchor = anchor_of(as_of)
        p = period_of(as_of, anchor)
        self.as_of = pd.Timestamp(as_of)
        self.depth = depth
        # ascending ends of periods P-depth .. P
        self.ends = np.array([np.datetime64(date_of(p - k, anchor), "ms")
                              for k in range(depth, -1, -1)])

    def edge(self, months: int) -> pd.Timestamp:
        """The date after which "the last ``months`` months" start."""
        return pd.Timestamp(self.ends[self.depth - months])

    def age(self, dates: pd.Series) -> np.ndarray:
        """Periods back from P for dates <= as_of (``depth`` for anything older)."""
        pos = np.searchsorted(self.ends, dates.to_numpy().astype("datetime64[ms]"), side="left")
        return (self.depth - pos).astype(np.int16)


def _only(df: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
    """The rows of the eligible customers, customer_id a categorical over exactly those (so a
    ``groupby(observed=False)`` has one row per eligible customer, in order)."""
    df = df.assign(customer_id=df["customer_id"].cat.set_categories(customers))
    return df[df["customer_id"].notna()]


def _days(later: pd.Timestamp | pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.days


def features_pandas(folder: Path, as_of: dt.date, cfg: Config) -> pd.DataFrame:
    """One row per eligible customer at ``as_of``: customer_id, as_of, the features."""
    folder = Path(folder)
    costs = cfg.costs
    active = cfg.labels.active_months
    grid = Grid(as_of, max(12, active))
    asof = grid.as_of

    # ---- orders
    names = _columns(folder, "orders")
    wanted = ["customer_id", "order_id", "order_date", "gross_amount", "discount_amount",
              "cost_amount", "category"]
    if "category" not in names or "cost_amount" not in names:  # then products is needed
        wanted += ["product_id", "quantity"]
    o = _events(_read(folder, "orders", wanted), "order_date")
    o = o[o["order_date"] <= asof]
    active_ids = o.loc[o["order_date"] > grid.edge(active), "customer_id"]
    customers = active_ids.cat.remove_unused_categories().cat.categories.sort_values()
    customers = pd.Index(customers, name="customer_id", dtype="str")
    o = _only(o, customers)
    if "category" in o.columns:
        o["category"] = _text(o["category"]).astype("category")
    o["gross_amount"] = _amount(o["gross_amount"])
    o["age"] = grid.age(o["order_date"])
    has_order_id = "order_id" in o.columns
    has_discount = "discount_amount" in o.columns
    if has_order_id and pd.api.types.is_integer_dtype(o["order_id"]):
        o["order_key"] = o["order_id"]  # integers: as given and typed are the same
    elif has_order_id:  # codes of the ids typed (trimmed; null a value) and as given
        typed, o["order_key"] = _typed_ids(o["order_id"])
        o["order_id"] = typed.codes
    for c in ("discount_amount", "cost_amount", "quantity"):
        if c in o.columns:
            o[c] = _amount(o[c])

    out = pd.DataFrame(index=customers)
    g = o.groupby("customer_id", observed=False)
    out["days_since_last_order"] = _days(asof, g["order_date"].max())
    first_order = g["order_date"].min()
    out["tenure_days"] = _days(asof, first_order)

    age = o["age"]
    gross = o["gross_amount"]
    sums = pd.DataFrame({
        "customer_id": o["customer_id"],
        "revenue_3m": gross.where(age < 3, 0.0), "revenue_6m": gross.where(age < 6, 0.0),
        "revenue_12m": gross.where(age < 12, 0.0),
        "revenue_prev_3m": gross.where((age >= 3) & (age < 6), 0.0),
        "revenue_prev_6m": gross.where((age >= 6) & (age < 12), 0.0),
        "lines_12m": (age < 12).astype("int64"),
        "discount_12m": (o["discount_amount"].where(age < 12, 0.0) if has_discount else 0.0),
    }).groupby("customer_id", observed=False).sum()
    keys = ["customer_id", "order_id", "order_date"] if has_order_id else None
    orders = (o.loc[age < 12, [*keys, "age"]].drop_duplicates(keys) if has_order_id
              else o.loc[age < 12, ["customer_id", "age"]])
    oa = orders["age"]
    counts = pd.DataFrame({
        "customer_id": orders["customer_id"],
        "orders_3m": (oa < 3).astype("int64"), "orders_6m": (oa < 6).astype("int64"),
        "orders_12m": (oa < 12).astype("int64"),
        "orders_prev_3m": ((oa >= 3) & (oa < 6)).astype("int64"),
    }).groupby("customer_id", observed=False).sum()
    for w in (3, 6, 12):
        out[f"orders_{w}m"] = counts[f"orders_{w}m"]
        out[f"revenue_{w}m"] = sums[f"revenue_{w}m"]
    out["avg_order_value_12m"] = sums["revenue_12m"] / counts["orders_12m"]
    out["active_months_12m"] = (o.loc[age < 12].groupby("customer_id", observed=False)["age"]
                                .nunique())
    if has_order_id:
        out["lines_per_order_12m"] = sums["lines_12m"] / counts["orders_12m"]

    def trend(last: pd.Series, before: pd.Series) -> pd.Series:
        before = before.astype("float64")
        return ((last - before) / before).where(before > 0)

    out["revenue_trend_3m"] = trend(sums["revenue_3m"], sums["revenue_prev_3m"])
    out["revenue_trend_6m"] = trend(sums["revenue_6m"], sums["revenue_prev_6m"])
    out["orders_trend_3m"] = trend(counts["orders_3m"], counts["orders_prev_3m"])

    # ---- the margin family: customer_margins over (mstart, as_of]
    invoices = _events(_read(folder, "invoices", [
        "customer_id", "invoice_date", "amount", "due_date", "paid_date"]), "invoice_date")
    interactions = _events(_read(folder, "interactions", ["customer_id", "date", "kind"]), "date")
    complaints = _events(_read(folder, "complaints", ["customer_id", "opened_on", "closed_on"]),
                         "opened_on")
    products = _read(folder, "products", ["product_id", "category", "unit_cost"])
    mstart = grid.edge(12)  # customer_margins(source, as_of, costs, 12)'s window
    margins = _margins(o[o["order_date"] > mstart], products, invoices, interactions,
                       complaints, customers, costs, grid, has_discount)
    out["gross_margin_12m"] = margins["gross_margin"]
    out["cost_to_serve_12m"] = margins["cost_to_serve"]
    out["net_margin_12m"] = margins["net_margin"]
    out["net_margin_pct_12m"] = margins["net_margin_pct"]
    for driver in DRIVERS:
        if f"cost_{driver}" in margins.columns:
            out[f"cost_{driver}_12m"] = margins[f"cost_{driver}"]
    if has_discount:
        out["discount_pct_12m"] = (sums["discount_12m"] / sums["revenue_12m"]).where(
            sums["revenue_12m"] > 0)
        out["stale_discount_12m"] = margins["stale_discount"]

    # ---- payment
    if invoices is not None and {"due_date", "paid_date"} <= set(invoices.columns):
        inv = _only(invoices, customers)
        inv = inv[(inv["invoice_date"] > grid.edge(12)) & (inv["invoice_date"] <= asof)]
        due, paid, amount = _date(inv["due_date"]), _date(inv["paid_date"]), _amount(inv["amount"])
        settled = paid.notna() & (paid <= asof) & due.notna()
        overdue = (amount > 0) & due.notna() & (due < asof) & (paid.isna() | (paid > asof))
        pay = pd.DataFrame({
            "customer_id": inv["customer_id"],
            "late_days": _days(paid, due).clip(lower=0).where(settled),
            "late": (paid > due).astype("float64").where(settled),
            "overdue_amount": amount.where(overdue, 0.0),
            "overdue_invoices": overdue.astype("int64"),
        }).groupby("customer_id", observed=False).agg(
            avg_days_late_12m=("late_days", "mean"), share_paid_late_12m=("late", "mean"),
            overdue_amount=("overdue_amount", "sum"), overdue_invoices=("overdue_invoices", "sum"))
        out = out.join(pay)

    # ---- attention
    if interactions is not None:
        x = _only(interactions, customers)
        x = x[x["date"] <= asof]
        kind = _text(x["kind"]).str.lower()
        xa = grid.age(x["date"])
        is_visit = kind.isin([k.lower() for k in costs.visit_kinds]).to_numpy()
        is_call = kind.isin([k.lower() for k in costs.call_kinds]).to_numpy()
        none = pd.NaT
        att = pd.DataFrame({
            "customer_id": x["customer_id"],
            "last_visit": x["date"].where(is_visit, none),
            "last_call": x["date"].where(is_call, none),
            "last_contact": x["date"],
            "visits_12m": (is_visit & (xa < 12)).astype("int64"),
            "calls_12m": (is_call & (xa < 12)).astype("int64"),
            "contacts_3m": (xa < 3).astype("int64"),
            "contacts_12m": (xa < 12).astype("int64"),
        }).groupby("customer_id", observed=False).agg(
            last_visit=("last_visit", "max"), last_call=("last_call", "max"),
            last_contact=("last_contact", "max"), visits_12m=("visits_12m", "sum"),
            calls_12m=("calls_12m", "sum"), contacts_3m=("contacts_3m", "sum"),
            contacts_12m=("contacts_12m", "sum"))
        for k in ("visit", "call", "contact"):
            out[f"days_since_last_{k}"] = _days(asof, att[f"last_{k}"].fillna(first_order))
        for c in ("visits_12m", "calls_12m", "contacts_3m", "contacts_12m"):
            out[c] = att[c]
        n = len(out)
        rank = out["revenue_12m"].round(2).rank(method="min")  # in cents, as the engine
        pct = (rank - 1) / (n - 1) if n > 1 else rank * 0.0
        band = np.minimum(4, np.floor(5 * pct))
        norm = out["contacts_12m"].groupby(band).transform("mean")
        out["contacts_vs_norm_12m"] = (out["contacts_12m"] / norm).where(norm != 0)

    # ---- complaints
    if complaints is not None:
        c = _only(complaints, customers)
        c = c[(c["opened_on"] > grid.edge(12)) & (c["opened_on"] <= asof)]
        ca = grid.age(c["opened_on"])
        cols = {"customer_id": c["customer_id"], "complaints_3m": (ca < 3).astype("int64"),
                "complaints_12m": np.ones(len(c), dtype="int64")}
        aggs = {"complaints_3m": ("complaints_3m", "sum"),
                "complaints_12m": ("complaints_12m", "sum")}
        if "closed_on" in c.columns:
            closed = _date(c["closed_on"])
            cols["open"] = (closed.isna() | (closed > asof)).astype("int64")
            cols["to_close"] = _days(closed, c["opened_on"]).where(closed <= asof)
            aggs |= {"open_complaints": ("open", "sum"),
                     "avg_days_to_close_12m": ("to_close", "mean")}
        out = out.join(pd.DataFrame(cols).groupby("customer_id", observed=False).agg(**aggs))

    # ---- breadth and white space
    attrs = _customers(folder, cfg, customers, asof)
    category = None
    if "category" in o.columns:
        category = o["category"]
    elif "product_id" in o.columns and products is not None and "category" in products.columns:
        lookup = pd.Series(_text(products["category"]).to_numpy(),
                           index=_id(products["product_id"])).groupby(level=0).first()
        category = _id(o["product_id"]).map(lookup)
    if category is not None:
        bought = o.loc[(gross > 0).to_numpy() & category.notna().to_numpy(),
                       ["customer_id", "age"]].assign(category=category)
        pairs_ever = bought[["customer_id", "category"]].drop_duplicates()
        pairs = bought.loc[bought["age"] < 12, ["customer_id", "category"]].drop_duplicates()
        out["categories_12m"] = pairs.groupby("customer_id", observed=False).size()
        out["categories_ever"] = pairs_ever.groupby("customer_id", observed=False).size()
        owners = pairs_ever.groupby("category", observed=True)["customer_id"]
        for name, buyers in sorted(owners, key=lambda item: item[0]):
            out[f"owns__{name}"] = out.index.isin(buyers)
        industry = (attrs["industry"] if attrs is not None and "industry" in attrs.columns
                    else pd.Series(pd.NA, index=customers, dtype="str"))
        group = industry.fillna("\0null")  # null industry (or none known): a group of its own
        pairs = pairs.assign(group=group.to_numpy()[pairs["customer_id"].cat.codes])
        rate = pairs.groupby(["group", "category"]).size().rename("buyers").reset_index()
        rate["rate"] = rate["buyers"] / rate["group"].map(group.value_counts())
        total = rate.groupby("group")["rate"].sum()
        owned = (pairs.merge(rate, on=["group", "category"], how="left")
                 .groupby("customer_id", observed=False)["rate"].sum())
        out["white_space_12m"] = group.map(total).fillna(0.0).to_numpy() - owned

    # ---- static attributes
    if attrs is not None:
        out = out.join(attrs)
    out = out.reset_index()
    out["customer_id"] = out["customer_id"].astype("str")
    out.insert(1, "as_of", as_of)
    return out


def _margins(o: pd.DataFrame, products: pd.DataFrame | None, invoices: pd.DataFrame | None,
             interactions: pd.DataFrame | None, complaints: pd.DataFrame | None,
             customers: pd.Index, costs, grid: Grid, has_discount: bool  # noqa: ANN001
             ) -> pd.DataFrame:
    """``customer_margins`` for the eligible customers (whose lines ``o`` lie in its window)."""
    start, asof = grid.edge(12), grid.as_of
    fallback = o["gross_amount"] * (1 - costs.default_gross_margin)
    if "cost_amount" in o.columns:
        cogs = o["cost_amount"].fillna(fallback)
    elif (products is not None and "unit_cost" in products.columns
          and {"product_id", "quantity"} <= set(o.columns)):
        unit = pd.Series(_amount(products["unit_cost"]).to_numpy(),
                         index=_id(products["product_id"]))
        cogs = (o["quantity"] * _id(o["product_id"]).map(unit)).fillna(fallback)
    else:
        cogs = fallback
    lines = pd.DataFrame({
        "customer_id": o["customer_id"],
        "order_key": o["order_key"] if "order_key" in o.columns else np.arange(len(o)),
        "order_date": o["order_date"],
        "gross": o["gross_amount"],
        "discount": o["discount_amount"] if has_discount else 0.0,
        "cogs": cogs})
    # as customer_margins: an order is the lines of one customer, order id and date
    per_order = lines.groupby(["customer_id", "order_key", "order_date"], observed=True).agg(
        gross=("gross", "sum"), discount=("discount", "sum"), cogs=("cogs", "sum"),
        n_lines=("gross", "size"))
    net = (per_order["gross"] - per_order["discount"]).round(2)  # in cents, as the engine
    per_order["n_franco"] = ((net > 0) & (net < costs.franco_threshold)).astype("int64")
    per_order["n_orders"] = 1
    t = per_order.groupby("customer_id", observed=False)[
        ["gross", "discount", "cogs", "n_lines", "n_franco", "n_orders"]].sum()

    def window(df: pd.DataFrame | None, date: str) -> pd.DataFrame | None:
        if df is None:
            return None
        df = _only(df, customers)
        return df[(df[date] > start) & (df[date] <= asof)]

    inv = window(invoices, "invoice_date")
    if inv is not None:
        parts = {"n_invoices": np.ones(len(inv), dtype="int64")}
        if {"due_date", "paid_date"} <= set(inv.columns):
            due, paid = _date(inv["due_date"]), _date(inv["paid_date"])
            settled = paid.fillna(asof).clip(upper=asof)
            late = _days(settled, due).clip(lower=0).fillna(0)
            # a reminder at each period end after the due date and before the payment
            ends = grid.ends
            before_paid = np.searchsorted(ends, paid.fillna(pd.Timestamp.max).to_numpy()
                                          .astype("datetime64[ms]"), side="left")
            after_due = np.searchsorted(ends, due.to_numpy().astype("datetime64[ms]"),
                                        side="right")
            sent = np.clip(before_paid - after_due, 0, costs.max_reminders)
            sent = np.where(due.notna() & (_amount(inv["amount"]) > 0), sent, 0)
            parts["interest"] = (_amount(inv["amount"]).clip(lower=0).fillna(0) * late
                                 * (costs.late_payment_interest_per_year / 365)
                                 + sent * costs.per_reminder)
        t = t.join(pd.DataFrame(parts, index=inv.index)
                   .groupby(inv["customer_id"], observed=False).sum())
    x = window(interactions, "date")
    if x is not None:
        kind = _text(x["kind"]).str.lower()
        t = t.join(pd.DataFrame({
            "n_visits": kind.isin([k.lower() for k in costs.visit_kinds]).astype("int64"),
            "n_calls": kind.isin([k.lower() for k in costs.call_kinds]).astype("int64"),
        }).groupby(x["customer_id"], observed=False).sum())
    c = window(complaints, "opened_on")
    if c is not None:
        t["n_complaints"] = c.groupby("customer_id", observed=False).size()

    rates = {"orders": costs.per_order, "order_lines": costs.per_order_line,
             "invoices": costs.per_invoice, "franco": costs.per_franco_shipment,
             "visits": costs.per_visit, "calls": costs.per_call,
             "complaints": costs.per_complaint, "late_payment": 1.0}
    m = pd.DataFrame(index=t.index)
    for driver, column in DRIVERS.items():
        if column in t.columns:
            m[f"cost_{driver}"] = t[column].astype("float64") * rates[driver]
    revenue, discounts = t["gross"], t["discount"]
    m["cost_to_serve"] = m.sum(axis=1)
    m["gross_margin"] = revenue - discounts - t["cogs"]
    m["net_margin"] = m["gross_margin"] - m["cost_to_serve"]
    m["net_margin_pct"] = (m["net_margin"] / revenue).where(revenue > 0)
    warranted = np.select([revenue >= b.min_turnover for b in reversed(costs.discount_bands)],
                          [b.discount for b in reversed(costs.discount_bands)], 0.0)
    m["stale_discount"] = (discounts - warranted * revenue).clip(lower=0).where(revenue > 0)
    return m


def _customers(folder: Path, cfg: Config, customers: pd.Index, asof: pd.Timestamp
               ) -> pd.DataFrame | None:
    """The static attributes of the eligible customers (protected attributes left out)."""
    file = folder / "customers.parquet"
    if not file.exists():
        return None
    protected = {p.strip().lower() for p in cfg.contract.protected_attributes}
    names = [re.sub(r"\s+", "_", n.strip().lower()) for n in pq.read_schema(file).names]
    wanted = [n for n in names if n not in protected and n not in NEVER_FEATURES]
    cu = _read(folder, "customers", ["customer_id", *wanted])
    cu["customer_id"] = _id(cu["customer_id"])
    cu = cu[cu["customer_id"].notna()].drop_duplicates("customer_id").set_index("customer_id")
    for c in ("industry", "region"):
        if c in cu.columns:
            cu[c] = _text(cu[c])
    if "strategic" in cu.columns:
        cu["strategic"] = _flag(cu["strategic"])
    if "acquired_on" in cu.columns:
        acquired = _date(cu.pop("acquired_on"))
        cu["account_age_days"] = _days(asof, acquired).where(acquired <= asof).astype("Int64")
    return cu.reindex(customers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("as_of", type=dt.date.fromisoformat)
    parser.add_argument("--out", type=Path, help="write the table as Parquet")
    args = parser.parse_args()
    started = time.perf_counter()
    table = features_pandas(args.folder, args.as_of, load_config())
    print(f"{len(table):,} customers x {table.shape[1]} columns in "
          f"{time.perf_counter() - started:.2f} s")
    if args.out:
        table.to_parquet(args.out, index=False)
    print(table.head().T.to_string())


if __name__ == "__main__":
    main()
