"""Month by month behaviour of a chunk of customers: contact, churn, orders, payments, complaints
and cross-sell, with the true hazard and expected margin recorded for every customer-month.

The monthly churn hazard of an active account is a logistic function of its risk drivers at the
start of the month: neglect (months without a visit or call beyond what its size class tolerates),
open complaints, broken promises (late deliveries, complaints fixed later than promised) and,
weakly, price (the discount its turnover warrants but it does not get). A recent visit or call
lowers the log-odds, by an amount that differs per account (its responsiveness). A churning
account either stops or dries up: its activity falls month by month until it is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from klantwaarde.config import CostsConfig, SimulateConfig
from klantwaarde.simulation.population import (
    Catalog,
    Population,
    affinity_matrix,
    customer_ids,
    manager_names,
)

DRIVERS = ("none", "neglect", "open_complaints", "broken_promises", "price")
STATES = ("active", "declining", "churned")
CONTACT_KINDS = ("visit", "call", "email")
_DRIVER_MIN = 0.25  # log-odds a driver must add to be named the dominant one


@dataclass(frozen=True)
class Calendar:
    """The simulated months: first day of each (and of the month after the last) as numpy days."""

    starts: np.ndarray  # datetime64[D], months + 1 values

    @classmethod
    def from_start(cls, start: np.datetime64, months: int) -> Calendar:
        first = start.astype("datetime64[M]")
        return cls((first + np.arange(months + 1)).astype("datetime64[D]"))

    @property
    def months(self) -> int:
        return len(self.starts) - 1

    @property
    def end(self) -> np.datetime64:
        """The first day after the simulated period."""
        return self.starts[-1]

    def days_in(self, t: int) -> int:
        return int((self.starts[t + 1] - self.starts[t]).astype(int))


class _Events:
    """Rows of one output table, collected month by month as column arrays."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, **columns: np.ndarray) -> None:
        self.parts.append(columns)

    def columns(self) -> dict[str, np.ndarray]:
        names = self.parts[0].keys() if self.parts else ()
        return {n: np.concatenate([p[n] for p in self.parts]) for n in names}


@dataclass(frozen=True)
class Follow:
    """Account managers who follow lists in one simulated month: every ``contacted`` customer
    gets a contact of ``kind`` that month (on top of the usual ones), the ``held_out`` customers
    (the control group) get no visit or call; everyone else behaves as without lists."""

    month: int  # index of the simulated month
    kind: str  # "visit" or "call"
    contacted: np.ndarray  # 0-based customer numbers
    held_out: np.ndarray


def simulate_chunk(index: np.ndarray, pop: Population, catalog: Catalog, calendar: Calendar,
                   cfg: SimulateConfig, costs: CostsConfig, rng: np.random.Generator,
                   payments: np.random.Generator, first_order_id: int,
                   follow: Follow | None = None) -> dict[str, pa.Table]:
    """Simulate customers ``index`` (0-based numbers) over the calendar; returns the chunk's rows
    of orders, invoices, interactions, complaints and the truth tables. ``payments`` draws when
    each invoice is paid, after the months, so that a month's draws from ``rng`` depend only on
    the months before it: with a ``follow``, every row up to that month is as without it."""
    sim = _Chunk(index, pop, catalog, calendar, cfg, costs, rng, follow)
    for t in range(calendar.months):
        sim.month(t)
    return sim.tables(first_order_id, payments)


class _Chunk:
    def __init__(self, index: np.ndarray, pop: Population, catalog: Catalog, calendar: Calendar,
                 cfg: SimulateConfig, costs: CostsConfig, rng: np.random.Generator,
                 follow: Follow | None = None) -> None:
        self.cfg, self.costs, self.rng = cfg, costs, rng
        self.follow = follow
        self.catalog, self.calendar = catalog, calendar
        self.ids = customer_ids(index)
        n = len(index)
        take = lambda a: a[index]  # noqa: E731
        self.acquired = take(pop.acquired_month)
        self.size = take(pop.size)
        self.industry = take(pop.industry)
        self.discount = take(pop.discount)
        self.responsiveness = take(pop.responsiveness)
        self.adopted = take(pop.initial_categories).copy()
        size_class = take(pop.size_class)
        classes = list(cfg.population.size_classes)

        def per_class(values: dict[str, float]) -> np.ndarray:
            return np.array([values[c] for c in classes])[size_class]

        order, contact = cfg.ordering, cfg.contact
        relative = self.size / cfg.population.median_monthly_spend
        self.frequency = (order.orders_per_month * relative ** order.frequency_elasticity
                          * np.where(take(pop.small_frequent), order.small_frequent_factor, 1.0))
        self.lines = np.clip(order.lines_per_order * relative ** order.lines_elasticity, 1.0, 30.0)
        attention = take(pop.workload) ** contact.workload_elasticity
        self.visit_rate = (per_class(contact.visits_per_year) * attention
                           + take(pop.friendly) * contact.friendly_visits_per_year
                           ) * take(pop.visit_habit) / 12
        self.call_rate = per_class(contact.calls_per_year) / 12 * attention
        self.tolerated = per_class(contact.tolerated_months)
        days_late = np.array([c.mean_days_late for c in cfg.payment.classes.values()])
        self.mean_days_late = days_late[take(pop.payment_class)]
        complaints = cfg.complaints
        self.complaint_rate = complaints.per_order * np.where(
            take(pop.complaint_heavy), complaints.heavy_factor, 1.0)
        self.price_gap = np.maximum(take(pop.warranted_discount) - self.discount, 0) * 100
        self.affinity = affinity_matrix(cfg, catalog.categories)[self.industry]
        self.margin_of = catalog.margins

        months = calendar.months
        self.state = np.zeros(n, np.int8)  # 0 not yet a customer, 1 active, 2 declining, 3 gone
        self.activity = np.zeros(n)
        self.drying = rng.uniform(*cfg.churn.drying_factor, n)
        # months since the last visit or call at the start of the month; for customers of before
        # the start, drawn around what their class tolerates
        self.since_contact = rng.exponential(self.tolerated)
        self.open_complaints = np.zeros(n, np.int32)
        self.recent_broken = np.zeros(n, np.int32)  # broken promises in the last six months
        self.channel = take(pop.channel)
        self.manager = take(pop.manager)
        if follow is not None:  # the followed customers of this chunk, as masks
            self.held_out = np.isin(index, follow.held_out)
            self.listed = np.isin(index, follow.contacted) & ~self.held_out
        self.order_count = 0
        self.closing = np.zeros((n, months + 1), np.int32)  # complaints closing per month
        self.broken = np.zeros((n, months + 1), np.int32)  # broken promises per month
        self.out = {name: _Events() for name in
                    ("orders", "lines", "interactions", "complaints", "truth", "adoptions")}

    # -- one month ---------------------------------------------------------------------------

    def month(self, t: int) -> None:
        cfg, rng = self.cfg, self.rng
        new = self.acquired == t if t else self.acquired <= 0
        self.state[new] = 1
        self.activity[new] = 1.0
        joined = self.acquired == t
        self.since_contact[joined] = 0.0  # winning the account was a contact

        ramp = np.clip(0.5 + 0.1 * (t - self.acquired), 0.5, 1.0)
        season = cfg.ordering.seasonality[_calendar_month(self.calendar.starts[t]) - 1]

        active = self.state == 1
        self.recent_broken = self.broken[:, max(0, t - 6):t].sum(axis=1)
        hazard, contacted_hazard, driver = self._hazard()
        churns = active & (rng.random(len(hazard)) < hazard)
        stops = churns & (rng.random(len(hazard)) < cfg.churn.stop_share)
        state_at_start = self.state.copy()
        self.state[churns] = 2
        self.activity[self.state == 2] *= self.drying[self.state == 2]
        self.activity[stops] = 0.0
        gone = (self.state == 2) & (self.activity < cfg.churn.dried_up_below)
        self.state[gone] = 3
        self.activity[gone] = 0.0
        level = np.where(self.state == 1, ramp, 1.0) * self.activity

        alive = (self.state == 1) | (self.state == 2)
        contacted, last_day = self._contacts(t, alive)
        n_orders = self._orders(t, level * season)
        self._complaints(t, n_orders)
        self._cross_sell(t, alive, contacted)
        self._truth(t, state_at_start, hazard, contacted_hazard, driver,
                    churns, stops, level * season)

        self.since_contact = np.where(contacted, (self.calendar.days_in(t) - last_day)
                                      / self.calendar.days_in(t), self.since_contact + 1)
        self.open_complaints -= self.closing[:, t]

    def _hazard(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """True hazard at the start of the month, the hazard had the account been contacted just
        then, and the dominant driver."""
        c = self.cfg.churn
        terms = np.stack([
            c.neglect * np.clip(self.since_contact / self.tolerated - 1, 0, c.neglect_cap),
            c.open_complaint * self.open_complaints,
            c.broken_promise * self.recent_broken,
            c.price * self.price_gap,
        ])
        base = np.log(c.base_monthly_hazard / (1 - c.base_monthly_hazard))
        risk = base + terms[1:].sum(axis=0)
        protection = c.contact_protection * self.responsiveness
        hazard = _sigmoid(risk + terms[0] - protection * np.exp(-self.since_contact
                                                                 / c.protection_months))
        contacted = _sigmoid(risk - protection)
        strongest = terms.argmax(axis=0)
        driver = np.where(terms.max(axis=0) >= _DRIVER_MIN, strongest + 1, 0)
        return hazard, contacted, driver

    def _contacts(self, t: int, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The month's visits, calls and emails; with lists followed this month, the held-out
        customers get no visit or call and each listed one (gone or not) a contact of the
        lists' kind on a random day. Returns who had a visit or call, and the last day."""
        rng, days = self.rng, self.calendar.days_in(t)
        rates = (self.visit_rate, self.call_rate,
                 np.full(len(alive), self.cfg.contact.emails_per_year / 12))
        following = self.follow is not None and self.follow.month == t
        last_day = np.full(len(alive), -1)
        for number, (kind, rate) in enumerate(zip(CONTACT_KINDS, rates, strict=True)):
            counts = rng.poisson(rate * alive)
            if following and kind != "email":
                counts[self.held_out] = 0
            who = np.repeat(np.arange(len(alive)), counts)
            if following and kind == self.follow.kind:
                who = np.concatenate([who, np.nonzero(self.listed & (self.state > 0))[0]])
            day = rng.integers(0, days, len(who))
            if kind != "email":
                np.maximum.at(last_day, who, day)
            self.out["interactions"].add(customer=who, date=self.calendar.starts[t] + day,
                                         kind=np.full(len(who), number, np.int8))
        return last_day >= 0, last_day

    def _orders(self, t: int, level: np.ndarray) -> np.ndarray:
        """Orders and their lines of the month; returns orders per customer."""
        rng, catalog = self.rng, self.catalog
        n_orders = rng.poisson(self.frequency * level)
        who = np.repeat(np.arange(len(level)), n_orders)
        value = self.size[who] / self.frequency[who] * rng.lognormal(-0.08, 0.4, len(who))
        n_lines = 1 + rng.poisson(self.lines[who] - 1)
        day = rng.integers(0, self.calendar.days_in(t), len(who))
        self.out["orders"].add(customer=who, date=self.calendar.starts[t] + day,
                               lines=n_lines)
        line_order = np.repeat(np.arange(len(who)), n_lines)
        line_customer = who[line_order]
        adopted = self.adopted[line_customer]
        cumulative = np.cumsum(adopted, axis=1)
        pick = rng.random(len(line_order)) * cumulative[:, -1]
        category = np.argmax(cumulative > pick[:, None], axis=1)
        per_category = self.cfg.catalog.products_per_category
        product = category * per_category + (per_category * rng.random(len(line_order)) ** 2
                                              ).astype(int)
        price = catalog.list_price[product]
        target = value[line_order] / n_lines[line_order] * rng.lognormal(-0.1, 0.45,
                                                                         len(line_order))
        quantity = np.maximum(1, np.round(target / price)).astype(np.int64)
        returned = rng.random(len(line_order)) < self.cfg.ordering.return_share
        quantity = np.where(returned, -np.maximum(1, quantity // 3), quantity)
        gross = np.round(quantity * price, 2)
        self.out["lines"].add(order=line_order + self.order_count, product=product,
                              quantity=quantity, gross=gross,
                              discount=np.round(gross * self.discount[line_customer], 2),
                              cost=np.round(quantity * catalog.unit_cost[product], 2))
        self.order_count += len(who)
        return n_orders

    def _complaints(self, t: int, n_orders: np.ndarray) -> None:
        rng, c, cal = self.rng, self.cfg.complaints, self.calendar
        counts = rng.poisson(self.complaint_rate * n_orders)
        who = np.repeat(np.arange(len(n_orders)), counts)
        opened = cal.starts[t] + rng.integers(0, cal.days_in(t), len(who))
        category = rng.choice(len(c.categories), len(who), p=list(c.categories.values()))
        duration = np.ceil(rng.exponential(c.mean_days_to_close, len(who))).astype(int)
        never = rng.random(len(who)) < c.never_closed_share
        closed = opened + duration
        self.out["complaints"].add(customer=who, opened=opened, category=category,
                                   closed=closed, never=never)
        close_month = np.where(never, cal.months, _month_index(closed, cal))
        np.add.at(self.closing, (who, close_month), 1)
        self.open_complaints += np.bincount(who, minlength=len(n_orders)).astype(np.int32)
        late_fix = never | (duration > c.promised_days)
        promise_month = _month_index(opened + c.promised_days, cal)
        np.add.at(self.broken, (who[late_fix], promise_month[late_fix]), 1)
        delivery = np.isin(category, [i for i, name in enumerate(c.categories)
                                      if name == "delivery"])
        np.add.at(self.broken, (who[delivery], np.full(delivery.sum(), t)), 1)

    def _cross_sell(self, t: int, alive: np.ndarray, contacted: np.ndarray) -> None:
        x = self.cfg.cross_sell
        boost = np.where(contacted, x.contact_factor, 1.0)
        p = x.monthly_adoption * self.affinity * boost[:, None]
        adopt = (~self.adopted) & alive[:, None] & (self.rng.random(self.adopted.shape) < p)
        who, category = np.nonzero(adopt)
        self.adopted |= adopt
        self.out["adoptions"].add(customer=who, month=np.full(len(who), t), category=category,
                                  after_contact=contacted[who])

    def _truth(self, t: int, state: np.ndarray, hazard: np.ndarray,
               contacted_hazard: np.ndarray, driver: np.ndarray, churns: np.ndarray,
               stops: np.ndarray, level: np.ndarray) -> None:
        who = np.nonzero(state > 0)[0]  # every customer acquired by the start of the month
        active = state[who] == 1
        kind = np.where(churns[who], np.where(stops[who], 1, 2), 0)
        self.out["truth"].add(
            customer=who, month=np.full(len(who), t), state=state[who] - 1,
            hazard=np.where(active, hazard[who], np.nan),
            hazard_if_contacted=np.where(active, contacted_hazard[who], np.nan),
            driver=np.where(active, driver[who], 0), churn=kind,
            expected_margin=self._expected_margin(level)[who])

    def _expected_margin(self, level: np.ndarray) -> np.ndarray:
        """Expected net margin of the month given the account's activity, with the cost rates."""
        k = self.costs
        spend = self.size * level
        orders = self.frequency * level
        adopted = self.adopted
        cost_share = ((1 - self.margin_of)[None, :] * adopted).sum(axis=1) / adopted.sum(axis=1)
        order_net = self.size / self.frequency * (1 - self.discount)
        per_order = (k.per_order + k.per_invoice + self.lines * k.per_order_line
                     + np.where(order_net < k.franco_threshold, k.per_franco_shipment, 0.0))
        complaints = self.complaint_rate * orders * k.per_complaint
        late = (spend * (1 - self.discount) * k.late_payment_interest_per_year / 365
                * np.maximum(self.mean_days_late, 0)
                + orders * k.per_reminder * np.minimum(np.maximum(self.mean_days_late, 0) / 30,
                                                       k.max_reminders))
        contact = (self.visit_rate * k.per_visit + self.call_rate * k.per_call) * (level > 0)
        return (spend * (1 - self.discount - cost_share) - orders * per_order - complaints
                - late - contact)

    # -- output ------------------------------------------------------------------------------

    def tables(self, first_order_id: int, payments: np.random.Generator
               ) -> dict[str, pa.Table]:
        return {
            "orders": self._order_lines(first_order_id),
            "invoices": self._invoices(first_order_id, payments),
            "interactions": self._interactions(),
            "complaints": self._complaint_rows(),
            "truth_months": self._truth_rows(),
            "truth_adoptions": self._adoption_rows(),
        }

    def _order_lines(self, first_order_id: int) -> pa.Table:
        orders, lines = self.out["orders"].columns(), self.out["lines"].columns()
        order = lines["order"]
        customer = orders["customer"][order]
        return pa.table({
            "order_id": (first_order_id + order).astype(np.int64),
            "customer_id": _labels(self.ids, customer),
            "order_date": orders["date"][order],
            "product_id": _labels(self.catalog.product_ids, lines["product"]),
            "category": _labels(self.catalog.categories,
                                self.catalog.product_category[lines["product"]]),
            "quantity": lines["quantity"],
            "gross_amount": lines["gross"],
            "discount_amount": lines["discount"],
            "cost_amount": lines["cost"],
            "channel": _labels(list(self.cfg.ordering.channels), self.channel[customer]),
        })

    def _invoices(self, first_order_id: int, payments: np.random.Generator) -> pa.Table:
        """One invoice per order, for the order's net amount; unpaid ones have no paid date."""
        orders, lines = self.out["orders"].columns(), self.out["lines"].columns()
        net = np.bincount(lines["order"], weights=lines["gross"] - lines["discount"],
                          minlength=len(orders["customer"]))
        customer = orders["customer"]
        due = orders["date"] + self.cfg.payment.terms_days
        late = np.round(payments.exponential(np.maximum(self.mean_days_late[customer], 0.1))
                        - 2).astype(int)
        paid = due + late
        order_id = first_order_id + np.arange(len(customer))
        return pa.table({
            "invoice_id": np.char.add("F", order_id.astype(str)),
            "customer_id": _labels(self.ids, customer),
            "invoice_date": orders["date"],
            "amount": np.round(net, 2),
            "due_date": due,
            "paid_date": pa.array(paid, mask=paid >= self.calendar.end),
        })

    def _interactions(self) -> pa.Table:
        rows = self.out["interactions"].columns()
        return pa.table({
            "customer_id": _labels(self.ids, rows["customer"]),
            "date": rows["date"],
            "kind": _labels(CONTACT_KINDS, rows["kind"]),
            "account_manager": _labels(manager_names(np.arange(self.manager.max() + 1)),
                                       self.manager[rows["customer"]]),
        })

    def _complaint_rows(self) -> pa.Table:
        rows = self.out["complaints"].columns()
        closed = rows["closed"]
        return pa.table({
            "customer_id": _labels(self.ids, rows["customer"]),
            "opened_on": rows["opened"],
            "closed_on": pa.array(closed, mask=rows["never"] | (closed >= self.calendar.end)),
            "category": _labels(list(self.cfg.complaints.categories), rows["category"]),
        })

    def _truth_rows(self) -> pa.Table:
        rows = self.out["truth"].columns()
        churn = rows["churn"]
        return pa.table({
            "customer_id": _labels(self.ids, rows["customer"]),
            "month": self.calendar.starts[rows["month"]],
            "state": _labels(STATES, rows["state"]),
            "hazard": pa.array(rows["hazard"], from_pandas=True),
            "hazard_if_contacted": pa.array(rows["hazard_if_contacted"], from_pandas=True),
            "driver": _labels(DRIVERS, rows["driver"]),
            "churn": _labels([None, "stop", "dry_up"], churn),
            "expected_margin": np.round(rows["expected_margin"], 2),
        })

    def _adoption_rows(self) -> pa.Table:
        rows = self.out["adoptions"].columns()
        return pa.table({
            "customer_id": _labels(self.ids, rows["customer"]),
            "month": self.calendar.starts[rows["month"]],
            "category": _labels(self.catalog.categories, rows["category"]),
            "after_contact": rows["after_contact"],
        })


def _labels(values: Sequence[str | None] | np.ndarray, index: np.ndarray) -> pa.Array:
    """Text column ``values[index]``, built in Arrow: far less memory than numpy strings."""
    return pa.array(values, pa.string()).take(pa.array(index))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _calendar_month(day: np.datetime64) -> int:
    return int(day.astype("datetime64[M]").astype(int) % 12) + 1


def _month_index(days: np.ndarray, calendar: Calendar) -> np.ndarray:
    """The simulated month each day falls in; days after the period map to ``calendar.months``."""
    return np.clip(np.searchsorted(calendar.starts, days, side="right") - 1, 0, calendar.months)
