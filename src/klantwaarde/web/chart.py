"""A small line chart of a customer's months, drawn by the server as SVG coordinates."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 220, 80, 16, 12, 28


@dataclass(frozen=True)
class Line:
    label: str
    kind: str  # the CSS class of its colour
    points: list[tuple[float, float]]

    @property
    def path(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.points)


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    lines: list[Line]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    zero: float | None  # the y of zero, where it is inside the chart


def line_chart(months: list[dt.date], series: dict[str, tuple[str, list[float | None]]]
               ) -> Chart | None:
    """``series``: label -> (CSS class, one value per month, None where missing); None when
    no value is given."""
    values = [v for _, vs in series.values() for v in vs if v is not None and math.isfinite(v)]
    if not values or not months:
        return None
    low, high = min(0.0, *values), max(0.0, *values)
    if high == low:
        high = low + 1
    span_x = WIDTH - LEFT - RIGHT
    step = span_x / max(len(months) - 1, 1)

    def y(v: float) -> float:
        return TOP + (high - v) / (high - low) * (HEIGHT - TOP - BOTTOM)

    def x(i: int) -> float:
        return LEFT + (i * step if len(months) > 1 else span_x / 2)

    lines = [Line(label, kind, [(x(i), y(v)) for i, v in enumerate(vs)
                                if v is not None and math.isfinite(v)])
             for label, (kind, vs) in series.items()]
    ticks = [low + (high - low) * k / 4 for k in range(5)]
    every = max(1, math.ceil(len(months) / 6))
    return Chart(WIDTH, HEIGHT, lines, [(y(t), f"EUR {t:,.0f}") for t in ticks],
                 [(x(i), f"{m:%b %Y}") for i, m in enumerate(months) if i % every == 0],
                 y(0.0) if low < 0 < high else None)
