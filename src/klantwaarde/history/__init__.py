"""The customer history: order lines costed once (``costing``) and every table aggregated into
monthly panels (``panels``), which profitability, features and labels read as windows."""

from klantwaarde.history.costing import cents, euros
from klantwaarde.history.panels import (
    EPOCH,
    NEVER,
    History,
    build_history,
    day_number,
    late_cent_days,
    per_customer,
    reminders_sent,
)

__all__ = ["EPOCH", "NEVER", "History", "build_history", "cents", "day_number", "euros",
           "late_cent_days", "per_customer", "reminders_sent"]
