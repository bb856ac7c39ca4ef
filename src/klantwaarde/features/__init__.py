"""Point-in-time features and labels per customer, from monthly panels of the history.

``features_at`` gives the features of every active customer at one as_of (and, when asked, the
monthly snapshots before it); ``training_set`` gives features and labels at the latest monthly
snapshots whose label horizon ends by a cutoff. Both read only events up to the date they are
given: no wall clock, no "latest date in the data".
"""

from __future__ import annotations

import datetime as dt

from klantwaarde.config import Config
from klantwaarde.features.catalog import BY_NAME, FEATURES, Feature
from klantwaarde.features.history import build_history
from klantwaarde.features.snapshots import FeatureSet, build
from klantwaarde.periods import anchor_of, period_of
from klantwaarde.sources import Source

__all__ = ["BY_NAME", "FEATURES", "Feature", "FeatureSet", "features_at", "training_set"]


def features_at(source: Source, as_of: dt.date, cfg: Config, snapshots: int = 1) -> FeatureSet:
    """The features of every active customer at ``as_of`` and at the ``snapshots - 1`` monthly
    snapshot dates before it."""
    anchor = anchor_of(as_of)
    last = period_of(as_of, anchor)
    history = build_history(source, cfg, anchor, last)
    return build(history, cfg, [last - k for k in range(snapshots)], labels=False)


def training_set(source: Source, cfg: Config, cutoff: dt.date, snapshots: int) -> FeatureSet:
    """Features and labels at the latest ``snapshots`` monthly dates whose horizon ends by
    ``cutoff``: the last one is ``horizon_months`` before ``cutoff``. No event after ``cutoff``
    is read."""
    anchor = anchor_of(cutoff)
    last = period_of(cutoff, anchor)
    history = build_history(source, cfg, anchor, last)
    newest = last - cfg.labels.horizon_months
    return build(history, cfg, [newest - k for k in range(snapshots)], labels=True)
