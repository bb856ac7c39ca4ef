"""Numbers and dates of CSV sources: read as the export means them, or refused (exit 2).

The decimal separator and the date format are chosen per file from all of its values (``auto``)
or set in source.yaml; a file that reads two ways is an input error, never a different total.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import EXAMPLE, run_cli
from klantwaarde.config import SourceConfig, load_config
from klantwaarde.contract import Kind, table_spec
from klantwaarde.errors import ConfigError, InputError
from klantwaarde.profitability.margins import customer_margins
from klantwaarde.sources import Source, open_source
from klantwaarde.typed import DATE_FORMATS, Formats, typed_column, typed_table
from klantwaarde.validation import validate_source

DUTCH_WHOLE = """\
customer_id;order_date;gross_amount
C1;05-01-2024;2.346
C2;15-02-2024;150
C1;01-03-2024;12.000
C3;02-03-2024;-1.250
"""


def _cfg(**settings: str) -> SourceConfig:
    return load_config().source.model_copy(update=settings)


def _open(folder: Path, text: str, table: str = "orders", **settings: str) -> Source:
    folder.mkdir(exist_ok=True)
    (folder / f"{table}.csv").write_text(text, encoding="utf-8")
    return open_source(str(folder), _cfg(**settings))


def _typed(source: Source, table: str = "orders") -> dict[str, list]:
    raw = source.tables[table]
    return typed_table(raw.table, table_spec(table), raw.formats).to_pyarrow().to_pydict()


def _csv(header: str, *values: str) -> str:
    return "\n".join([header, *values]) + "\n"


def _orders(amounts: list[str], sep: str = ";") -> str:
    """An orders file with these gross amounts (quoted where they hold the separator)."""
    rows = [sep.join(["C1", "2024-01-05", f'"{a}"' if sep in a else a]) for a in amounts]
    return _csv(sep.join(["customer_id", "order_date", "gross_amount"]), *rows)


@pytest.mark.parametrize("setting", ["auto", ","])
def test_dutch_whole_amounts_read_as_thousands(setting: str, tmp_path: Path) -> None:
    source = _open(tmp_path / "src", DUTCH_WHOLE, decimal_separator=setting)
    typed = _typed(source)
    assert typed["gross_amount"] == [2346.0, 150.0, 12000.0, -1250.0]
    assert typed["order_date"] == [dt.date(2024, 1, 5), dt.date(2024, 2, 15),
                                   dt.date(2024, 3, 1), dt.date(2024, 3, 2)]
    assert source.tables["orders"].formats == Formats(",", "DD-MM-YYYY")


def test_validate_names_the_reading_of_each_file(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "orders.csv").write_text(DUTCH_WHOLE)
    (folder / "products.csv").write_text(_csv("product_id,unit_cost", "P1,12.50"))
    result = run_cli("validate", "--source", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("orders.csv: decimal comma, dot as thousands separator (auto); dates DD-MM-YYYY "
            "(auto)") in result.stdout
    assert "products.csv: decimal point, comma as thousands separator (auto)" in result.stdout


@pytest.mark.parametrize("amounts, expected", [
    # one value with a decimal comma (point) decides for the whole file, also for 2.346 (2,346)
    (["2.346", "12,50", "1.234.567"], [2346.0, 12.5, 1234567.0]),
    (["2,346", "12.50", "1,234,567"], [2346.0, 12.5, 1234567.0]),
    (["1,234.5", "1,234", "-0.125"], [1234.5, 1234.0, -0.125]),
    (["1.234,5", "-1.234", ",5"], [1234.5, -1234.0, 0.5]),
    # whole numbers next to 12.000: the dot groups thousands (decimals would be 150.000)
    (["2.346", "150", "12.000"], [2346.0, 150.0, 12000.0]),
    (["2,346", "150", "12,000"], [2346.0, 150.0, 12000.0]),
    # 1500 next to 2.346: thousands are not grouped, so the dot is a decimal point
    (["2.346", "1500"], [2.346, 1500.0]),
    (["2,346", "1500"], [2.346, 1500.0]),
    # no separators at all: read the same either way
    (["12", "-5", "1500"], [12.0, -5.0, 1500.0]),
])
def test_auto_reads_the_file_as_its_values_say(amounts: list[str], expected: list[float],
                                              tmp_path: Path) -> None:
    for sep in (";", ","):
        assert _typed(_open(tmp_path / sep, _orders(amounts, sep)))["gross_amount"] == expected


def test_the_amount_and_number_columns_of_a_file_decide_together(tmp_path: Path) -> None:
    text = _csv("customer_id;order_date;gross_amount;discount_amount;quantity",
                "C1;2024-01-05;2.346;0;1", "C2;2024-01-06;1.500;12,5;2")
    typed = _typed(_open(tmp_path / "src", text))
    assert typed["gross_amount"] == [2346.0, 1500.0]
    assert typed["discount_amount"] == [0.0, 12.5]


@pytest.mark.parametrize("amounts, under_comma, under_point", [
    (["1.234", "2.346", "5"], [1234.0, 2346.0, 5.0], [1.234, 2.346, 5.0]),
    (["2,346", "1,234", "-7"], [2.346, 1.234, -7.0], [2346.0, 1234.0, -7.0]),
])
def test_numbers_that_read_two_ways_are_refused(amounts: list[str], under_comma: list[float],
                                                under_point: list[float], tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        _open(tmp_path / "src", _orders(amounts))
    message = str(exc.value)
    assert "Table orders (orders.csv)" in message and "gross_amount" in message
    assert repr(amounts[0]) in message and repr(amounts[1]) in message
    assert 'decimal_separator: ","' in message and 'decimal_separator: "."' in message
    assert "source.yaml of your --config folder" in message
    for setting, expected in ((",", under_comma), (".", under_point)):
        source = _open(tmp_path / setting, _orders(amounts), decimal_separator=setting)
        assert _typed(source)["gross_amount"] == expected


def test_a_file_with_both_decimal_separators_is_refused_with_its_rows(tmp_path: Path) -> None:
    text = _orders(["1.234,56", "1,234.56", "99,95"], ",")
    with pytest.raises(InputError) as exc:
        _open(tmp_path / "src", text)
    message = str(exc.value)
    assert "decimal point in some rows and a decimal comma in others" in message
    assert "1,234.56" in message and "1.234,56" in message and "99,95" in message
    assert 'decimal_separator: ","' in message


@pytest.mark.parametrize("setting, values, expected", [
    (",", ["12.5", "1.23", "0.123", "1.234.567", "1.234,5", " 12,5 ", "1,2,3"],
     [None, None, None, 1234567.0, 1234.5, 12.5, None]),
    (".", ["12,5", "1,23", "0,123", "1,234,567", "1,234.5", " 12.5 ", "1.2.3"],
     [None, None, None, 1234567.0, 1234.5, 12.5, None]),
])
def test_thousands_separators_must_group_by_three(setting: str, values: list[str],
                                                  expected: list) -> None:
    table = ibis.memtable(pd.DataFrame({"v": values}))
    assert typed_column(table.v, Kind.AMOUNT, Formats(setting)).to_pyarrow().to_pylist() == (
        expected)


def test_a_set_separator_reports_values_written_the_other_way(tmp_path: Path) -> None:
    source = _open(tmp_path / "src", _orders(["1.234,50", "12.5"]), decimal_separator=",")
    report = validate_source(source, load_config())
    [finding] = report.errors
    assert (finding.where, finding.rows) == ("orders.gross_amount", 1)
    assert "not a number" in finding.problem and "decimal comma" in finding.fix
    assert "12.5" in finding.examples


@pytest.mark.parametrize("dates, expected", [
    (["05-01-2024", "31-01-2024 10:30"], "DD-MM-YYYY"),
    (["05.01.2024", "31.01.2024"], "DD.MM.YYYY"),
    (["05/01/2024", "31/01/2024"], "DD/MM/YYYY"),
    (["01/05/2024", "01/31/2024 10:30:00"], "MM/DD/YYYY"),
    (["2024-01-05", "2024-01-31T10:30:00"], "YYYY-MM-DD"),
])
def test_auto_reads_the_date_format_of_the_file(dates: list[str], expected: str,
                                               tmp_path: Path) -> None:
    text = _csv("customer_id,order_date,gross_amount", *(f"C1,{d},5" for d in dates))
    source = _open(tmp_path / "src", text)
    assert source.tables["orders"].formats.date == expected
    assert _typed(source)["order_date"] == [dt.date(2024, 1, 5), dt.date(2024, 1, 31)]
    assert f"dates {expected} (auto)" in source.tables["orders"].reading


def test_the_date_columns_of_a_file_decide_together(tmp_path: Path) -> None:
    text = _csv("customer_id,invoice_date,amount,due_date", "C1,05/01/2024,10,20/01/2024")
    source = _open(tmp_path / "src", text, table="invoices")
    assert _typed(source, "invoices")["invoice_date"] == [dt.date(2024, 1, 5)]


def test_dates_that_read_two_ways_are_refused(tmp_path: Path) -> None:
    text = _csv("customer_id,order_date,gross_amount", "C1,05/01/2024,5", "C2,11/03/2024,6")
    with pytest.raises(InputError) as exc:
        _open(tmp_path / "src", text)
    message = str(exc.value)
    assert "Table orders (orders.csv)" in message and "order_date" in message
    assert "'05/01/2024'" in message and "5 January 2024" in message and "1 May 2024" in message
    assert "date_format: DD/MM/YYYY" in message and "date_format: MM/DD/YYYY" in message
    source = _open(tmp_path / "set", text, date_format="MM/DD/YYYY")
    assert _typed(source)["order_date"] == [dt.date(2024, 5, 1), dt.date(2024, 11, 3)]


def test_dates_not_in_the_file_format_are_reported(tmp_path: Path) -> None:
    text = _csv("customer_id,order_date,gross_amount", "C1,05-01-2024,5", "C2,06-01-24,6",
                "C3,2024-01-07,7", "C4,31-02-2024,8")
    source = _open(tmp_path / "src", text)
    assert _typed(source)["order_date"] == [dt.date(2024, 1, 5), None, None, None]
    [finding] = validate_source(source, load_config()).errors
    assert finding.where == "orders.order_date" and finding.rows == 3
    assert finding.problem == "3 rows: not a date in the form DD-MM-YYYY"
    assert "date_format" in finding.fix


def test_date_format_is_a_setting_of_source_yaml(tmp_path: Path) -> None:
    (tmp_path / "source.yaml").write_text("date_format: DD.MM.YYYY\n")
    assert load_config(tmp_path).source.date_format == "DD.MM.YYYY"
    assert load_config().source.date_format == "auto"
    (tmp_path / "source.yaml").write_text("date_format: D-M-Y\n")
    with pytest.raises(ConfigError, match="date_format"):
        load_config(tmp_path)


def _german(value: str, kind: Kind) -> str:
    """A value of the example as a German export writes it: 1.234,50 and 31.03.2024."""
    if not value or kind not in (Kind.AMOUNT, Kind.NUMBER, Kind.DATE):
        return value
    if kind is Kind.DATE:
        return dt.date.fromisoformat(value).strftime("%d.%m.%Y")
    return f"{float(value):,.2f}".translate(str.maketrans(",.", ".,"))


def test_every_step_reads_a_german_export_as_the_plain_one(tmp_path: Path) -> None:
    """The example as plain and as German CSV files (orders without cost_amount, so that the
    unit cost of products counts) give the same customer margins."""
    for folder, sep, write in ((tmp_path / "plain", ",", lambda v, k: v),
                               (tmp_path / "german", ";", _german)):
        folder.mkdir()
        for file in EXAMPLE.glob("*.csv"):
            kinds = {c.name: c.kind for c in table_spec(file.stem).columns}
            with file.open() as fh:
                rows = [row for row in csv.DictReader(fh)]
            with (folder / file.name).open("w", newline="") as fh:
                names = [n for n in rows[0] if n != "cost_amount"]
                writer = csv.writer(fh, delimiter=sep)
                writer.writerow(names)
                writer.writerows([write(r[n], kinds.get(n, Kind.TEXT)) for n in names]
                                 for r in rows)
    margins = [customer_margins(open_source(str(tmp_path / name), _cfg()), dt.date(2024, 12, 31),
                                load_config(), 12).table.to_pandas()
               for name in ("plain", "german")]
    assert margins[0]["cost_of_goods"].sum() > 0
    pd.testing.assert_frame_equal(margins[0], margins[1])


# --- any export of the same orders: the same total, or refused ---------------------------------

DAYS = st.builds(dt.date, st.integers(2021, 2025), st.integers(1, 12),
                st.integers(1, 12) | st.integers(13, 28))  # often no day above 12
ROWS = st.lists(st.tuples(st.sampled_from(["C1", "C2", "C3"]), DAYS,
                          st.integers(-10**8, 10**9), st.integers(0, 10**6)),
                min_size=1, max_size=12)
STYLES = st.fixed_dictionaries({
    "delimiter": st.sampled_from([",", ";", "\t"]),
    "decimal": st.sampled_from([".", ","]),
    "grouped": st.booleans(),
    "cents": st.booleans(),
    "quote_all": st.booleans(),
    "bom": st.booleans(),
    "newline": st.sampled_from(["\n", "\r\n"]),
    "date_format": st.sampled_from(sorted(DATE_FORMATS)),
})


def _amount(cents: int, style: dict) -> Decimal:
    return Decimal(cents) / 100 if style["cents"] else Decimal(cents // 100)


def _written(value: Decimal, style: dict) -> str:
    """``value`` as the export writes it: grouped or not, with a decimal point or comma."""
    text = f"{value:{',' if style['grouped'] else ''}.{2 if style['cents'] else 0}f}"
    return text.translate(str.maketrans(",.", ".,")) if style["decimal"] == "," else text


def _export(folder: Path, rows: list, style: dict) -> None:
    """The orders as a CSV file in ``style``, and as typed Parquet in ``folder/parquet``."""
    folder.mkdir()
    pattern = DATE_FORMATS[style["date_format"]] or "%Y-%m-%d"
    with (folder / "orders.csv").open("w", encoding="utf-8-sig" if style["bom"] else "utf-8",
                                      newline="") as fh:
        writer = csv.writer(fh, delimiter=style["delimiter"], lineterminator=style["newline"],
                            quoting=csv.QUOTE_ALL if style["quote_all"] else csv.QUOTE_MINIMAL)
        writer.writerow(["customer_id", "order_date", "gross_amount", "discount_amount"])
        for customer, day, gross, discount in rows:
            amounts = (_written(_amount(cents, style), style) for cents in (gross, discount))
            writer.writerow([customer, day.strftime(pattern), *amounts])
    (folder / "parquet").mkdir()
    money = pa.decimal128(14, 2)
    pq.write_table(pa.table({
        "customer_id": [r[0] for r in rows], "order_date": [r[1] for r in rows],
        "gross_amount": pa.array([_amount(r[2], style) for r in rows], money),
        "discount_amount": pa.array([_amount(r[3], style) for r in rows], money),
    }), folder / "parquet" / "orders.parquet")


def _totals(source: Source) -> tuple[int, Decimal, Decimal, list]:
    typed = _typed(source)
    assert None not in typed["gross_amount"] + typed["discount_amount"] + typed["order_date"]
    cents = [round(Decimal(sum(typed[c])), 2) for c in ("gross_amount", "discount_amount")]
    return len(typed["order_date"]), *cents, typed["order_date"]


def _may_refuse(rows: list, style: dict, message: str) -> bool:
    """A refusal is right only where the file reads two ways: whole amounts with one separator
    followed by three digits, or slashed dates without a number above 12."""
    if "decimal_separator" in message:
        return style["grouped"] and not style["cents"]
    days = {n for _, day, _, _ in rows for n in (day.day, day.month)}
    return "date_format" in message and "/" in style["date_format"] and max(days) <= 12


@settings(max_examples=60, deadline=None)
@given(rows=ROWS, style=STYLES)
def test_any_export_gives_the_same_total_or_is_refused(rows: list, style: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        _export(folder, rows, style)
        original = _totals(open_source(str(folder / "parquet"), _cfg()))
        assert original[:3] == (len(rows), sum(_amount(r[2], style) for r in rows),
                                sum(_amount(r[3], style) for r in rows))
        try:
            auto = open_source(str(folder), _cfg())
        except InputError as exc:
            assert _may_refuse(rows, style, str(exc)), str(exc)
        else:
            assert _totals(auto) == original, auto.tables["orders"].reading
        explicit = _cfg(decimal_separator=style["decimal"], date_format=style["date_format"])
        assert _totals(open_source(str(folder), explicit)) == original
