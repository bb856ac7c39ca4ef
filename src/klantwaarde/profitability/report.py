"""``klantwaarde profitability``: per-customer margins, segments, headline figures and charts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from klantwaarde.config import Config
from klantwaarde.errors import InputError
from klantwaarde.profitability.charts import pyramid_png, whale_curve_png
from klantwaarde.profitability.margins import CustomerMargins, customer_margins
from klantwaarde.profitability.segments import (
    Concentration,
    WhaleCurve,
    concentration,
    qualify,
    summary,
    whale_curve,
)
from klantwaarde.sources import Source


@dataclass(frozen=True)
class ProfitabilityReport:
    start: dt.date  # the window is (start, as_of]
    as_of: dt.date
    customers: pd.DataFrame  # one row per customer
    segments: pd.DataFrame
    whale: WhaleCurve
    concentration: Concentration
    skipped: tuple[str, ...]

    @property
    def headline(self) -> dict[str, float]:
        c = self.customers
        revenue = c.revenue.sum()
        return {
            "customers": len(c),
            "revenue": revenue,
            "net_margin": c.net_margin.sum(),
            "net_margin_pct": c.net_margin.sum() / revenue if revenue else float("nan"),
            "cost_to_serve": c.cost_to_serve.sum(),
            "loss_accounts": int((c.category == "loss account").sum()),
            "loss_share": self.whale.loss_share,
            "whale_peak": self.whale.peak,
            "profit_makers_share": self.whale.profit_makers_share,
            "loss_of_loss_accounts": -c.net_margin[c.net_margin < 0].sum(),
        }


def build_report(source: Source, as_of: dt.date, config: Config) -> ProfitabilityReport:
    """The report over the profitability window up to ``as_of``."""
    return report_of(customer_margins(source, as_of, config,
                                      config.profitability.window_months), config)


def report_of(margins: CustomerMargins, config: Config) -> ProfitabilityReport:
    """The report of per-customer margins (``customer_margins`` or ``margins_of``)."""
    customers = margins.table.to_pyarrow().to_pandas()  # ibis.to_pandas converts slowly
    if customers.empty:
        raise InputError(f"No customer has any order, invoice, interaction or complaint between "
                         f"{margins.start} (exclusive) and {margins.as_of}: choose an --as-of "
                         "inside the data's horizon (klantwaarde validate prints it).")
    qualified = qualify(customers, config.costs, config.profitability)
    return ProfitabilityReport(margins.start, margins.as_of, qualified,
                               summary(qualified, config.profitability),
                               whale_curve(qualified.net_margin), concentration(qualified),
                               margins.skipped)


def write_report(report: ProfitabilityReport, folder: Path) -> list[Path]:
    """customers.parquet and .csv, segments.csv, whale_curve.png and pyramid.png."""
    table = pa.Table.from_pandas(report.customers, preserve_index=False)
    files = [folder / name for name in ("customers.parquet", "customers.csv", "segments.csv",
                                        "whale_curve.png", "pyramid.png")]
    pq.write_table(table, files[0])
    report.customers.to_csv(files[1], index=False)
    report.segments.to_csv(files[2], index=False)
    whale_curve_png(report.whale, files[3])
    tiers = report.segments[report.segments.segment == "tier"]
    pyramid_png(tiers[tiers.value != "inactive"], files[4])
    return files
