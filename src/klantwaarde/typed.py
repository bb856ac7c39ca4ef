"""Engine expressions that turn a raw column into its contract type.

Values that cannot be converted become null: validation counts them (raw value present, typed value
null) and every later step reads the typed view. Dates and numbers are cast from the text as it
is: the engine's cast skips surrounding whitespace and makes a blank null, and trimming every value
first would double the cost of reading a large CSV.

How a file writes its numbers and dates (``Formats``) is decided once, when the source is opened
(``klantwaarde.formats``). A number is read with one decimal separator; the other of ``.`` and
``,`` is then a thousands separator that must group by threes (``1.234,50`` or ``1,234.50``), so a
value such as ``12.5`` under a decimal comma is not a number rather than 125.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from klantwaarde.contract import Kind, TableSpec

_FLAG_TEXT = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
              "y": True, "n": False, "ja": True, "nee": False, "j": True}

# date_format of source.yaml → the engine's strptime format (None: the engine's own ISO cast,
# which also cuts a timestamp to its date)
DATE_FORMATS: dict[str, str | None] = {
    "YYYY-MM-DD": None,
    "DD-MM-YYYY": "%d-%m-%Y",
    "DD.MM.YYYY": "%d.%m.%Y",
    "DD/MM/YYYY": "%d/%m/%Y",
    "MM/DD/YYYY": "%m/%d/%Y",
}


@dataclass(frozen=True)
class Formats:
    """How one file writes numbers and dates as text: the decimal separator (the other of ``.``
    and ``,`` separates thousands) and the date format (a key of ``DATE_FORMATS``)."""

    decimal: Literal[".", ","] = "."
    date: str = "YYYY-MM-DD"


ISO_POINT = Formats()  # the formats of typed sources and the default: ISO dates, decimal point


def number_pattern(decimal: str, grouped_only: bool = False) -> str:
    """The pattern of a number under ``decimal``: with thousands separators that group by threes
    (1,234,567.5 under a point, 1.234.567,5 under a comma; at most three digits first, no leading
    zero), or, unless ``grouped_only``, without them (1234567.5, .5)."""
    dec, thousands = re.escape(decimal), re.escape("," if decimal == "." else ".")
    body = rf"[1-9]\d{{0,2}}({thousands}\d{{3}})+({dec}\d+)?"
    if not grouped_only:
        body = rf"\d+({dec}\d+)?|{dec}\d+|{body}"
    return rf"^\s*[-+]?({body})\s*$"


_GROUPED = {decimal: number_pattern(decimal, grouped_only=True) for decimal in (".", ",")}


@ibis.udf.scalar.builtin(name="try_strptime",
                          signature=((dt.string, dt.Array(dt.string)), dt.timestamp))
def _try_strptime(text, formats):
    """DuckDB's try_strptime: a timestamp, null where no format fits."""


def typed_column(col: ir.Column, kind: Kind, formats: Formats = ISO_POINT) -> ir.Column:
    """The expression that reads ``col`` as ``kind``; null where the value does not convert."""
    dtype = col.type()
    if kind is Kind.ID or kind is Kind.TEXT:
        return col.cast("string").strip().nullif("")
    if kind is Kind.DATE:
        if dtype.is_date():
            return col
        if dtype.is_timestamp():
            return col.date()
        return _date(col.cast("string"), formats.date)
    if kind in (Kind.AMOUNT, Kind.NUMBER):
        if dtype.is_numeric():
            return col.cast("float64")
        return _number(col.cast("string"), formats.decimal)
    if kind is Kind.FLAG:
        if dtype.is_boolean():
            return col
        return col.cast("string").strip().lower().substitute(_FLAG_TEXT, else_=ibis.null("boolean"))
    raise ValueError(f"unknown kind {kind}")


def _number(text: ir.StringColumn, decimal: str) -> ir.FloatingColumn:
    """A number under ``decimal``: a value without thousands separator is cast as it is (a decimal
    comma made a point); one with them only when they group by threes."""
    thousands = "," if decimal == "." else "."
    plain, grouped = text, text.replace(thousands, "")
    if decimal == ",":
        plain, grouped = text.replace(",", "."), grouped.replace(",", ".")
    read = ibis.cases((~text.contains(thousands), plain),
                      (text.re_search(_GROUPED[decimal]), grouped), else_=ibis.null("string"))
    return read.try_cast("float64")


def _date(text: ir.StringColumn, date_format: str) -> ir.DateColumn:
    """A date in ``date_format``; with a time after it (``31-03-2024 10:30``) the time is dropped.
    A year of fewer than four digits (``31-03-24``) is not a date: it would read as the year 24."""
    pattern = DATE_FORMATS[date_format]
    if pattern is None:
        return text.try_cast("date")
    day = _try_strptime(text, ibis.literal([pattern, f"{pattern} %H:%M",
                                            f"{pattern} %H:%M:%S"])).date()
    return ibis.cases((day.year() >= 1000, day), else_=ibis.null("date"))


def typed_table(raw: ir.Table, spec: TableSpec, formats: Formats) -> ir.Table:
    """The raw table with every contract column converted; other columns pass through."""
    return raw.mutate(**{
        c.name: typed_column(raw[c.name], c.kind, formats)
        for c in spec.columns if c.name in raw.columns
    })


def ones(flag: ir.BooleanValue, dtype: str = "int64") -> ir.NumericValue:
    """1 where ``flag`` holds, 0 where it does not or is null: a flag to count or average. A
    CASE rather than a cast of the flag, which PostgreSQL refuses from boolean to bigint or
    double; the CASE is cast, as PostgreSQL reads a literal 1.0 as a decimal, not a double."""
    return ibis.ifelse(flag, 1, 0).cast(dtype)


_BLANKS = (" ", "\t", "\n", "\r", "\x0b", "\x0c")


def typed_events(raw: ir.Table, spec: TableSpec, formats: Formats) -> ir.Table:
    """An event table for aggregation: dates, amounts, numbers and flags typed, text as given,
    rows without a customer id dropped. Text ids are trimmed only when some id starts or ends
    with a blank: trimming every row of a large table costs more than the aggregations that
    follow, and looking at the first and last character costs little."""
    t = raw.mutate(**{c.name: typed_column(raw[c.name], c.kind, formats)
                      for c in spec.columns
                      if c.name in raw.columns and c.kind not in (Kind.ID, Kind.TEXT)})
    ids = t.customer_id
    if not ids.type().is_string() or t.filter(_untrimmed(ids)).count().execute():
        t = t.mutate(customer_id=typed_column(ids, Kind.ID))
    return t.filter(t.customer_id.notnull())


def _untrimmed(text: ir.StringColumn) -> ir.BooleanColumn:
    """Blank, or starting or ending with a blank (a control character counts as one)."""
    ends = [text.endswith(blank) for blank in _BLANKS]
    return (text.ascii_str() <= 32) | ibis.or_(*ends)


def means_one_of(column: ir.Column, wanted: list[str]) -> ir.BooleanColumn:
    """Whether a text value means one of ``wanted`` once trimmed and lower-cased: decided on the
    column's distinct values, which is cheaper than typing every row."""
    wanted_set = {w.strip().lower() for w in wanted}
    found = column.name("value_").as_table().distinct().to_pyarrow().column(0).to_pylist()
    values = [v for v in found if v is not None and str(v).strip().lower() in wanted_set]
    return column.isin(values) if values else column.isnull() & ibis.literal(False)
