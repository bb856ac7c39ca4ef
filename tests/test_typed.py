"""Conversion of raw export values to contract types, inside the engine."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import TESTS
from klantwaarde.config import load_config
from klantwaarde.contract import Kind, table_spec
from klantwaarde.sources import open_source
from klantwaarde.typed import ISO_POINT, Formats, typed_column, typed_table

COMMA = Formats(decimal=",")


def _convert(values: list[str | None], kind: Kind, formats: Formats = ISO_POINT) -> list:
    table = ibis.memtable(pd.DataFrame({"v": pd.Series(values, dtype="object")}))
    return typed_column(table.v, kind, formats).to_pyarrow().to_pylist()


def _dutch(value: float) -> str:
    """1234.5 as a Dutch export writes it: 1.234,50."""
    return f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.decimals(min_value=-10**7, max_value=10**7, places=2, allow_nan=False),
                min_size=1, max_size=20))
def test_amounts_round_trip_under_either_decimal_separator(values: list) -> None:
    floats = [float(v) for v in values]
    assert _convert([_dutch(v) for v in floats], Kind.AMOUNT, COMMA) == floats
    assert _convert([f"{v:.2f}".replace(".", ",") for v in floats], Kind.AMOUNT, COMMA) == floats
    assert _convert([f"{v:,.2f}" for v in floats], Kind.AMOUNT) == floats


def test_values_that_do_not_convert_become_null() -> None:
    assert _convert(["12.5", "EUR 3", " 7 ", ""], Kind.AMOUNT) == [12.5, None, 7.0, None]
    assert _convert(["2024-01-05", "2024-01-05 10:00:00", "05-01-2024", None], Kind.DATE) == [
        dt.date(2024, 1, 5), dt.date(2024, 1, 5), None, None]
    assert _convert(["Ja", "nee", "1", "FALSE", "maybe"], Kind.FLAG) == [
        True, False, True, False, None]
    assert _convert([" C1 ", "", None], Kind.ID) == ["C1", None, None]


def test_semicolon_export_is_typed() -> None:
    cfg = load_config()
    source = open_source(str(TESTS / "good_inputs" / "semicolon_bom_decimal_comma"), cfg.source)
    raw = source.tables["orders"]
    typed = typed_table(raw.table, table_spec("orders"), raw.formats).to_pyarrow()
    assert typed["gross_amount"].to_pylist() == [1234.5, 99.95, -10.0]
    assert typed["discount_amount"].to_pylist() == [12.35, 0.0, 0.0]
    assert typed["order_date"].to_pylist() == [dt.date(2024, 1, 5), dt.date(2024, 2, 5),
                                         dt.date(2024, 3, 5)]
