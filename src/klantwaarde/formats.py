"""The decimal separator and the date format of a CSV file, decided from all of its values.

``decimal_separator`` and ``date_format`` in source.yaml fix them for every CSV file. With
``auto`` each file is looked at as a whole, in one aggregate query over the text of its amount,
number and date columns; a file that can be read two ways is refused, never guessed.

Numbers. A value that is a number under one decimal separator only (``12,50``, ``1.234,5``,
``1.234.567`` under a comma; ``12.50``, ``1,234.5``, ``0.125`` under a point) is evidence for it.
A value that is a number under both, with different values, has one separator followed by three
digits (``2.346``, ``1,500``). Where no value decides, a column still can: one that holds
``12.000`` next to whole numbers groups thousands (fixed decimals would write ``150.000``), and one
that holds ``2.346`` next to ``1500`` does not (an export that groups thousands writes ``1.500``).
Evidence for both separators is an error naming example rows; no evidence while some value reads
two ways is an error naming the values and the setting that decides.

Dates. Each value's shape (``2024-03-31``, ``31-03-2024``, ``31.03.2024``, ``31/03/2024``) is
counted and the most common one is the file's format; values of another shape are then reported
by validation. Slashes are day first when some first number is above 12, month first when some
second one is; when no number is, the file is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import ibis
import ibis.expr.types as ir

from klantwaarde.config import SourceConfig
from klantwaarde.contract import Kind, TableSpec
from klantwaarde.errors import InputError
from klantwaarde.typed import DATE_FORMATS, Formats, number_pattern

_CONFIG = "in source.yaml of your --config folder"
_DECIMAL_NAME = {".": "decimal point, comma as thousands separator",
                 ",": "decimal comma, dot as thousands separator"}
_NO_SEPARATORS = "numbers without decimal or thousands separators"

# what a number value shows; 0: nothing (blank, zero, not a number)
POINT, COMMA, DOT3, DOT3_ROUND, COMMA3, COMMA3_ROUND, WHOLE, WHOLE_LONG = range(1, 9)
_AMBIGUOUS = r"^\s*[-+]?[1-9]\d{0,2}[.,]\d{3}\s*$"  # a number under either separator
_FEW_DECIMALS = r"^\s*[-+]?\d+[.,]\d{1,2}\s*$"  # a number under one separator only: 12.5, 12,50

# the shape of a date value; 0: none of these
ISO, DASH, DOT, SLASH, SLASH_DAY_FIRST, SLASH_MONTH_FIRST = range(1, 7)
_MONTH = r"(0?[1-9]|1[0-2])"  # a number that can be a month
_LATE = r"(1[3-9]|2\d|3[01])"  # one that can only be a day
_END = r"(\s|$)"  # the date ends, or a time follows
_SHAPES = {
    ISO: r"^\s*\d{4}-\d{1,2}-\d{1,2}([ T]|\s*$)",
    DASH: rf"^\s*\d{{1,2}}-\d{{1,2}}-\d{{4}}{_END}",
    DOT: rf"^\s*\d{{1,2}}\.\d{{1,2}}\.\d{{4}}{_END}",
}
_SLASH = rf"^\s*\d{{1,2}}/\d{{1,2}}/\d{{4}}{_END}"
_SLASHES = {
    SLASH_DAY_FIRST: rf"^\s*{_LATE}/{_MONTH}/\d{{4}}{_END}",
    SLASH_MONTH_FIRST: rf"^\s*{_MONTH}/{_LATE}/\d{{4}}{_END}",
}


def read_formats(table: ir.Table, spec: TableSpec, origin: str,
                 cfg: SourceConfig) -> tuple[Formats, str]:
    """The formats of one CSV file (its text columns, renamed to the contract) and a line that
    says how its numbers and dates are read, for ``validate``."""
    numbers = _text_columns(table, spec, (Kind.AMOUNT, Kind.NUMBER))
    dates = _text_columns(table, spec, (Kind.DATE,))
    auto_numbers = cfg.decimal_separator == "auto" and bool(numbers)
    auto_dates = cfg.date_format == "auto" and bool(dates)
    found = _Found(table, spec.name, origin, _counts(
        table, {f"n_{c}": (_number_kind(table[c]), WHOLE_LONG) for c in numbers if auto_numbers}
        | {f"d_{c}": (_date_shape(table[c]), SLASH_MONTH_FIRST) for c in dates if auto_dates}))
    decimal = "." if cfg.decimal_separator == "auto" else cfg.decimal_separator
    date = "YYYY-MM-DD" if cfg.date_format == "auto" else cfg.date_format
    reading = []
    if numbers and auto_numbers:
        decimal, seen = found.decimal(numbers)
        reading.append(f"{_DECIMAL_NAME[decimal] if seen else _NO_SEPARATORS} (auto)")
    elif numbers:
        reading.append(f"{_DECIMAL_NAME[decimal]} (decimal_separator in source.yaml)")
    if dates:
        how = "(date_format in source.yaml)"
        if auto_dates:
            date, how = found.date_format(dates), "(auto)"
        reading.append(f"dates {date} {how}")
    return Formats(decimal, date), "; ".join(reading)  # type: ignore[arg-type]


def _counts(table: ir.Table, codes: dict[str, tuple[ir.IntegerColumn, int]]) -> dict[str, int]:
    """``{name}_{code}``: the number of values of each code, in one pass over the table."""
    if not codes:
        return {}
    coded = table.select(**{name: code for name, (code, _) in codes.items()})
    found = coded.aggregate(**{f"{name}_{k}": (coded[name] == k).sum()
                               for name, (_, last) in codes.items() for k in range(1, last + 1)})
    return {k: v or 0 for k, v in found.to_pyarrow().to_pylist()[0].items()}



def _text_columns(table: ir.Table, spec: TableSpec, kinds: Iterable[Kind]) -> list[str]:
    return [c.name for c in spec.columns if c.kind in kinds and c.name in table.columns
            and table[c.name].type().is_string()]


def _number_kind(v: ir.StringColumn) -> ir.IntegerColumn:
    """What the value shows about the decimal separator (the codes above). The common values
    (whole numbers, one or two decimals) are told apart first, with the cheapest tests."""
    whole = v.try_cast("int64")
    round_ = v.re_search(r"0\s*$")
    return ibis.cases(
        (~(v.contains(".") | v.contains(",")),
         ibis.cases((whole.abs() >= 1000, WHOLE_LONG), (whole != 0, WHOLE), else_=0)),
        (v.re_search(_FEW_DECIMALS), ibis.cases((v.contains("."), POINT), else_=COMMA)),
        (v.re_search(_AMBIGUOUS),
         ibis.cases((v.contains(".") & round_, DOT3_ROUND), (v.contains("."), DOT3),
                    (round_, COMMA3_ROUND), else_=COMMA3)),
        (v.re_search(number_pattern(".")), POINT),
        (v.re_search(number_pattern(",")), COMMA),
        else_=0,
    )


def _date_shape(v: ir.StringColumn) -> ir.IntegerColumn:
    """The shape of the value (the codes above)."""
    slash = ibis.cases(*((v.re_search(p), code) for code, p in _SLASHES.items()), else_=SLASH)
    return ibis.cases(*((v.re_search(p), code) for code, p in _SHAPES.items()),
                      (v.re_search(_SLASH), slash), else_=0)


@dataclass(frozen=True)
class _Vote:
    """Evidence for a decimal separator: the values of ``column`` with these ``kinds``."""

    decimal: str
    column: str
    kinds: tuple[int, ...]
    shows: str


@dataclass(frozen=True)
class _Found:
    """The counts of one file's values per column and kind, and the decisions taken on them."""

    table: ir.Table
    name: str
    origin: str
    counts: dict[str, int]

    def n(self, prefix: str, column: str, *kinds: int) -> int:
        return sum(self.counts.get(f"{prefix}_{column}_{k}", 0) for k in kinds)

    def decimal(self, columns: list[str]) -> tuple[str, bool]:
        """The decimal separator, and whether any value has a separator at all."""
        votes = [vote for c in columns for vote in self._votes(c)]
        if {v.decimal for v in votes} == {".", ","}:
            raise InputError(self._mixed(votes))
        if votes:
            return votes[0].decimal, True
        twofold = [c for c in columns if self.n("n", c, DOT3, DOT3_ROUND, COMMA3, COMMA3_ROUND)]
        if twofold:
            raise InputError(self._ambiguous_numbers(twofold))
        return ".", False

    def _votes(self, c: str) -> Iterable[_Vote]:
        if self.n("n", c, POINT):
            yield _Vote(".", c, (POINT,), "a decimal point")
        if self.n("n", c, COMMA):
            yield _Vote(",", c, (COMMA,), "a decimal comma")
        whole, long = self.n("n", c, WHOLE, WHOLE_LONG), self.n("n", c, WHOLE_LONG)
        for sep, other, three, round_ in ((".", ",", DOT3, DOT3_ROUND),
                                          (",", ".", COMMA3, COMMA3_ROUND)):
            if self.n("n", c, round_) and whole:  # sep groups thousands: the other is decimal
                yield _Vote(other, c, (round_, WHOLE, WHOLE_LONG),
                            f"'{sep}' grouping thousands (values such as 12{sep}000 next to "
                            "whole numbers)")
            if self.n("n", c, three, round_) and long:  # sep is the decimal separator
                yield _Vote(sep, c, (three, round_, WHOLE_LONG),
                            f"a decimal '{sep}' (values such as 2{sep}346 next to whole numbers "
                            "of four digits or more, which are not grouped)")

    def _mixed(self, votes: list[_Vote]) -> str:
        shown = []
        for vote in votes:
            rows = self.table.filter(_number_kind(self.table[vote.column]).isin(vote.kinds))
            text = rows.limit(3).to_pandas().to_string(index=False, max_colwidth=40, na_rep="")
            shown.append(f"{vote.column} shows {vote.shows}:\n    "
                         + text.replace("\n", "\n    "))
        return (f"Table {self.name} ({self.origin}) writes numbers with a decimal point in some "
                "rows and a decimal comma in others, so no single reading of the file is right.\n  "
                + "\n  ".join(shown) + "\nFix: write every number of the file the same way, or "
                "set `decimal_separator: \",\"` or `decimal_separator: \".\"` "
                f"{_CONFIG}; validate then lists the values written the other way.")

    def _ambiguous_numbers(self, columns: list[str]) -> str:
        examples = {c: self._values(_number_kind(self.table[c]),
                                    (DOT3, DOT3_ROUND, COMMA3, COMMA3_ROUND), c)
                    for c in columns}
        first = next(iter(examples.values()))[0]
        shown = "; ".join(f"{c}: {', '.join(repr(v) for v in vs)}" for c, vs in examples.items())
        return (f"Table {self.name} ({self.origin}): the numbers of {', '.join(columns)} read two "
                "ways. Every value with a separator has exactly three digits after it "
                f"({shown}), so {first!r} is {_number(first, ',')} when the decimal separator "
                f"is a comma and {_number(first, '.')} when it is a point, and no value in the "
                "file tells which. Fix: set `decimal_separator: \",\"` (decimal comma, dot as "
                "thousands separator) or `decimal_separator: \".\"` (decimal point, comma as "
                f"thousands separator) {_CONFIG}.")

    def date_format(self, columns: list[str]) -> str:
        """The date format: the most common shape; slashes by the numbers above 12."""
        def total(*kinds: int) -> int:
            return sum(self.n("d", c, *kinds) for c in columns)

        found = {"YYYY-MM-DD": total(ISO), "DD-MM-YYYY": total(DASH), "DD.MM.YYYY": total(DOT),
                 "DD/MM/YYYY": total(SLASH, SLASH_DAY_FIRST),
                 "MM/DD/YYYY": total(SLASH, SLASH_MONTH_FIRST)}
        best = max(found, key=lambda f: found[f])  # the first of equals: ISO, day first
        if "/" in best and not total(SLASH_DAY_FIRST, SLASH_MONTH_FIRST):
            raise InputError(self._ambiguous_dates([c for c in columns if self.n("d", c, SLASH)]))
        return best

    def _ambiguous_dates(self, columns: list[str]) -> str:
        examples = {c: self._values(_date_shape(self.table[c]), (SLASH,), c) for c in columns}
        first = next(iter(examples.values()))[0]
        shown = "; ".join(f"{c}: {', '.join(repr(v) for v in vs)}" for c, vs in examples.items())
        return (f"Table {self.name} ({self.origin}): the dates of {', '.join(columns)} read two "
                "ways. No number before or after the first slash is above 12 "
                f"({shown}), so {first!r} is {_day(first, 'DD/MM/YYYY')} when the day comes "
                f"first and {_day(first, 'MM/DD/YYYY')} when the month does. Fix: set "
                "`date_format: DD/MM/YYYY` (day first) or `date_format: MM/DD/YYYY` (month "
                f"first) {_CONFIG}.")

    def _values(self, kind: ir.IntegerColumn, kinds: tuple[int, ...], column: str) -> list[str]:
        """A few distinct values of ``column`` with these kinds."""
        values = self.table.filter(kind.isin(kinds)).select(v=self.table[column]).distinct()
        return sorted(values.limit(3).to_pyarrow().column("v").to_pylist())


def _number(value: str, decimal: str) -> str:
    thousands = "," if decimal == "." else "."
    return str(Decimal(value.strip().replace(thousands, "").replace(decimal, ".")))


def _day(value: str, date_format: str) -> str:
    day = dt.datetime.strptime(value.split()[0], DATE_FORMATS[date_format] or "")
    return f"{day.day} {day:%B} {day.year}"
