"""The profitability charts as PNG files: the whale curve and the customer pyramid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # figures drawn straight to files: no pyplot, no backend

from klantwaarde.segments import WhaleCurve


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
    _save(fig, path)


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
    _save(fig, path)


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})


def gains_png(gains: pd.DataFrame, title: str, path: Path) -> None:
    """``gains``: contacted_share and captured_share (``metrics.gains_table``)."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    ax.plot([0, *gains.contacted_share * 100], [0, *gains.captured_share * 100],
            marker="o", color="#1f6f8b", label="model")
    ax.plot([0, 100], [0, 100], color="grey", linestyle="--", label="random")
    ax.set_xlabel("customers contacted, highest score first (%)")
    ax.set_ylabel("captured (%)")
    ax.set_title(title)
    ax.legend()
    _save(fig, path)


def calibration_png(table: pd.DataFrame, predicted: str, observed: str, title: str,
                    path: Path) -> None:
    """Mean prediction against the observed mean per decile of the prediction."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    ax.plot(table[predicted], table[observed], marker="o", color="#1f6f8b")
    low = min(table[predicted].min(), table[observed].min())
    high = max(table[predicted].max(), table[observed].max())
    ax.plot([low, high], [low, high], color="grey", linestyle="--")
    ax.set_xlabel("mean predicted, per decile")
    ax.set_ylabel("mean observed")
    ax.set_title(title)
    _save(fig, path)
