"""Check a source against the data contract, inside the engine.

Each contract table compiles to row rules (an engine expression marking the offending rows).
They are counted in few passes: the table is grouped once by its event date (which also gives the
data's horizon) and once by each id column it refers with, and a rule on a grouped column is
evaluated on the distinct values, not on every row; the other rules are summed in the first
grouped pass. Uniqueness of keys is checked with pandera's Ibis backend. DuckDB, or any other Ibis
engine, does the work: no table is loaded into pandas, only the counts and the few example rows of
a failed rule travel to Python.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import pandera.ibis as pa

from klantwaarde.config import Config
from klantwaarde.contract import TABLES, ColumnSpec, Kind, TableSpec
from klantwaarde.errors import InputError
from klantwaarde.recorded import with_recorded_contacts
from klantwaarde.sources import RawTable, Source, open_source
from klantwaarde.typed import DATE_FORMATS, ISO_POINT, Formats, ones, typed_column

_SET_IN_CONFIG = "in source.yaml of your --config folder"


def _conversion(kind: Kind, formats: Formats) -> tuple[str, str]:
    """What is wrong with a value that does not convert to ``kind``, and the fix."""
    if kind is Kind.DATE:
        example = dt.date(2024, 3, 31).strftime(DATE_FORMATS[formats.date] or "%Y-%m-%d")
        problem = ("not an ISO date (YYYY-MM-DD)" if formats.date == "YYYY-MM-DD"
                   else f"not a date in the form {formats.date}")
        return problem, (f"write every date of the file as {formats.date} (e.g. {example}), or "
                         "set `date_format` (YYYY-MM-DD, DD-MM-YYYY, DD.MM.YYYY, DD/MM/YYYY or "
                         f"MM/DD/YYYY) {_SET_IN_CONFIG} to the one the file uses")
    if kind is Kind.FLAG:
        return "not a yes/no value", "use true/false, 1/0, yes/no or ja/nee"
    point = formats.decimal == "."
    numbers = "1234.50 or 1,234.50" if point else "1234,50 or 1.234,50"
    name = "decimal point" if point else "decimal comma"
    return "not a number", (f"write numbers such as {numbers} (no currency signs or text, "
                            f"thousands grouped by threes): the file is read with a {name}; if "
                            "it uses the other, set `decimal_separator` to \".\" or \",\" "
                            f"{_SET_IN_CONFIG}")


def _non_finite(col: ColumnSpec) -> tuple[str, str]:
    """What is wrong with NaN or infinity in an amount or number column, and the fix."""
    noun = "amount" if col.kind is Kind.AMOUNT else "number"
    fix = ("write the real value (this required column cannot be left empty), or drop those rows "
           "in the export" if col.required
           else "write the real value, or leave the cell empty if it is unknown")
    return f"not a finite {noun} (NaN or infinity)", (
        f"{fix}; NaN is how an export writes a missing value, infinity a division by zero")


@dataclass(frozen=True)
class Finding:
    """One violation of the contract: where, how many rows, what is wrong and how to fix it."""

    table: str
    column: str | None
    problem: str
    fix: str
    rows: int | None = None
    examples: str = ""  # a few offending rows, formatted as a small table

    @property
    def where(self) -> str:
        return f"{self.table}.{self.column}" if self.column else self.table


@dataclass(frozen=True)
class TableSummary:
    """What was found in one contract table."""

    spec: TableSpec
    origin: str
    rows: int
    customers: int | None
    first_date: dt.date | None
    last_date: dt.date | None
    absent_columns: tuple[ColumnSpec, ...]
    extra_columns: tuple[str, ...]
    protected_columns: tuple[str, ...]


@dataclass
class ValidationReport:
    """The outcome of validating a source."""

    location: str
    summaries: list[TableSummary] = field(default_factory=list)
    absent_tables: list[TableSpec] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    readings: list[str] = field(default_factory=list)  # how each CSV file's text is read
    errors: list[Finding] = field(default_factory=list)
    horizon: tuple[dt.date, dt.date] | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


class InvalidSourceError(InputError):
    """A source that does not meet the data contract; ``report`` holds every finding."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(f"{report.location} does not meet the data contract "
                         f"({len(report.errors)} problem(s)); klantwaarde validate --source "
                         f"{report.location} lists them with their fixes.")
        self.report = report


def open_valid_source(src: str, config: Config,
                      step: Callable[[str], None] = lambda _: None) -> Source:
    """Open ``src`` and check it against the data contract; InvalidSourceError if it fails.
    The contacts recorded on the account managers' page join its interactions
    (``klantwaarde.recorded``)."""
    step("opening the source")
    source = open_source(src, config.source)
    report = validate_source(source, config, step)
    if not report.ok:
        raise InvalidSourceError(report)
    return with_recorded_contacts(source, config)


@dataclass(frozen=True)
class _Rule:
    """A row-level check: ``bad`` marks the offending rows of the raw table."""

    column: str
    name: str
    bad: Callable[[ir.Table], ir.BooleanColumn]
    problem: str
    fix: str


def validate_source(source: Source, config: Config,
                    step: Callable[[str], None] = lambda _: None) -> ValidationReport:
    """Validate every contract table of ``source``; ``step`` is told what runs (progress)."""
    report = ValidationReport(source.location, notices=list(source.notices),
                              readings=[f"{raw.origin}: {raw.reading}"
                                        for raw in source.tables.values() if raw.reading])
    present = [spec for spec in TABLES if spec.name in source.tables]
    report.absent_tables = [spec for spec in TABLES if spec.name not in source.tables]
    if "orders" not in source.tables:
        report.errors.append(Finding("orders", None, "the required table is missing",
                                     "add orders.csv or orders.parquet to the folder, or a "
                                     "table orders to the database (one row per order line, "
                                     "with customer_id, order_date and gross_amount)"))
        return report

    checkable: list[TableSpec] = []
    for spec in present:
        raw = source.tables[spec.name]
        missing = [c for c in spec.required_columns if c.name not in raw.table.columns]
        report.errors.extend(_missing_column(spec, raw, c) for c in missing)
        if not missing:
            checkable.append(spec)

    with ExitStack() as cached:
        step("reading the dates")
        dates = {spec.name: cached.enter_context(_date_groups(source.tables[spec.name], spec))
                 for spec in present if spec.event_date in source.tables[spec.name].table.columns}
        gap = config.contract.isolated_date_gap_days
        report.horizon = _horizon([(dates[s.name], s.event_date, source.tables[s.name].formats)
                                   for s in checkable if s.name in dates], gap)
        customers = _typed_ids(source, "customers", "customer_id", checkable)
        products = _typed_ids(source, "products", "product_id", checkable)
        for spec in present:
            step(f"checking {spec.name}")
            raw = source.tables[spec.name]
            rules = (list(_rules(spec, raw, report.horizon, gap, customers, products))
                     if spec in checkable else [])
            summary, counts = _scan(raw, spec, rules, dates.get(spec.name), config)
            report.summaries.append(summary)
            if summary.rows == 0:
                report.errors.append(Finding(spec.name, None, f"{raw.origin} has no rows",
                                             "export the table with its rows, or leave the file "
                                             "out if the table is optional"))
                continue
            n = config.contract.example_rows
            report.errors.extend(
                _finding(spec.name, rule.column, rule.problem, rule.fix,
                         raw.table.filter(rule.bad(raw.table)), count, n)
                for rule, count in zip(rules, counts, strict=True) if count
            )
            if spec in checkable and spec.key in raw.table.columns:
                report.errors.extend(_unique_key(spec, raw, n))
    return report


def _date_groups(raw: RawTable, spec: TableSpec) -> ir.Table:
    """The distinct values of the table's event date with their row counts, cached in the engine.

    The horizon, the first and last date and every rule on the event date read these few thousand
    groups instead of the table.
    """
    column = raw.table[spec.event_date]
    return raw.table.group_by(column).aggregate(rows=ibis._.count()).cache()


def _scan(raw: RawTable, spec: TableSpec, rules: list[_Rule], dates: ir.Table | None,
          config: Config) -> tuple[TableSummary, list[int]]:
    """The table's figures and the number of rows each rule rejects, in one pass per id column.

    The first pass groups by the first id column and sums the row rules of the other columns;
    rules on a grouped column (and on the event date, through ``dates``) weigh each distinct value
    by its rows. One query per rule would read (and for CSV, parse) the table again every time.
    """
    table = raw.table
    ids = [c for c in ("customer_id", "product_id") if c in table.columns
           and (c == "customer_id" or any(rule.column == c for rule in rules))]
    grouped = set(ids) | ({spec.event_date} if dates is not None else set())
    per_row = {f"rule_{i}": ones(rule.bad(table)).sum()
               for i, rule in enumerate(rules) if rule.column not in grouped}
    queries = [] if ids else [table.aggregate(rows=table.count(), **per_row)]
    for pass_no, column in enumerate(ids):
        groups = table.group_by(table[column]).aggregate(
            rows=table.count(), **(per_row if pass_no == 0 else {}))
        metrics = _weighted(groups, rules, column)
        if pass_no == 0:
            metrics |= {"rows": groups.rows.sum()} | {k: groups[k].sum() for k in per_row}
        if column == "customer_id":
            metrics["customers"] = typed_column(groups.customer_id, Kind.ID).nunique()
        queries.append(groups.aggregate(**metrics))
    if dates is not None:
        day = typed_column(dates[spec.event_date], Kind.DATE, raw.formats)
        queries.append(dates.aggregate(first=day.min(), last=day.max(),
                                       **_weighted(dates, rules, spec.event_date)))
    values: dict = {}
    for query in queries:
        values |= query.to_pyarrow().to_pylist()[0]
    known = set(spec.column_names)
    protected = {p.lower() for p in config.contract.protected_attributes}
    extra = tuple(c for c in table.columns if c not in known)
    summary = TableSummary(
        spec, raw.origin, values["rows"] or 0, values.get("customers"), values.get("first"),
        values.get("last"),
        absent_columns=tuple(c for c in spec.optional_columns if c.name not in table.columns),
        extra_columns=tuple(c for c in extra if c not in protected),
        protected_columns=tuple(c for c in extra if c in protected),
    )
    return summary, [values[f"rule_{i}"] or 0 for i in range(len(rules))]


def _weighted(groups: ir.Table, rules: list[_Rule], column: str) -> dict[str, ir.Scalar]:
    """Rule counts over distinct values of ``column``: the rows of the groups a rule rejects."""
    return {f"rule_{i}": groups.rows.sum(where=rule.bad(groups))
            for i, rule in enumerate(rules) if rule.column == column}


def _unique_key(spec: TableSpec, raw: RawTable, n_examples: int) -> list[Finding]:
    """Uniqueness of the table's key (as the later steps read it: trimmed text), with pandera."""
    key = spec.key
    ids = typed_column(raw.table[key], Kind.ID)
    schema = pa.DataFrameSchema({key: pa.Column(None, nullable=True)}, name=spec.name,
                                unique=[key])
    try:
        schema.validate(raw.table.select(**{key: ids}), lazy=True)
    except pa.errors.SchemaErrors:
        dup = raw.table.filter(ids.count().over(group_by=ids) > 1)
        count = dup.count().to_pyarrow().as_py()
        return [_finding(spec.name, key, f"a {key} that another row has too; {key} must be "
                         f"unique in {spec.name}", f"keep one row per {key} (merge or drop the "
                         "duplicates)", dup.order_by(typed_column(dup[key], Kind.ID)), count,
                         n_examples)]
    return []


def _missing_column(spec: TableSpec, raw: RawTable, col: ColumnSpec) -> Finding:
    close = difflib.get_close_matches(col.name, raw.table.columns, n=1, cutoff=0.6)
    hint = f"rename column '{close[0]}' to '{col.name}'" if close else f"add column '{col.name}'"
    return Finding(spec.name, col.name, f"required column is missing from {raw.origin} (columns "
                   f"found: {', '.join(raw.table.columns) or 'none'})", hint)


def _horizon(dates: list[tuple[ir.Table, str, Formats]],
             gap_days: int) -> tuple[dt.date, dt.date] | None:
    """The span of the data's body: months with activity, split where a gap exceeds ``gap_days``.

    ``dates`` are the event-date groups of the tables, with the formats of their files. The
    cluster of months holding most events is the body; dates outside it by more than the gap are
    typing errors (2099 for 2009, 1900 defaults), not history.
    """
    counts: dict[dt.date, int] = {}
    for groups, column, formats in dates:
        month = typed_column(groups[column], Kind.DATE, formats).truncate("M")
        per_month = groups.filter(month.notnull()).group_by(month=month).aggregate(
            n=ibis._.rows.sum())
        for row in per_month.to_pyarrow().to_pylist():
            counts[row["month"]] = counts.get(row["month"], 0) + row["n"]
    if not counts:
        return None
    clusters: list[list[dt.date]] = []
    for month in sorted(counts):
        if clusters and (month - clusters[-1][-1]).days <= gap_days:
            clusters[-1].append(month)
        else:
            clusters.append([month])
    body = max(clusters, key=lambda months: sum(counts[m] for m in months))
    last = body[-1]
    month_end = (last.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return body[0], month_end


def _typed_ids(source: Source, table: str, column: str,
               checkable: list[TableSpec]) -> ir.Column | None:
    if table not in {s.name for s in checkable}:
        return None
    raw = source.tables[table].table
    if raw.limit(1).count().to_pyarrow().as_py() == 0:
        return None  # an empty table is reported as such, not as every row's unknown reference
    ids = raw.select(id=typed_column(raw[column], Kind.ID))
    return ids.filter(ids.id.notnull()).id  # NOT IN over a null would hide every unknown id


def _rules(spec: TableSpec, raw: RawTable, horizon: tuple[dt.date, dt.date] | None, gap_days: int,
           customers: ir.Column | None, products: ir.Column | None) -> Iterator[_Rule]:
    for col in (c for c in spec.columns if c.name in raw.table.columns):
        text = _as(col.name, Kind.TEXT)
        typed = _as(col.name, col.kind, raw.formats)
        if col.required:
            empty = text if raw.table[col.name].type().is_string() else _raw(col.name)
            yield _Rule(col.name, "not_null",
                        lambda t, v=empty, w=typed: _when_null(w(t), v(t).isnull()),
                        "no value in this required column",
                        "fill it in for every row, or drop those rows in the export")
        if col.kind not in (Kind.ID, Kind.TEXT) and _needs_conversion(raw.table[col.name],
                                                                      col.kind):
            problem, fix = _conversion(col.kind, raw.formats)
            yield _Rule(col.name, "convertible",
                        lambda t, v=text, w=typed: _when_null(w(t), v(t).notnull()), problem, fix)
        if col.kind in (Kind.AMOUNT, Kind.NUMBER) and _may_be_non_finite(raw.table[col.name]):
            yield _Rule(col.name, "finite", lambda t, w=typed: w(t).isnan() | w(t).isinf(),
                        *_non_finite(col))
        if col.whole:  # NaN and infinity are the finite rule's
            yield _Rule(col.name, "whole",
                        lambda t, w=typed: ~(w(t).isnan() | w(t).isinf())
                        & ((w(t) < 0) | (w(t) % 1 != 0)),
                        "not a whole number of at least 0",
                        "write a count such as 0, 12 or 30 (no fraction, no minus sign), or "
                        "leave the cell empty if it is unknown")
        if col.kind is Kind.DATE and horizon is not None:
            first, last = horizon
            late = last + dt.timedelta(days=gap_days)
            if col.name == spec.event_date:
                early = first - dt.timedelta(days=gap_days)
                yield _Rule(col.name, "within_horizon",
                            lambda t, w=typed, lo=early, hi=late: (w(t) < lo) | (w(t) > hi),
                            f"far outside the data's horizon ({first} to {last}): more than "
                            f"{gap_days} days beyond the other dates",
                            "correct the dates (a typing error such as 2099 for 2019, or a "
                            "placeholder such as 1900-01-01), or drop those rows")
            else:
                yield _Rule(col.name, "within_horizon", lambda t, w=typed, hi=late: w(t) > hi,
                            f"more than {gap_days} days after the data's horizon ({last})",
                            "correct the dates or leave them empty")
    for column, ids, target in (("customer_id", customers, "customers"),
                                ("product_id", products, "products")):
        if ids is None or column not in raw.table.columns or spec.name == target:
            continue
        ids_of = _as(column, Kind.ID)
        yield _Rule(column, "known_" + column, lambda t, v=ids_of, known=ids: v(t).notin(known),
                    f"a {column} that the {target} table lacks",
                    f"add those ids to {target}, or export {spec.name} and {target} from the same "
                    "moment so they match")


def _when_null(typed: ir.Column, test: ir.BooleanColumn) -> ir.BooleanColumn:
    """``test`` on the rows whose typed value is null, false elsewhere.

    A CASE, not an AND: the engine then evaluates ``test`` (which trims text) only on the few
    rows that did not convert, where an AND would evaluate it on every row.
    """
    return ibis.cases((typed.isnull(), test), else_=False)


def _raw(name: str) -> Callable[[ir.Table], ir.Column]:
    return lambda t: t[name]


def _as(name: str, kind: Kind, formats: Formats = ISO_POINT) -> Callable[[ir.Table], ir.Column]:
    """A function giving column ``name`` of a table converted to ``kind``."""
    return lambda t: typed_column(t[name], kind, formats)


def _needs_conversion(col: ir.Column, kind: Kind) -> bool:
    dtype = col.type()
    native = {Kind.DATE: dtype.is_date() or dtype.is_timestamp(),
              Kind.AMOUNT: dtype.is_numeric(), Kind.NUMBER: dtype.is_numeric(),
              Kind.FLAG: dtype.is_boolean()}
    return not native[kind]


def _may_be_non_finite(col: ir.Column) -> bool:
    """Whether the column can hold NaN or infinity: text or floats, not integers or decimals."""
    return col.type().is_string() or col.type().is_floating()


def _finding(table: str, column: str, problem: str, fix: str, bad: ir.Table, rows: int,
             n_examples: int) -> Finding:
    """A finding with the first ``n_examples`` offending rows; floats as the engine writes them,
    so that NaN shows as nan (pandas would print it as an empty cell, like a null)."""
    shown = bad.limit(n_examples)
    shown = shown.mutate(**{c: shown[c].cast("string") for c in shown.columns
                            if shown[c].type().is_floating()})
    examples = shown.to_pandas().to_string(index=False, max_colwidth=40, na_rep="")
    count = "1 row" if rows == 1 else f"{rows:,} rows"
    return Finding(table, column, f"{count}: {problem}", fix, rows, examples)
