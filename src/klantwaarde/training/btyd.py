"""The classical comparator: BG/NBD with Gamma-Gamma (pymc-marketing's CLV module).

Fitted on the order history up to the validation snapshot (one transaction per customer and
day, as these models expect), it forecasts each customer's purchases and spend over the label
horizon. Churn is ranked by *fewer* expected purchases, not by 1 - P(alive): BG/NBD gives a
customer without repeat purchases P(alive) = 1, which inverts that ranking on such data.

pymc-marketing is an optional extra (``pip install klantwaarde[btyd]``); without it training
says so and leaves the comparison out.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import warnings

import numpy as np
import pandas as pd

from klantwaarde.contract import table_spec
from klantwaarde.sources import Source
from klantwaarde.typed import typed_events

MISSING = ("the buy-till-you-die comparison needs pymc-marketing: "
           "pip install 'klantwaarde[btyd]'")


def available() -> bool:
    return importlib.util.find_spec("pymc_marketing") is not None


def daily_transactions(source: Source, as_of: dt.date) -> pd.DataFrame:
    """customer_id, date and spend per customer and day with an order line, up to ``as_of``."""
    raw = source.tables["orders"]
    t = typed_events(raw.table, table_spec("orders"), raw.formats)
    t = t.filter(t.order_date <= as_of)
    daily = t.group_by(["customer_id", "order_date"]).aggregate(spend=t.gross_amount.sum())
    return daily.to_pandas().rename(columns={"order_date": "date"})


def forecast(transactions: pd.DataFrame, as_of: dt.date, horizon_days: int) -> pd.DataFrame:
    """Per customer: expected purchases and expected spend over ``horizon_days`` after
    ``as_of`` (maximum a posteriori fits of BG/NBD and of Gamma-Gamma: deterministic)."""
    with warnings.catch_warnings():
        # notices, not problems: ArviZ (imported by pymc) announces its refactor once a day,
        # PyTensor computes without a BLAS library where pip installed it, and pymc-extras
        # imports a constant that better-optimize 0.5 deprecates
        warnings.filterwarnings("ignore", r"\s*ArviZ is undergoing a major refactor",
                                FutureWarning)
        warnings.filterwarnings("ignore", "PyTensor could not link to a BLAS installation",
                                UserWarning)
        warnings.filterwarnings("ignore", "better_optimize.constants.MINIMIZE_MODE_KWARGS",
                                DeprecationWarning)
        from pymc_marketing.clv import BetaGeoModel, GammaGammaModel, utils

        rfm = utils.rfm_summary(transactions, "customer_id", "date", monetary_value_col="spend",
                                observation_period_end=pd.Timestamp(as_of), time_unit="D")
        bgnbd = BetaGeoModel()
        bgnbd.fit(rfm[["customer_id", "frequency", "recency", "T"]], method="map",
                  progressbar=False)
        purchases = _mean(bgnbd.expected_purchases(future_t=horizon_days))
        # Gamma-Gamma needs a positive mean spend: fitted on the repeat buyers that have one
        repeat = rfm[(rfm.frequency > 0) & (rfm.monetary_value > 0)]
        gamma = GammaGammaModel()
        gamma.fit(repeat[["customer_id", "monetary_value", "frequency"]], method="map",
                  progressbar=False)
        given = rfm[["customer_id", "monetary_value", "frequency"]].assign(
            monetary_value=rfm.monetary_value.clip(lower=0.0))
        spend = _mean(gamma.expected_customer_spend(data=given))
    return pd.DataFrame({"customer_id": rfm.customer_id.to_numpy(),
                         "expected_purchases": purchases, "expected_spend": purchases * spend})


def _mean(values) -> np.ndarray:
    """The posterior mean per customer (a MAP fit has one chain of one draw)."""
    return values.mean(dim=[d for d in values.dims if d in ("chain", "draw")]).to_numpy()
