"""``klantwaarde lists``: at-risk, win-back, cross-sell and loss-account lists per manager.

The lists are the decisions (``klantwaarde.decisions``) of one month of the scores table, written
as one XLSX workbook and four CSV files per manager, an overall workbook, an index and the
control group:

    index.csv                     as_of, manager, file_stem, capacity, contact (the kind of
                                  contact the capacity counts) and the rows of each list
    control_group.csv             customer_id, account_manager: held out, not to be contacted
    all_managers.xlsx             every manager's lists, with an account_manager column
    managers/<stem>.xlsx          sheets "at risk", "win-back", "cross-sell", "loss accounts"
    managers/<stem>_at_risk.csv, <stem>_win_back.csv, <stem>_cross_sell.csv, ...

Each list holds at most the manager's capacity (the top of its ranking); held-out customers
(the control group) are on no list, and ``control_group.csv`` sits beside ``managers/``, not in
it, so that no manager receives it; the overall workbook holds exactly the rows the managers
received. ``read_decisions`` reads a folder back: who was to be contacted and who not.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
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

from klantwaarde.config import Config
from klantwaarde.decisions import (
    AT_RISK,
    HELD_OUT,
    LOSS_ACCOUNT,
    WIN_BACK,
    decided,
)
from klantwaarde.errors import InputError
from klantwaarde.staging import staged_folder

CROSS_SELL, LOSS_ACCOUNTS = "cross-sell", "loss accounts"
SHEETS = (AT_RISK, WIN_BACK, CROSS_SELL, LOSS_ACCOUNTS)
OVERALL = "all_managers"
INDEX = "index.csv"
CONTROL_GROUP = "control_group.csv"
CONTACTED = (AT_RISK, WIN_BACK, CROSS_SELL)  # the sheets whose customers a manager contacts
PERCENT = frozenset({"churn_probability", "upgrade_probability"})
EUR = frozenset({"future_net_margin", "margin_at_risk", "expected_saved_margin",
                 "expected_uplift", "cross_sell_margin", "revenue", "net_margin", "lost_margin"})
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"{p}{i}" for p in ("com", "lpt")
                                                     for i in range(10))})


@dataclass(frozen=True)
class Lists:
    """The lists of one month over all managers (ranked, within capacity), every manager and its
    capacity (contacts of the kind ``contact`` a month), and the control group."""

    as_of: dt.date
    contact: str
    managers: tuple[str, ...]
    capacity: dict[str, int]
    tables: dict[str, pd.DataFrame]  # sheet name -> list with an account_manager column
    held_out: pd.DataFrame  # customer_id, account_manager: at risk, left off the sheets


@dataclass(frozen=True)
class ManagerCounts:
    """The rows of each list of one manager, and the stem of that manager's files."""

    manager: str
    file_stem: str
    capacity: int
    at_risk: int
    win_back: int
    cross_sell: int
    loss_accounts: int


@dataclass(frozen=True)
class ListsResult:
    """The folder written and the counts per manager, in the order of ``index.csv``."""

    folder: Path
    managers: tuple[ManagerCounts, ...]


def build_lists(scores: pd.DataFrame, as_of: dt.date, cfg: Config) -> Lists:
    """The lists of a month's scores (one row per customer, the scores table's columns): the
    decisions taken when the month was scored, or, for a month scored before klantwaarde
    stored them, the decisions of today's ``lists.yaml`` (its capacities alone: no source is
    read here, so a managers table's are not)."""
    scores = decided(scores, as_of, cfg)
    scores = scores.assign(cross_sell=scores.cross_sell.fillna(False).astype(bool))
    names = sorted(set(scores.account_manager), key=lambda m: (m.casefold(), m))
    capacity = dict(zip(scores.account_manager, scores.capacity.astype(int), strict=True))
    losses = loss_accounts(scores[scores.category == LOSS_ACCOUNT])
    tables = {AT_RISK: at_risk(scores[scores.retention == AT_RISK]),
              WIN_BACK: win_back(scores[scores.retention == WIN_BACK], as_of),
              CROSS_SELL: cross_sell(scores[scores.cross_sell]),
              LOSS_ACCOUNTS: losses[losses.groupby("account_manager").cumcount()
                                    < losses.account_manager.map(capacity)]
              .reset_index(drop=True)}
    held = scores[scores.retention == HELD_OUT][["customer_id", "account_manager"]]
    return Lists(as_of, cfg.lists.contact, tuple(names), {m: capacity[m] for m in names}, tables,
                 held.reset_index(drop=True))


def at_risk(chosen: pd.DataFrame) -> pd.DataFrame:
    """Customers to contact now, by expected saved margin (by margin at risk where the month
    has no contact effect)."""
    key = ("expected_saved_margin" if chosen.expected_saved_margin.notna().any()
           else "margin_at_risk")
    return _ranked(chosen, key, descending=True).assign(
        reasons=lambda t: _joined(t.churn_reasons, "; "))[
        ["customer_id", "account_manager", "churn_probability", "future_net_margin",
         "margin_at_risk", "expected_saved_margin", "tier", "category", "reasons"]]


def win_back(chosen: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Customers already gone, by the net margin of their last 12 months."""
    last = [(as_of - dt.timedelta(days=int(d))).isoformat()
            for d in chosen.days_since_last_order]
    return _ranked(chosen.assign(last_order=last, lost_margin=chosen.net_margin),
                   "lost_margin", descending=True)[
        ["customer_id", "account_manager", "last_order", "days_since_last_order",
         "lost_margin", "revenue", "tier"]]


def cross_sell(chosen: pd.DataFrame) -> pd.DataFrame:
    """Customers to offer their next-best categories, by the expected adoption margin net of
    the contact."""
    return _ranked(chosen, "cross_sell_margin", descending=True).assign(
        next_best_categories=lambda t: _joined(t.next_best_categories, ", "),
        reasons=lambda t: _joined(t.upgrade_reasons, "; "))[
        ["customer_id", "account_manager", "upgrade_probability", "next_best_categories",
         "cross_sell_margin", "expected_uplift", "tier", "category", "reasons"]]


def loss_accounts(chosen: pd.DataFrame) -> pd.DataFrame:
    """Loss accounts, the biggest loss first, with the dominant cost driver and its remedy."""
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
            tables = manager_tables(lists.tables, manager)
            _write_manager(folder / "managers", stems[manager], tables)
            counts.append(ManagerCounts(manager, stems[manager], lists.capacity[manager],
                                        *(len(tables[name]) for name in SHEETS)))
        lists.held_out.sort_values(["account_manager", "customer_id"]).to_csv(
            folder / CONTROL_GROUP, index=False, encoding="utf-8", lineterminator="\n")
        _write_index(folder / INDEX, lists, counts)
    return ListsResult(target, tuple(counts))


def manager_tables(tables: dict[str, pd.DataFrame], manager: str) -> dict[str, pd.DataFrame]:
    """One manager's rows of each list, without the account_manager column: that manager's
    workbook."""
    return {name: t[t.account_manager == manager].drop(columns="account_manager")
            for name, t in tables.items()}


def workbook_bytes(tables: dict[str, pd.DataFrame]) -> bytes:
    """The lists as one formatted XLSX workbook in memory, a sheet per list, as written to
    the lists folder."""
    buffer = io.BytesIO()
    _write_workbook(buffer, tables)
    return buffer.getvalue()


def csv_name(stem: str, sheet: str) -> str:
    """The CSV file of one manager's list: ``<stem>_at_risk.csv`` and so on."""
    return f"{stem}_{sheet.replace(' ', '_').replace('-', '_')}.csv"


def _write_manager(folder: Path, stem: str, tables: dict[str, pd.DataFrame]) -> None:
    _write_workbook(folder / f"{stem}.xlsx", tables)
    for name, table in tables.items():
        table.to_csv(folder / csv_name(stem, name), index=False, encoding="utf-8",
                     lineterminator="\n")


def _write_index(path: Path, lists: Lists, counts: list[ManagerCounts]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["as_of", "manager", "file_stem", "capacity", "contact", "at_risk",
                         "win_back", "cross_sell", "loss_accounts"])
        writer.writerows((lists.as_of.isoformat(), c.manager, c.file_stem, c.capacity,
                          lists.contact, c.at_risk, c.win_back, c.cross_sell, c.loss_accounts)
                         for c in counts)


@dataclass(frozen=True)
class Decisions:
    """A lists folder read back: its month, the kind of contact, the customers on the at-risk,
    win-back and cross-sell sheets (to contact) and the control group (not to contact), each
    customer with the file that names it."""

    as_of: dt.date
    contact: str
    contacted: dict[str, str]
    held_out: dict[str, str]


def read_decisions(folder: Path) -> Decisions:
    """What the lists in ``folder`` (written by ``write_lists``) ask the managers to do."""
    index = folder / INDEX
    if not index.is_file():
        raise InputError(f"{folder}: no {INDEX}; name a folder that klantwaarde lists wrote.")
    rows = pd.read_csv(index, dtype=str, keep_default_na=False)
    again = (f"{index} was written by an earlier klantwaarde lists or changed by hand; write "
             "the lists again with klantwaarde lists.")
    if not {"as_of", "contact", "file_stem"} <= set(rows.columns) or rows.empty:
        raise InputError(f"{index}: no as_of, contact and file_stem of the managers. {again}")
    if rows.as_of.nunique() > 1 or rows.contact.nunique() > 1:
        raise InputError(f"{index}: more than one as_of or contact. {again}")
    try:
        as_of = dt.date.fromisoformat(rows.as_of.iloc[0])
    except ValueError:
        raise InputError(f"{index}: as_of {rows.as_of.iloc[0]!r} is not a date. {again}"
                         ) from None
    contact = rows.contact.iloc[0]
    if contact not in ("call", "visit"):
        raise InputError(f"{index}: contact {contact!r} is neither call nor visit. {again}")
    contacted: dict[str, str] = {}
    for stem in rows.file_stem:
        for sheet in CONTACTED:
            path = folder / "managers" / csv_name(stem, sheet)
            for customer in _customers_in(path, again):
                contacted.setdefault(customer, str(path))
    control = folder / CONTROL_GROUP
    held = {customer: str(control) for customer in _customers_in(control, again)}
    return Decisions(as_of, contact, contacted, held)


def _customers_in(path: Path, again: str) -> list[str]:
    if not path.is_file():
        raise InputError(f"{path} is missing. {again}")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "customer_id" not in table:
        raise InputError(f"{path}: no customer_id column. {again}")
    return list(table.customer_id)


def _write_workbook(path: Path | io.BytesIO, tables: dict[str, pd.DataFrame]) -> None:
    target = str(path) if isinstance(path, Path) else path
    with xlsxwriter.Workbook(target, {"in_memory": True}) as book:
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
