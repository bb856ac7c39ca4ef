"""A B2B customer-base simulator with known ground truth (``klantwaarde simulate``).

It writes every table of the data contract and, in ``truth/``, what no model input may read: the
true monthly churn hazard and its dominant driver, the hazard had the account just been
contacted (the causal effect of contact), the state (active, declining), churn events, the
expected net margin, category adoptions and every customer's hidden traits. The same arguments
and seed give the same bytes.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from klantwaarde.config import Config
from klantwaarde.simulation.dynamics import Calendar, simulate_chunk
from klantwaarde.simulation.output import DUCKDB_FILE, Format, output_folder
from klantwaarde.simulation.population import (
    Catalog,
    Population,
    customer_ids,
    make_catalog,
    make_population,
    manager_names,
)

__all__ = ["SimulationResult", "simulate"]


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
             step: Callable[[str], None] = lambda _: None) -> SimulationResult:
    """Simulate ``customers`` over ``months`` from ``start`` (default: the configured start)."""
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
        next_order_id = 1
        chunk = cfg.chunk_customers
        for number, lo in enumerate(range(0, customers, chunk)):
            index = np.arange(lo, min(lo + chunk, customers))
            step(f"simulating customers {lo + 1:,} to {index[-1] + 1:,} of {customers:,} "
                 f"over {months} months")
            write("customers", _customers(index, pop, calendar, config))
            write("customers", _hidden_traits(index, pop, config), truth=True)
            tables = simulate_chunk(index, pop, catalog, calendar, cfg, config.costs,
                                    np.random.default_rng([seed, 2 + number]), next_order_id)
            next_order_id += tables["invoices"].num_rows
            for name, table in tables.items():
                if name.startswith("truth_"):
                    write(name.removeprefix("truth_"), table, truth=True)
                else:
                    write(name, table)
        arguments = {"customers": customers, "months": months, "seed": seed, "format": fmt,
                     "start": calendar.starts[0].item().isoformat()}
        (writer.folder / "truth" / "simulation.yaml").write_text(yaml.safe_dump(
            {"arguments": arguments, "simulate": config.simulate.model_dump(mode="json"),
             "costs": config.costs.model_dump(mode="json")}, sort_keys=False))
    return SimulationResult(out, out / DUCKDB_FILE if fmt == "duckdb" else out, dict(rows),
                            calendar.starts[0].item(), calendar.end.item())


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
