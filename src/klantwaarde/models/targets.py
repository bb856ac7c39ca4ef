"""The targets, their registered model names and their output columns."""

from __future__ import annotations

from typing import Literal

TargetName = Literal["churn", "margin", "upgrade", "response"]
REQUIRED: tuple[TargetName, ...] = ("churn", "margin", "upgrade")  # scoring needs a champion
OPTIONAL: tuple[TargetName, ...] = ("response",)  # a source without interactions has none
TARGETS: tuple[TargetName, ...] = REQUIRED + OPTIONAL
NAMES: dict[TargetName, str] = {t: f"klantwaarde-{t}" for t in TARGETS}


def output_columns(target: TargetName, labels: list[str]) -> list[str]:
    """The columns a model of ``target`` with label columns ``labels`` predicts:

    - churn: ``churn_probability``;
    - margin: ``future_net_margin`` (over the label horizon);
    - upgrade: ``upgrade_probability`` and one ``adopt__<category>`` probability per category;
    - response: ``contact_effect``, the reduction in churn probability over the horizon that a
      visit or call in the next month brings (NaN where the history gives no estimate).
    """
    if target == "churn":
        return ["churn_probability"]
    if target == "margin":
        return ["future_net_margin"]
    if target == "response":
        return ["contact_effect"]
    return ["upgrade_probability" if label == "label_upgrade" else
            label.replace("label_adopt__", "adopt__") for label in labels]
