"""What a user may see and change: the one place where every read of the month and of the
outcomes, and every outcome written, is scoped to the user's managers.

A manager sees the customers of their own account-manager codes, a lead those of the team's
codes, an admin all. Whatever is asked for outside that scope (a customer, a manager's sheet
or export, by URL or by form field) is NotFound, exactly like something that does not exist:
the answer never tells whether it exists. Held-out customers (the control group) are not
there for a manager or a lead either, so that nobody contacts them by accident.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from klantwaarde.appdb import NOT_REACHED, now, outcomes
from klantwaarde.decisions import HELD_OUT
from klantwaarde.lists import SHEETS
from klantwaarde.web.month import Month
from klantwaarde.web.security import write_audit
from klantwaarde.web.users import User

_OWN = outcomes.c.account_manager.in_(sa.bindparam("own", expanding=True))
_MONTH = (outcomes.c.as_of == sa.bindparam("as_of"),
          outcomes.c.account_manager.in_(sa.bindparam("managers", expanding=True)))
# the page's queries, built once: for an admin (True) and scoped to the user's managers (False)
_OUTCOMES = sa.select(outcomes).where(outcomes.c.customer_id == sa.bindparam("customer")) \
    .order_by(outcomes.c.id.desc())
_LATEST = sa.select(outcomes.c.customer_id, outcomes.c.account_manager, outcomes.c.result,
                    outcomes.c.contact_date, outcomes.c.kind).where(*_MONTH) \
    .order_by(outcomes.c.id)
_CONTACTED = sa.select(outcomes.c.customer_id, outcomes.c.account_manager) \
    .where(*_MONTH, outcomes.c.result != NOT_REACHED)
QUERIES = {name: {True: query, False: query.where(_OWN)} for name, query in
           (("outcomes", _OUTCOMES), ("latest", _LATEST), ("contacted", _CONTACTED))}


class NotFound(Exception):
    """Absent, or not the user's: answered alike, with 404."""


@dataclass(frozen=True)
class Customer:
    position: int  # its row in the month's scores
    row: pd.Series
    sheet: str | None  # the sheet that lists it this month, or None


@dataclass(frozen=True)
class Outcome:
    """What a manager did about a listed customer (checked by ``forms.outcome``)."""

    kind: str
    contact_date: dt.date
    result: str
    next_step: str
    note: str


class Visible:
    """The month and the outcomes as ``user`` may see them."""

    def __init__(self, month: Month, user: User, engine: sa.Engine) -> None:
        self.month = month
        self.user = user
        self.engine = engine
        self.everything = user.role == "admin"
        self._own = frozenset(user.managers)

    def allows(self, manager: str) -> bool:
        return self.everything or manager in self._own

    def managers(self, wanted: str | None = None) -> list[str]:
        """The user's managers (an admin: every manager of the month); with ``wanted``, that
        one alone, NotFound where it is not the user's."""
        mine = list(self.month.managers) if self.everything else sorted(
            self._own, key=lambda m: (m.casefold(), m))
        if not wanted:
            return mine
        if not self.allows(wanted):
            raise NotFound(wanted)
        return [wanted]

    def sheet(self, sheet: str, managers: list[str]) -> pd.DataFrame:
        """The rows of list ``sheet`` of ``managers`` (from ``managers``)."""
        self._check(sheet, managers)
        return self.month.rows(sheet, managers)

    def records(self, sheet: str, managers: list[str]) -> list[dict[str, object]]:
        """``sheet(sheet, managers)`` as dicts of Python values."""
        self._check(sheet, managers)
        return self.month.records(sheet, managers)

    def count(self, sheet: str, managers: list[str]) -> int:
        """How many rows ``sheet(sheet, managers)`` has."""
        self._check(sheet, managers)
        return self.month.count(sheet, managers)

    def _check(self, sheet: str, managers: list[str]) -> None:
        if sheet not in SHEETS or not all(self.allows(m) for m in managers):
            raise NotFound(sheet)

    def customer(self, customer_id: str) -> Customer:
        """One customer of the user's managers; held out: only for an admin."""
        at = self.month.position(customer_id)
        if at is None:
            raise NotFound(customer_id)
        row = self.month.scores.iloc[at]
        if not self.allows(row.account_manager):
            raise NotFound(customer_id)
        if row.retention == HELD_OUT and not self.everything:
            raise NotFound(customer_id)
        return Customer(at, row, self.month.sheet_of[at])

    def _query(self, name: str, **params: object) -> list[sa.Row]:
        """The rows of query ``name`` of QUERIES, scoped to the user's managers."""
        if not self.everything:
            params["own"] = sorted(self._own)
        with self.engine.connect() as con:
            return list(con.execute(QUERIES[name][self.everything], params))

    def outcomes_of(self, customer_id: str) -> list[sa.Row]:
        """The outcomes recorded for a customer (checked with ``customer`` first), newest
        first."""
        return self._query("outcomes", customer=customer_id)

    def latest_results(self, managers: list[str]) -> dict[str, sa.Row]:
        """Per customer of ``managers``, the newest outcome recorded for this month."""
        return {r.customer_id: r for r in self._query("latest", as_of=self.month.as_of,
                                                       managers=managers)}

    def record(self, customer_id: str, outcome: Outcome, client: str) -> int:
        """Record an outcome for a customer on one of the user's sheets of this month (else
        NotFound), with its audit row, in one transaction; its id."""
        customer = self.customer(customer_id)
        if customer.sheet is None:
            raise NotFound(customer_id)
        manager = str(customer.row.account_manager)
        with self.engine.begin() as con:
            done = con.execute(outcomes.insert().values(
                customer_id=customer_id, account_manager=manager, as_of=self.month.as_of,
                sheet=customer.sheet, kind=outcome.kind, contact_date=outcome.contact_date,
                result=outcome.result, next_step=outcome.next_step, note=outcome.note,
                recorded_by=self.user.name, recorded_at=now()))
            number = int(done.inserted_primary_key[0])
            write_audit(con, self.user.name, client, "outcome",
                        f"outcome {number}: customer {customer_id}, {outcome.kind} on "
                        f"{outcome.contact_date}, {outcome.result}")
        return number

    def progress(self, managers: list[str]) -> list[dict[str, object]]:
        """Per manager: customers listed to contact this month, contacted, saved and lost
        (by the newest outcome of each customer)."""
        latest = self.latest_results(managers)
        contacted: dict[str, set[str]] = {}
        for customer, manager in self._query("contacted", as_of=self.month.as_of,
                                             managers=managers):
            contacted.setdefault(manager, set()).add(customer)
        results: dict[str, list[str]] = {}
        for r in latest.values():
            results.setdefault(r.account_manager, []).append(r.result)
        rows = []
        for manager in managers:
            mine = results.get(manager, [])
            rows.append({"manager": manager, "listed": self.month.listed(manager),
                         "contacted": len(contacted.get(manager, ())),
                         "saved": mine.count("saved"), "lost": mine.count("lost")})
        return rows
