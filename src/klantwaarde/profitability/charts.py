"""The profitability charts as PNG files: the whale curve and the customer pyramid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # figures drawn straight to files: no pyplot, no backend

from klantwaarde.plots import save_png
from klantwaarde.profitability.segments import WhaleCurve


def whale_curve_png(curve: WhaleCurve, path: Path) -> None:
    n = len(curve.cumulative_share)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    ax.plot(np.arange(1, n + 1) / n * 100, curve.cumulative_share * 100, color="#1f6f8b")
    ax.axhline(100, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("customers, most profitable first (%)")
    ax.set_ylabel("cumulative net margin (% of total)")
    ax.set_title(f"Whale curve: peak {curve.peak:.0%} of total profit; "
                 f"{curve.loss_share:.0%} of customers lose money")
    save_png(fig, path)


def pyramid_png(tiers: pd.DataFrame, path: Path) -> None:
    """``tiers``: one row per tier from the top down, with customers and revenue."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    widths = tiers.customer_share.to_numpy()[::-1] * 100
    labels = [f"{t}: {c:,} customers, {r:.0%} of revenue" for t, c, r in
              zip(tiers.value, tiers.customers, tiers.revenue_share, strict=True)][::-1]
    ax.barh(range(len(tiers)), widths, left=-widths / 2, color="#1f6f8b")
    ax.set_yticks(range(len(tiers)), labels)
    ax.set_xticks([])
    ax.set_xlabel("bar width: share of customers")
    ax.set_title("Customer pyramid")
    save_png(fig, path)
