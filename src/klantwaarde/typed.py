"""Engine expressions that turn a raw column into its contract type.

Values that cannot be converted become null: validation counts them (raw value present, typed value
null) and every later step reads the typed view. Dates and numbers are cast from the text as it
is: the engine's cast skips surrounding whitespace and makes a blank null, and trimming every value
first would double the cost of reading a large CSV.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from klantwaarde.contract import Kind, TableSpec

_FLAG_TEXT = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False,
              "y": True, "n": False, "ja": True, "nee": False, "j": True}


def typed_column(col: ir.Column, kind: Kind, decimal_comma: bool = False) -> ir.Column:
    """The expression that reads ``col`` as ``kind``; null where the value does not convert."""
    dtype = col.type()
    if kind is Kind.ID or kind is Kind.TEXT:
        return col.cast("string").strip().nullif("")
    if kind is Kind.DATE:
        if dtype.is_date():
            return col
        if dtype.is_timestamp():
            return col.date()
        return col.cast("string").try_cast("date")
    if kind in (Kind.AMOUNT, Kind.NUMBER):
        if dtype.is_numeric():
            return col.cast("float64")
        text = col.cast("string")
        if decimal_comma:
            text = ibis.ifelse(text.contains(","), text.replace(".", "").replace(",", "."), text)
        return text.try_cast("float64")
    if kind is Kind.FLAG:
        if dtype.is_boolean():
            return col
        return col.cast("string").strip().lower().substitute(_FLAG_TEXT, else_=ibis.null("boolean"))
    raise ValueError(f"unknown kind {kind}")


def typed_table(raw: ir.Table, spec: TableSpec, decimal_comma: bool = False) -> ir.Table:
    """The raw table with every contract column converted; other columns pass through."""
    return raw.mutate(**{
        c.name: typed_column(raw[c.name], c.kind, decimal_comma)
        for c in spec.columns if c.name in raw.columns
    })


_BLANKS = (" ", "\t", "\n", "\r", "\x0b", "\x0c")


def typed_events(raw: ir.Table, spec: TableSpec, decimal_comma: bool = False) -> ir.Table:
    """An event table for aggregation: dates, amounts, numbers and flags typed, text as given,
    rows without a customer id dropped. Text ids are trimmed only when some id starts or ends
    with a blank: trimming every row of a large table costs more than the aggregations that
    follow, and looking at the first and last character costs little."""
    t = raw.mutate(**{c.name: typed_column(raw[c.name], c.kind, decimal_comma)
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
