"""The newest scored month, held in memory by the server process and reloaded when a newer
(or re-scored) month appears.

It is read once from the scores table's Parquet copy, its decisions and lists taken once
(``lists.build_lists``, the same code as the workbooks), and organised so that a request is a
lookup: the scores sorted by customer (a binary search finds one), every list sorted by
manager with each manager's span of rows, each customer's sheet, and the scores of the
earlier months aligned to the same customers. Nothing reads a Parquet file per request.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from klantwaarde.config import Config
from klantwaarde.decisions import decided
from klantwaarde.lists import CONTACTED, SHEETS, build_lists
from klantwaarde.scoring.store import month_path, read_columns, read_scores, scored_months

HISTORY_COLUMNS = ("churn_probability", "future_net_margin", "upgrade_probability", "revenue",
                   "net_margin")


@dataclass(frozen=True)
class Month:
    """One scored month, with its lists, ready for lookups."""

    as_of: dt.date
    contact: str  # the kind of contact a manager's capacity counts
    scores: pd.DataFrame  # one row per customer, with the decisions, sorted by customer_id
    ids: np.ndarray  # scores.customer_id, sorted
    sheet_of: np.ndarray  # per row of scores: the sheet that lists the customer, or None
    sheets: dict[str, pd.DataFrame]  # each list, by manager, in the list's own order
    columns: dict[str, dict[str, object]]  # each list's columns as arrays (views: no copies)
    spans: dict[str, dict[str, tuple[int, int]]]  # sheet -> manager -> rows [start, stop)
    managers: tuple[str, ...]
    capacity: dict[str, int]
    months: tuple[dt.date, ...]  # the months of ``history``, oldest first, as_of the last
    history: np.ndarray  # months x customers x HISTORY_COLUMNS (float32, NaN: not scored)
    stamp: tuple[dt.date, int, int]

    def position(self, customer_id: str) -> int | None:
        """The customer's row in ``scores``; None when not scored this month."""
        at = int(np.searchsorted(self.ids, customer_id))
        return at if at < len(self.ids) and self.ids[at] == customer_id else None

    def rows(self, sheet: str, managers: list[str]) -> pd.DataFrame:
        """The rows of the list ``sheet`` of ``managers``, each manager's in the list's order."""
        spans = self.spans[sheet]
        parts = [self.sheets[sheet].iloc[spans[m][0]:spans[m][1]] for m in managers if m in spans]
        if len(parts) == 1:  # a manager's own sheet: a slice, no copy
            return parts[0]
        return pd.concat(parts) if parts else self.sheets[sheet].iloc[0:0]

    def records(self, sheet: str, managers: list[str]) -> list[dict[str, object]]:
        """The rows of ``rows(sheet, managers)`` as dicts of Python values, as
        ``to_dict("records")`` gives them at a fraction of its cost: what the page renders."""
        columns, spans = self.columns[sheet], self.spans[sheet]
        found: list[dict[str, object]] = []
        for start, stop in (spans[m] for m in managers if m in spans):
            values = [array[start:stop].tolist() for array in columns.values()]  # type: ignore
            found += [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]
        return found

    def count(self, sheet: str, managers: list[str]) -> int:
        """How many rows ``rows(sheet, managers)`` has."""
        spans = self.spans[sheet]
        return sum(stop - start for m in managers for start, stop in [spans.get(m, (0, 0))])

    def listed(self, manager: str) -> int:
        """How many customers the manager is to contact: the rows of the contact sheets."""
        return sum(stop - start for sheet in CONTACTED
                   for start, stop in [self.spans[sheet].get(manager, (0, 0))])

    def history_of(self, position: int) -> list[dict[str, object]]:
        """The customer's scores in each month held, oldest first (months it was not scored
        left out)."""
        found = []
        for month, values in zip(self.months, self.history[:, position, :], strict=True):
            if not np.isnan(values).all():
                found.append({"as_of": month, **{c: None if np.isnan(v) else float(v)
                                                 for c, v in zip(HISTORY_COLUMNS, values,
                                                                 strict=True)}})
        return found


def stamp_of(cfg: Config) -> tuple[dt.date, int, int] | None:
    """The newest month's date and its Parquet file's modification time and size: what
    changes when a month is scored or re-scored; None without one."""
    months = scored_months(cfg.scoring.parquet)
    if not months:
        return None
    found = month_path(cfg.scoring.parquet, months[-1]).stat()
    return months[-1], found.st_mtime_ns, found.st_size


def load_month(cfg: Config, stamp: tuple[dt.date, int, int]) -> Month:
    """The month of ``stamp`` from the scores table, its lists and the months before it."""
    as_of = stamp[0]
    scores = _decided(cfg, as_of)
    lists = build_lists(scores, as_of, cfg)
    ids = scores.customer_id.to_numpy(dtype=object)
    index = pd.Index(ids)  # one hash table of the customers, for the sheets and the history
    sheets, spans, columns = {}, {}, {}
    sheet_of = np.full(len(ids), None, dtype=object)
    for name in SHEETS:
        table = lists.tables[name]
        table = table.assign(rank=table.groupby("account_manager").cumcount() + 1) \
            .sort_values("account_manager", kind="stable").reset_index(drop=True)
        sheets[name] = table
        columns[name] = {c: table[c].to_numpy() if isinstance(table[c].dtype, np.dtype)
                         else table[c].array for c in table.columns}
        spans[name] = _spans(table.account_manager.to_numpy(dtype=object))
        at = index.get_indexer(table.customer_id)
        sheet_of[at[sheet_of[at] == None]] = name  # noqa: E711 (elementwise)
    months, history = _history(cfg, as_of, scores, index)
    return Month(as_of, lists.contact, scores, ids, sheet_of, sheets, columns, spans,
                 lists.managers, lists.capacity, months, history, stamp)


def _decided(cfg: Config, as_of: dt.date) -> pd.DataFrame:
    """The month's scores with their decisions, by customer id."""
    scores = decided(read_scores(cfg.scoring.parquet, as_of), as_of, cfg)
    ids = scores.customer_id.to_numpy(dtype=object)
    if len(ids) > 1 and not (ids[:-1] <= ids[1:]).all():
        scores = scores.iloc[np.argsort(ids, kind="stable")]
    return scores.reset_index(drop=True)


def _spans(managers: np.ndarray) -> dict[str, tuple[int, int]]:
    """Each manager's rows [start, stop) in a column sorted by manager."""
    if len(managers) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, managers[1:] != managers[:-1]])
    stops = np.r_[starts[1:], len(managers)]
    return {managers[s]: (int(s), int(e)) for s, e in zip(starts, stops, strict=True)}


def _history(cfg: Config, as_of: dt.date, scores: pd.DataFrame, index: pd.Index
             ) -> tuple[tuple[dt.date, ...], np.ndarray]:
    """The HISTORY_COLUMNS of the last ``history_months`` scored months up to ``as_of``,
    aligned to the customers of ``scores`` (``index``: their ids)."""
    months = [m for m in scored_months(cfg.scoring.parquet) if m <= as_of]
    months = months[-cfg.web.history_months:]
    values = np.full((len(months), len(scores), len(HISTORY_COLUMNS)), np.nan, np.float32)
    for i, month in enumerate(months):
        if month == as_of:
            frame = scores
        else:
            # only the columns shown: not the reasons' lists
            frame = read_columns(cfg.scoring.parquet, month,
                                 ("customer_id", *HISTORY_COLUMNS)).to_pandas()
        at = index.get_indexer(frame.customer_id)
        keep = at >= 0
        for j, column in enumerate(HISTORY_COLUMNS):
            if column in frame:
                values[i, at[keep], j] = frame[column].to_numpy(dtype=np.float64,
                                                                na_value=np.nan)[keep]
    return tuple(months), values


def _settle() -> None:
    """Collect what an earlier month left in reference cycles, then keep every object held now
    out of later garbage collections (``gc.freeze``): a month holds millions of objects, and
    going through them in full collections cost every request time (at 1,000,000 customers,
    1.48 against 1.38 ms of CPU a request in process)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class MonthCache:
    """The month a server process shows: loaded at the first request, and again when
    ``stamp_of`` changes (looked at no more than every ``reload_seconds``). While one request
    loads a newer month, the others go on with the one held."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._month: Month | None = None
        self._checked = -float("inf")
        self._lock = threading.Lock()

    @property
    def loaded(self) -> Month | None:
        """The month held, without looking for a newer one; None before the first load."""
        return self._month

    def get(self) -> Month | None:
        """The month to show; None while nothing is scored."""
        held = self._month
        if held is not None and time.monotonic() - self._checked < self.cfg.web.reload_seconds:
            return held
        if held is not None and not self._lock.acquire(blocking=False):
            return held  # another request is loading
        if held is None:
            self._lock.acquire()
        try:
            self._checked = time.monotonic()
            stamp = stamp_of(self.cfg)
            if stamp is not None and (self._month is None or self._month.stamp != stamp):
                self._month = load_month(self.cfg, stamp)
                _settle()
            return self._month
        finally:
            self._lock.release()

