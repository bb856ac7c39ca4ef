"""Point-in-time features and labels per customer, from monthly panels of the history.

``features_at`` gives the features of every active customer at one as_of (and, when asked, the
monthly snapshots before it); ``training_set`` gives features and labels at the latest monthly
snapshots whose label horizon ends by a cutoff. Both read only events up to the date they are
given: no wall clock, no "latest date in the data".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import ibis
import pandas as pd

from klantwaarde.config import Config
from klantwaarde.contract import table_spec
from klantwaarde.errors import InputError
from klantwaarde.features.catalog import BY_NAME, FEATURES, Feature
from klantwaarde.features.snapshots import FeatureSet, build
from klantwaarde.history import History, build_history, euros
from klantwaarde.periods import anchor_of, months_before, period_of
from klantwaarde.sources import Source
from klantwaarde.typed import typed_events

__all__ = ["BY_NAME", "FEATURES", "CategoryValue", "Feature", "FeatureSet", "check_covers",
           "features_at", "scoring_input", "snapshot_sets", "training_set"]


def features_at(source: Source, as_of: dt.date, cfg: Config, snapshots: int = 1) -> FeatureSet:
    """The features of every active customer at ``as_of`` and at the ``snapshots - 1`` monthly
    snapshot dates before it."""
    anchor = anchor_of(as_of)
    last = period_of(as_of, anchor)
    history = build_history(source, cfg, anchor, last)
    return build(history, cfg, [last - k for k in range(snapshots)], labels=False)


def snapshot_sets(source: Source, as_of: dt.date, cfg: Config, snapshots: int = 1
                  ) -> Iterator[FeatureSet]:
    """``features_at`` one snapshot at a time, the oldest first, all from one history: each
    snapshot is computed in the engine when the one before it has been read."""
    anchor = anchor_of(as_of)
    last = period_of(as_of, anchor)
    history = build_history(source, cfg, anchor, last)
    for k in reversed(range(snapshots)):
        yield build(history, cfg, [last - k], labels=False)


@dataclass(frozen=True)
class CategoryValue:
    """What the buyers of each product category bring, from the last 12 months: ``spend``, a
    buyer's mean revenue in it, scaled to the label horizon; ``peer_margin``, a buyer's mean
    margin on it (revenue - discounts - cost of goods; columns) among the customers of each
    industry (index; the customers table's industry) and among all customers (index ``""``,
    also where an industry has no buyer of the category)."""

    spend: dict[str, float]
    peer_margin: pd.DataFrame


def scoring_input(source: Source, as_of: dt.date, cfg: Config
                  ) -> tuple[FeatureSet, CategoryValue]:
    """The features of every active customer at ``as_of``, and what the buyers of each product
    category brought over the last 12 months (what a new buyer may bring)."""
    anchor = anchor_of(as_of)
    last = period_of(as_of, anchor)
    history = build_history(source, cfg, anchor, last)
    fs = build(history, cfg, [last], labels=False)
    return fs, _category_value(history, cfg)


def _category_value(history: History, cfg: Config) -> CategoryValue:
    """The buyers' means per category, aggregated in the engine: only the industry x category
    table comes back."""
    if not history.categories:
        return CategoryValue({}, pd.DataFrame(index=pd.Index([], name="industry")))
    lines, last = history.lines, history.last
    recent = lines.filter((lines.p > last - 12) & (lines.p <= last) & (lines.category_bit_ > 0))
    per = recent.group_by(["customer_id", "category_bit_"]).aggregate(
        revenue=recent.gross_cents.sum(),
        margin=(recent.gross_cents - recent.discount_cents.fill_null(0)
                - recent.cogs_cents).sum())
    bought = per.filter(per.revenue > 0)
    customers = history.customers
    if customers is not None and "industry" in customers.columns:
        bought = bought.left_join(customers.select("customer_id", "industry"), "customer_id") \
            .drop("customer_id_right")
    else:
        bought = bought.mutate(industry=ibis.null("string"))
    # means of whole cents: exact sums, whatever order the engine adds them in
    means = {"revenue": euros(ibis._.revenue.sum()) / ibis._.count(),
             "margin": euros(ibis._.margin.sum()) / ibis._.count()}
    everyone = bought.group_by("category_bit_").aggregate(**means) \
        .mutate(industry=ibis.literal(""))
    peers = bought.filter(bought.industry.notnull()).group_by(["industry", "category_bit_"]) \
        .aggregate(**means)
    columns = ["industry", "category_bit_", "revenue", "margin"]
    found = everyone.select(columns).union(peers.select(columns)).to_pandas()
    bits = {1 << i: name for i, name in enumerate(history.categories)}
    found["category"] = found.category_bit_.map(bits)
    margin = found.pivot(index="industry", columns="category", values="margin")
    overall = found[found.industry == ""].set_index("category")
    spend = overall.revenue * (cfg.labels.horizon_months / 12)
    return CategoryValue(spend.to_dict(), margin.fillna(overall.margin))


def training_set(source: Source, cfg: Config, cutoff: dt.date, snapshots: int) -> FeatureSet:
    """Features and labels at the latest ``snapshots`` monthly dates whose horizon ends by
    ``cutoff``: the last one is ``horizon_months`` before ``cutoff``. No event after ``cutoff``
    is read."""
    anchor = anchor_of(cutoff)
    last = period_of(cutoff, anchor)
    history = build_history(source, cfg, anchor, last)
    newest = last - cfg.labels.horizon_months
    return build(history, cfg, [newest - k for k in range(snapshots)], labels=True)


# What an --as-of after the newest order would do to each command's numbers.
PAST_THE_DATA = {
    "profitability": "the window up to --as-of would count months without data as months "
                     "without revenue",
    "features": "recency and the windows would count months without data as months without "
                "orders",
    "train": "the labels up to --as-of would count every customer as lost",
    "score": "every customer would be scored as if it had stopped ordering",
    "evaluate": "every scored customer would count as lost",
    "explain": "the customer's reasons would be those of a customer that stopped ordering",
}


def check_covers(source: Source, as_of: dt.date, command: str) -> None:
    """The orders reach to within a month of ``as_of``; otherwise an input error that says what
    would go wrong in ``command`` and which --as-of to pass. The one coverage check of every
    command and pipeline step that reads a source at an as_of: a source that stops earlier
    would make every customer look gone."""
    consequence = PAST_THE_DATA[command]
    orders = source.tables["orders"]
    typed = typed_events(orders.table, table_spec("orders"), orders.formats)
    found = typed.order_date.max().execute()
    newest = None if found is None or pd.isna(found) else pd.Timestamp(found).date()
    if newest is None or newest <= months_before(as_of, 1):
        raise InputError(
            f"orders: the newest order line is dated {newest}, more than a month before "
            f"--as-of {as_of}; {consequence}. Fix: pass an --as-of at the end of the data (for "
            f"example {newest}'s month end).")
