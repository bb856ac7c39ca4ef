"""Model charts as PNG files: gains and calibration (the profitability charts are in
``profitability.charts``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure  # figures drawn straight to files: no pyplot, no backend


def save_png(fig: Figure, path: Path) -> None:
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
    save_png(fig, path)


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
    save_png(fig, path)
