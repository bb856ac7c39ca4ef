"""``klantwaarde lists``: at-risk, cross-sell and loss-account lists per account manager.

The lists are built from one month of the scores table (pure functions on its frame) and written
as one XLSX workbook and three CSV files per manager, an overall workbook and an index:

    index.csv                     manager, file_stem and the rows of each list
    all_managers.xlsx             every manager's lists, with an account_manager column
    managers/<stem>.xlsx          sheets "at risk", "cross-sell", "loss accounts"
    managers/<stem>_at_risk.csv, <stem>_cross_sell.csv, <stem>_loss_accounts.csv

Each list holds at most ``max_rows`` rows per manager (the top of its ranking); the overall
workbook holds exactly the rows the managers received.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from klantwaarde.config import ListsConfig
from klantwaarde.staging import staged_folder

LOSS_ACCOUNT = "loss account"
AT_RISK, CROSS_SELL, LOSS_ACCOUNTS = "at risk", "cross-sell", "loss accounts"
SHEETS = (AT_RISK, CROSS_SELL, LOSS_ACCOUNTS)
OVERALL = "all_managers"
INDEX = "index.csv"
PERCENT = frozenset({"churn_probability", "upgrade_probability"})
EUR = frozenset({"future_net_margin", "margin_at_risk", "expected_uplift", "revenue",
                 "net_margin"})
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"{p}{i}" for p in ("com", "lpt")
                                                     for i in range(10))})


@dataclass(frozen=True)
class Lists:
    """The three lists over all managers (ranked, capped per manager) and every manager."""

    managers: tuple[str, ...]
    tables: dict[str, pd.DataFrame]  # sheet name -> list with an account_manager column


@dataclass(frozen=True)
class ManagerCounts:
    """The rows of each list of one manager, and the stem of that manager's files."""

    manager: str
    file_stem: str
    at_risk: int
    cross_sell: int
    loss_accounts: int


@dataclass(frozen=True)
class ListsResult:
    """The folder written and the counts per manager, in the order of ``index.csv``."""

    folder: Path
    managers: tuple[ManagerCounts, ...]


def build_lists(scores: pd.DataFrame, cfg: ListsConfig) -> Lists:
    """The three lists of a month's scores (one row per customer, the scores table's columns)."""
    scores = scores.assign(account_manager=managers_of(scores.account_manager, cfg.unassigned))
    tables = {AT_RISK: at_risk(scores, cfg.at_risk_min_probability),
              CROSS_SELL: cross_sell(scores, cfg.cross_sell_min_uplift),
              LOSS_ACCOUNTS: loss_accounts(scores)}
    capped = {name: t.groupby("account_manager", sort=False).head(cfg.max_rows)
              .reset_index(drop=True) for name, t in tables.items()}
    names = sorted(set(scores.account_manager), key=lambda m: (m.casefold(), m))
    return Lists(tuple(names), capped)


def managers_of(column: pd.Series, unassigned: str) -> pd.Series:
    """Account managers, with ``unassigned`` for customers without one (null or blank)."""
    blank = column.fillna("").astype(str).str.strip().eq("")
    return column.where(~blank, unassigned).astype(object)


def at_risk(scores: pd.DataFrame, min_probability: float) -> pd.DataFrame:
    """Customers likely to leave, by margin at risk; never loss accounts."""
    chosen = scores[(scores.churn_probability >= min_probability)
                    & (scores.category != LOSS_ACCOUNT)]
    return _ranked(chosen, "margin_at_risk", descending=True).assign(
        reasons=lambda t: _joined(t.churn_reasons, "; "))[
        ["customer_id", "account_manager", "churn_probability", "future_net_margin",
         "margin_at_risk", "tier", "category", "reasons"]]


def cross_sell(scores: pd.DataFrame, min_uplift: float) -> pd.DataFrame:
    """Customers with an expected uplift above ``min_uplift``, by expected uplift."""
    chosen = scores[scores.expected_uplift > min_uplift]
    return _ranked(chosen, "expected_uplift", descending=True).assign(
        next_best_categories=lambda t: _joined(t.next_best_categories, ", "),
        reasons=lambda t: _joined(t.upgrade_reasons, "; "))[
        ["customer_id", "account_manager", "upgrade_probability", "expected_uplift",
         "next_best_categories", "tier", "category", "reasons"]]


def loss_accounts(scores: pd.DataFrame) -> pd.DataFrame:
    """Loss accounts, the biggest loss first, with the dominant cost driver and its remedy."""
    chosen = scores[scores.category == LOSS_ACCOUNT]
    return _ranked(chosen, "net_margin", descending=False)[
        ["customer_id", "account_manager", "revenue", "net_margin", "tier", "loss_driver",
         "remedy", "policy"]]


def _ranked(table: pd.DataFrame, key: str, descending: bool) -> pd.DataFrame:
    """Rows by ``key`` (missing values last), ties by customer id."""
    return table.sort_values([key, "customer_id"], ascending=[not descending, True],
                             na_position="last", kind="stable").reset_index(drop=True)


def _joined(values: pd.Series, separator: str) -> pd.Series:
    """Each list of texts as one text; an empty text where there is none."""
    return values.map(lambda v: separator.join(map(str, v))
                      if isinstance(v, list | tuple | np.ndarray) else "")


def file_stems(names: Iterable[str]) -> dict[str, str]:
    """A file stem per name: readable (ASCII letters, digits, ``-``, ``_``) and unique, also on
    case-insensitive file systems.

    A stem that would be empty, a reserved device name (CON, NUL, ...) or shared with another
    name gets ``__`` and a hash of the original name appended; readable stems never hold ``__``.
    """
    readable = {name: _readable(name) for name in names}
    shared = Counter(stem.casefold() for stem in readable.values())
    return {name: f"{stem or 'manager'}__{_hash(name)}"
            if not stem or stem.casefold() in _RESERVED or shared[stem.casefold()] > 1 else stem
            for name, stem in readable.items()}


def _readable(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9-]+", "_", ascii_name).strip("_-")[:60].strip("_-")


def _hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def write_lists(lists: Lists, target: Path, replace: bool = False) -> ListsResult:
    """Write the workbooks, CSV files and index into the new folder ``target``, all or nothing;
    with ``replace``, a folder of earlier lists (one with an ``index.csv``) is replaced whole."""
    stems = file_stems(lists.managers)
    with staged_folder(target, "lists", replaces=INDEX if replace else None) as folder:
        _write_workbook(folder / f"{OVERALL}.xlsx", lists.tables)
        (folder / "managers").mkdir()
        counts = []
        for manager in lists.managers:
            tables = {name: t[t.account_manager == manager].drop(columns="account_manager")
                      for name, t in lists.tables.items()}
            _write_manager(folder / "managers", stems[manager], tables)
            counts.append(ManagerCounts(manager, stems[manager],
                                        *(len(tables[name]) for name in SHEETS)))
        _write_index(folder / INDEX, counts)
    return ListsResult(target, tuple(counts))


def csv_name(stem: str, sheet: str) -> str:
    """The CSV file of one manager's list: ``<stem>_at_risk.csv`` and so on."""
    return f"{stem}_{sheet.replace(' ', '_').replace('-', '_')}.csv"


def _write_manager(folder: Path, stem: str, tables: dict[str, pd.DataFrame]) -> None:
    _write_workbook(folder / f"{stem}.xlsx", tables)
    for name, table in tables.items():
        table.to_csv(folder / csv_name(stem, name), index=False, encoding="utf-8",
                     lineterminator="\n")


def _write_index(path: Path, counts: list[ManagerCounts]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["manager", "file_stem", "at_risk", "cross_sell", "loss_accounts"])
        writer.writerows((c.manager, c.file_stem, c.at_risk, c.cross_sell, c.loss_accounts)
                         for c in counts)


def _write_workbook(path: Path, tables: dict[str, pd.DataFrame]) -> None:
    with xlsxwriter.Workbook(str(path)) as book:
        formats = {"header": book.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1}),
                   "percent": book.add_format({"num_format": "0.0%"}),
                   "eur": book.add_format({"num_format": '"€" #,##0;"€" -#,##0'})}
        for name, table in tables.items():
            _write_sheet(book.add_worksheet(name), table, formats)


def _write_sheet(sheet: Worksheet, table: pd.DataFrame, formats: dict[str, Format]) -> None:
    """A list as a table: bold frozen header, autofilter, number formats, fitting widths."""
    sheet.write_row(0, 0, list(table.columns), formats["header"])
    for col, name in enumerate(table.columns):
        number = formats["percent"] if name in PERCENT else formats["eur"] if name in EUR else None
        for row, value in enumerate(table[name], start=1):
            if isinstance(value, str):
                sheet.write_string(row, col, value)
            elif value is not None and not math.isnan(value):
                sheet.write_number(row, col, value, number)
        sheet.set_column(col, col, _width(name, table[name], numeric=number is not None))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, len(table), len(table.columns) - 1)


def _width(name: str, values: pd.Series, numeric: bool) -> int:
    """Room for the header and its filter button, and for the longest text (up to 60)."""
    longest = 12 if numeric else max((len(v) for v in values if isinstance(v, str)), default=0)
    return min(max(len(name) + 3, longest + 2), 60)
