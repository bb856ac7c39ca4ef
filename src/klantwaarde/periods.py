"""Monthly periods on an anchor day: the grid that every window, snapshot and label is measured on.

A snapshot date ``as_of`` fixes the anchor: its day of the month, or the month end when ``as_of``
is the last day of its month. Period ``P`` ends on the anchor date of month ``P`` (the month's last
day where the anchor day does not exist) and starts just after the anchor date of the month before.
"The last ``w`` months" at ``as_of`` are periods ``P - w + 1 .. P``: the dates after
``months_before(as_of, w)``, up to ``as_of``. A date is on or before ``as_of`` exactly when its
period is at most ``P``, so windows over the monthly panel are exact to the day.
"""

from __future__ import annotations

import calendar
import datetime as dt

import ibis
import ibis.expr.types as ir

from klantwaarde.typed import ones

END = 31  # the anchor of month ends


def _days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def anchor_of(day: dt.date) -> int:
    """The anchor day that ``day`` lies on: its day of the month, or END for a month's last day."""
    return END if day.day == _days_in(day.year, day.month) else day.day


def date_of(period: int, anchor: int) -> dt.date:
    """The last date of ``period``: the anchor day of its month, or the month end."""
    year, month = divmod(period, 12)
    return dt.date(year, month + 1, min(anchor, _days_in(year, month + 1)))


def period_of(day: dt.date, anchor: int) -> int:
    """The period that ``day`` falls in on the grid of ``anchor``."""
    month = day.year * 12 + day.month - 1
    return month + (day.day > min(anchor, _days_in(day.year, day.month)))


def months_before(day: dt.date, months: int) -> dt.date:
    """The date ``months`` periods before ``day`` on the grid of ``day``'s own anchor."""
    anchor = anchor_of(day)
    return date_of(period_of(day, anchor) - months, anchor)


def period_expr(day: ir.DateValue, anchor: int) -> ir.IntegerValue:
    """``period_of`` as an engine expression."""
    month = day.year().cast("int64") * 12 + day.month().cast("int64") - 1
    if anchor == END:
        return month
    if anchor <= 28:  # every month has the anchor day
        return month + ones(day.day() > anchor)
    last = (day.truncate("M") + ibis.interval(months=1) - ibis.interval(days=1)).day()
    return month + ones(day.day() > ibis.least(last, anchor))
