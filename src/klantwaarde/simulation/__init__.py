"""A B2B customer-base simulator with known ground truth (``klantwaarde simulate``).

It writes every table of the data contract but ``managers`` (whose capacities would override
lists.yaml's) and, in ``truth/``, what no model input may read: the true monthly churn hazard
and its dominant driver, the hazard had the account just been contacted (the causal effect of
contact), the state (active, declining), churn events, the expected net margin, category
adoptions and every customer's hidden traits. The same arguments and seed give the same bytes.

A base can be simulated again from its record (``truth/simulation.yaml``) with account managers
who follow a month's lists (``Follow``): every row up to the month the lists were made for is
the same, what follows is what the lists did (``klantwaarde simulate --from DIR --follow DIR``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml
from pydantic import ValidationError

from klantwaarde.config import Config, CostsConfig, SimulateConfig, load_config
from klantwaarde.errors import InputError
from klantwaarde.simulation.dynamics import Calendar, Follow, simulate_chunk
from klantwaarde.simulation.output import DUCKDB_FILE, Format, output_folder
from klantwaarde.simulation.population import (
    Catalog,
    Population,
    customer_ids,
    make_catalog,
    make_population,
    manager_names,
)

__all__ = ["Follow", "Recorded", "SimulationResult", "follow_lists", "recorded", "simulate"]
RECORD = "truth/simulation.yaml"
ORDER_IDS_PER_CHUNK = 10**9  # the order ids of chunk k start at k x this + 1


@dataclass(frozen=True)
class SimulationResult:
    """Where the data went and how many rows each table got."""

    folder: Path
    source: Path  # what to pass as --source
    rows: dict[str, int]
    first_month: dt.date
    end: dt.date  # the first day after the simulated period


def simulate(customers: int, months: int, seed: int, out: Path, config: Config,
             fmt: Format = "parquet", start: dt.date | None = None,
             step: Callable[[str], None] = lambda _: None, follow: Follow | None = None,
             followed: Mapping[str, Any] | None = None) -> SimulationResult:
    """Simulate ``customers`` over ``months`` from ``start`` (default: the configured start),
    with account managers following lists in one month where ``follow`` says so (``followed``
    describes those lists for the record)."""
    cfg = config.simulate
    calendar = Calendar.from_start(np.datetime64(start or cfg.start, "D"), months)
    step("drawing the customer base")
    catalog = make_catalog(cfg, np.random.default_rng([seed, 0]))
    pop = make_population(customers, months, cfg, config.costs, catalog,
                          np.random.default_rng([seed, 1]))
    rows: Counter[str] = Counter()
    with output_folder(out, fmt) as writer:
        def write(name: str, table: pa.Table, truth: bool = False) -> None:
            writer.write(name, table, truth)
            rows[f"truth/{name}" if truth else name] += table.num_rows

        write("products", _products(catalog))
        chunk = cfg.chunk_customers
        for number, lo in enumerate(range(0, customers, chunk)):
            index = np.arange(lo, min(lo + chunk, customers))
            step(f"simulating customers {lo + 1:,} to {index[-1] + 1:,} of {customers:,} "
                 f"over {months} months")
            write("customers", _customers(index, pop, calendar, config))
            write("customers", _hidden_traits(index, pop, config), truth=True)
            tables = simulate_chunk(index, pop, catalog, calendar, cfg, config.costs,
                                    np.random.default_rng([seed, 2 + number]),
                                    np.random.default_rng([seed, 2 + number, 1]),
                                    number * ORDER_IDS_PER_CHUNK + 1, follow)
            for name, table in tables.items():
                if name.startswith("truth_"):
                    write(name.removeprefix("truth_"), table, truth=True)
                else:
                    write(name, table)
        arguments = {"customers": customers, "months": months, "seed": seed, "format": fmt,
                     "start": calendar.starts[0].item().isoformat()}
        record = {"arguments": arguments} | ({"followed": dict(followed)} if followed else {})
        (writer.folder / RECORD).write_text(yaml.safe_dump(
            record | {"simulate": config.simulate.model_dump(mode="json"),
                      "costs": config.costs.model_dump(mode="json")}, sort_keys=False))
    return SimulationResult(out, out / DUCKDB_FILE if fmt == "duckdb" else out, dict(rows),
                            calendar.starts[0].item(), calendar.end.item())


@dataclass(frozen=True)
class Recorded:
    """A simulated base's arguments and settings, as its ``truth/simulation.yaml`` holds them:
    what simulates it again."""

    folder: Path
    customers: int
    months: int
    seed: int
    fmt: Format
    start: dt.date
    config: Config  # the shipped defaults with the recorded simulate and costs settings
    followed: bool  # the base itself follows lists

    @property
    def calendar(self) -> Calendar:
        return Calendar.from_start(np.datetime64(self.start, "D"), self.months)


def recorded(folder: Path) -> Recorded:
    """The record of the base that ``klantwaarde simulate`` wrote into ``folder``."""
    path = folder / RECORD
    if not path.is_file():
        raise InputError(f"--from {folder}: {RECORD} not found; name a folder that klantwaarde "
                         "simulate wrote.")
    try:
        record = yaml.safe_load(path.read_text(encoding="utf-8"))
        a = record["arguments"]
        config = load_config().model_copy(update={
            "simulate": SimulateConfig.model_validate(record["simulate"]),
            "costs": CostsConfig.model_validate(record["costs"])})
        return Recorded(folder, int(a["customers"]), int(a["months"]), int(a["seed"]),
                        a["format"], dt.date.fromisoformat(a["start"]), config,
                        "followed" in record)
    except (yaml.YAMLError, KeyError, TypeError, ValueError, ValidationError) as exc:
        raise InputError(f"{path}: not a simulation record this version can read "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0]}); simulate the "
                         "base again with this version.") from None


def follow_lists(base: Recorded, as_of: dt.date, kind: str, contacted: Mapping[str, str],
                 held_out: Mapping[str, str]) -> Follow:
    """The month after ``as_of``, in which the managers of ``base`` contact the ``contacted``
    customers and leave the ``held_out`` ones alone; each customer id maps to the file that
    named it (for the message when the base has no such customer)."""
    if base.followed:
        raise InputError(f"--from {base.folder} follows lists itself ({RECORD}: followed); "
                         "simulate from the base it was simulated from.")
    calendar = base.calendar
    starts = [d.item() for d in calendar.starts]
    month = int(np.searchsorted(calendar.starts, np.datetime64(as_of, "D"), side="right"))
    if not 0 < month < calendar.months:
        raise InputError(
            f"the lists are of {as_of}, but the base --from {base.folder} simulates {starts[0]} "
            f"to {starts[-1] - dt.timedelta(days=1)}: the lists' as_of must lie in it, and the "
            "month after it too. Follow lists scored on this base before its last month.")

    first, last = customer_ids(np.array([0, base.customers - 1]))

    def numbers(customers: Mapping[str, str]) -> np.ndarray:
        found = []
        for customer, where in customers.items():
            match = re.fullmatch(r"C(\d+)", customer)
            number = int(match.group(1)) - 1 if match else -1
            if not 0 <= number < base.customers or customer_ids(np.array([number]))[0] != customer:
                raise InputError(
                    f"{where}: customer {customer!r} is not in the simulated base --from "
                    f"{base.folder} ({first} to {last}). Follow lists made from the scores of "
                    "this base.")
            found.append(number)
        return np.array(sorted(found), dtype=np.int64)

    return Follow(month, kind, numbers(contacted), numbers(held_out))


def _products(catalog: Catalog) -> pa.Table:
    return pa.table({
        "product_id": catalog.product_ids,
        "category": np.array(catalog.categories)[catalog.product_category],
        "unit_cost": catalog.unit_cost,
    })


def _customers(index: np.ndarray, pop: Population, calendar: Calendar,
               config: Config) -> pa.Table:
    cfg = config.simulate.population
    month = pop.acquired_month[index]
    first = calendar.starts[0].astype("datetime64[M]")
    acquired = (first + month).astype("datetime64[D]") + pop.acquired_day[index]
    return pa.table({
        "customer_id": customer_ids(index),
        "account_manager": manager_names(pop.manager[index]),
        "industry": np.array(list(cfg.industries))[pop.industry[index]],
        "region": np.array(list(cfg.regions))[pop.region[index]],
        "acquired_on": acquired,
        "strategic": pop.strategic[index],
        "size_class": np.array(list(cfg.size_classes))[pop.size_class[index]],
        "gender": np.array(list(cfg.contact_gender))[pop.gender[index]],
    })


def _hidden_traits(index: np.ndarray, pop: Population, config: Config) -> pa.Table:
    """What drives each customer and no export shows."""
    cfg = config.simulate
    return pa.table({
        "customer_id": customer_ids(index),
        "monthly_spend": np.round(pop.size[index], 2),
        "responsiveness": np.round(pop.responsiveness[index], 4),
        "payment": np.array(list(cfg.payment.classes))[pop.payment_class[index]],
        "small_frequent": pop.small_frequent[index],
        "friendly": pop.friendly[index],
        "complaint_heavy": pop.complaint_heavy[index],
        "discount": pop.discount[index],
        "warranted_discount": pop.warranted_discount[index],
        "manager_workload": np.round(pop.workload[index], 4),
        "manager_visit_habit": np.round(pop.visit_habit[index], 4),
    })
