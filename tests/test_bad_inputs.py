"""The corpus of bad exports: each one exits 2 with a message naming table and column.

Each folder under ``bad_inputs/`` is a small source with one defect and an ``expect.yaml`` that
says which table and column the message must name and a phrase it must contain.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import TESTS, run_cli, snapshot
from klantwaarde.config import load_config
from klantwaarde.contract import TABLES, ColumnSpec, Kind, TableSpec, table_spec
from klantwaarde.sources import open_source
from klantwaarde.validation import validate_source

CASES = sorted(p for p in (TESTS / "bad_inputs").iterdir() if p.is_dir())


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_exits_2_with_a_clear_message(case: Path, tmp_path: Path, workdir: Path) -> None:
    expect = yaml.safe_load((case / "expect.yaml").read_text())
    source = tmp_path / "source"
    shutil.copytree(case, source, ignore=shutil.ignore_patterns("expect.yaml"))
    before = snapshot(tmp_path)

    result = run_cli("validate", "--source", str(source), cwd=workdir)

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert re.search(rf"\b{expect['table']}\b", output), output
    if expect["column"]:
        assert re.search(rf"\b{expect['table']}\.{expect['column']}\b|\b{expect['column']}\b",
                         output), output
    assert expect["message"].lower() in output.lower(), output
    assert snapshot(tmp_path) == before, "validate wrote or changed files"


def test_messages_show_example_rows(tmp_path: Path) -> None:
    result = run_cli("validate", "--source", str(TESTS / "bad_inputs" / "mixed_date_formats"))
    assert result.returncode == 2
    assert "2 rows: not an ISO date" in result.stdout
    assert "04-20-2024" in result.stdout and "25.05.2024" in result.stdout
    assert "Fix:" in result.stdout


def test_an_empty_customers_table_is_one_problem_not_every_order() -> None:
    result = run_cli("validate", "--source", str(TESTS / "bad_inputs" / "empty_customers_table"))
    assert result.returncode == 2
    assert "1 problem(s) found" in result.stdout
    assert "customers table lacks" not in result.stdout


# --- NaN and infinity in every amount and number column of the contract -----------------------

NUMBER_COLUMNS = [(spec, col) for spec in TABLES for col in spec.columns
                  if col.kind in (Kind.AMOUNT, Kind.NUMBER)]
NON_FINITE_TEXT = ["nan", "NaN", "NAN", "-nan", "inf", "-inf", "+inf", "Infinity", "-Infinity",
                   "INF", "1e999", "-1E999"]
NON_FINITE_CASES = [(spec, col, fmt, bad) for spec, col in NUMBER_COLUMNS
                    for fmt, values in (("csv", ["nan", "-Infinity", "1e999"]),
                                        ("parquet", [math.nan, -math.inf]))
                    for bad in values]
ARROW_TYPES = {Kind.ID: pa.string(), Kind.TEXT: pa.string(), Kind.DATE: pa.date32(),
               Kind.AMOUNT: pa.float64(), Kind.NUMBER: pa.float64(), Kind.FLAG: pa.bool_()}


def _value(kind: Kind, column: str, row: int) -> object:
    """A valid value of ``kind`` in ``row``; ids the same in every table (X1, X2, X3)."""
    return {Kind.ID: f"X{row}", Kind.TEXT: f"{column} {row}", Kind.DATE: dt.date(2024, 1, row),
            Kind.AMOUNT: 12.5, Kind.NUMBER: 2.0, Kind.FLAG: True}[kind]


def _write(folder: Path, spec: TableSpec, fmt: str, bad: dict[str, object]) -> None:
    """``spec`` with every contract column and three valid rows, the second one holding ``bad``
    (column → value), as CSV text or typed Parquet."""
    columns = {c.name: [bad.get(c.name) if row == 2 and c.name in bad
                        else _value(c.kind, c.name, row) for row in (1, 2, 3)]
               for c in spec.columns}
    if fmt == "parquet":
        pq.write_table(pa.table({c.name: pa.array(columns[c.name], ARROW_TYPES[c.kind])
                                 for c in spec.columns}), folder / f"{spec.name}.parquet")
        return
    with (folder / f"{spec.name}.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))


def _source(folder: Path, spec: TableSpec, fmt: str, bad: dict[str, object]) -> Path:
    """A valid source of orders and ``spec``'s table, with ``bad`` in the second row of it."""
    folder.mkdir()
    _write(folder, spec, fmt, bad)
    if spec.name != "orders":
        _write(folder, table_spec("orders"), fmt, {})
    return folder


def test_every_amount_and_number_column_is_checked() -> None:
    names = {f"{spec.name}.{col.name}" for spec, col in NUMBER_COLUMNS}
    assert {"orders.gross_amount", "orders.quantity", "invoices.amount",
            "products.unit_cost"} <= names


@pytest.mark.parametrize(
    "spec, col, fmt, bad", NON_FINITE_CASES,
    ids=[f"{s.name}.{c.name}-{fmt}-{bad}" for s, c, fmt, bad in NON_FINITE_CASES])
def test_nan_and_infinity_are_refused(spec: TableSpec, col: ColumnSpec, fmt: str, bad: object,
                                      tmp_path: Path) -> None:
    cfg = load_config()
    source = open_source(str(_source(tmp_path / "src", spec, fmt, {col.name: bad})), cfg.source)
    [finding] = validate_source(source, cfg).errors
    noun = "amount" if col.kind is Kind.AMOUNT else "number"
    assert finding.where == f"{spec.name}.{col.name}" and finding.rows == 1
    assert finding.problem == f"1 row: not a finite {noun} (NaN or infinity)"
    empty = "cannot be left empty" if col.required else "leave the cell empty if it is unknown"
    assert empty in finding.fix
    [header, row] = finding.examples.splitlines()
    assert col.name in header.split() and "X2" in row.split() and str(bad) in row.split()


@pytest.mark.parametrize("setting, number", [
    ("auto", "1.234,50"), ("auto", "1,234.50"), (",", "12,50"), (".", "12.50"), (",", "7"),
])
def test_every_spelling_is_refused_whatever_the_decimal_separator(setting: str, number: str,
                                                                  tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    rows = [f"C1;2024-01-05;{value}" for value in [number, *NON_FINITE_TEXT]]
    (folder / "orders.csv").write_text("customer_id;order_date;gross_amount\n"
                                       + "\n".join(rows) + "\n")
    cfg = load_config()
    source = open_source(str(folder), cfg.source.model_copy(update={"decimal_separator": setting}))
    [finding] = validate_source(source, cfg).errors
    assert finding.where == "orders.gross_amount" and finding.rows == len(NON_FINITE_TEXT)
    assert "not a finite amount" in finding.problem


def test_a_non_finite_parquet_amount_stops_every_command(tmp_path: Path) -> None:
    source = _source(tmp_path / "src", table_spec("invoices"), "parquet", {"amount": math.inf})
    before = snapshot(tmp_path)
    result = run_cli("profitability", "--source", str(source), "--as-of", "2024-01-31",
                     "--out", str(tmp_path / "out"))
    output = " ".join(result.stderr.split())
    assert result.returncode == 2, output
    assert "invoices.amount: 1 row: not a finite amount (NaN or infinity)" in output
    assert "Traceback" not in output and "X2 2024-01-02" in output
    assert snapshot(tmp_path) == before
