"""How well a model ranks and predicts, per target, on one validation snapshot.

Every function takes the true labels and the predictions as arrays and returns plain numbers (to
log as MLflow metrics) or a small table (to log as an artifact). The expected maximum profit of a
retention campaign follows Verbraken, Verbeke and Baesens (2013), "A novel profit maximizing
metric for measuring classification performance of customer churn prediction models", IEEE TKDE
25(5): the profit of contacting the riskiest fraction of the base, maximised over that fraction
and averaged over a Beta-distributed share of contacted churners who accept the offer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    mean_absolute_error,
    roc_auc_score,
    root_mean_squared_error,
)

from klantwaarde.config import CampaignConfig

TOP = 0.10  # the share of the base that "lift" and "capture" look at


def _top(scores: np.ndarray, share: float) -> np.ndarray:
    """Indices of the ``share`` highest scores; ties broken by position, so the result is
    reproducible."""
    k = max(1, int(round(share * len(scores))))
    return np.argsort(-scores, kind="stable")[:k]


def churn_metrics(y: np.ndarray, p: np.ndarray, campaign: CampaignConfig) -> dict[str, float]:
    """ROC-AUC, PR-AUC, lift and capture in the top 10%, Brier score (for probabilities; NaN for
    other scores) and the expected maximum profit (per customer in the base, and the share
    contacted at its maximum)."""
    y = np.asarray(y, dtype=bool)
    p = np.asarray(p, dtype=float)
    top = _top(p, TOP)
    rate = y.mean()
    emp, share = expected_maximum_profit(y, p, campaign)
    return {
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "lift_top10": y[top].mean() / rate if rate > 0 else float("nan"),
        "capture_top10": y[top].sum() / y.sum() if y.any() else float("nan"),
        "brier": brier_score_loss(y, p) if 0 <= p.min() and p.max() <= 1 else float("nan"),
        "emp_per_customer": emp,
        "emp_contacted_share": share,
        "churn_rate": rate,
    }


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Per decile of the predicted probability: customers, mean prediction and observed rate."""
    frame = pd.DataFrame({"predicted": np.asarray(p, float), "observed": np.asarray(y, float)})
    frame["decile"] = _deciles(frame.predicted.to_numpy(), bins)
    return frame.groupby("decile").agg(customers=("observed", "size"),
                                       mean_predicted=("predicted", "mean"),
                                       observed_rate=("observed", "mean")).reset_index()


def gains_table(y: np.ndarray, score: np.ndarray, points: int = 20) -> pd.DataFrame:
    """Cumulative share of the positives (or of the value) captured when contacting the
    highest-scored share of the base."""
    order = np.argsort(-np.asarray(score, float), kind="stable")
    gained = np.cumsum(np.asarray(y, float)[order])
    total = gained[-1] if len(gained) and gained[-1] != 0 else 1.0
    shares = np.linspace(1 / points, 1, points)
    idx = np.maximum(np.round(shares * len(order)).astype(int) - 1, 0)
    return pd.DataFrame({"contacted_share": shares, "captured_share": gained[idx] / total})


def expected_maximum_profit(y: np.ndarray, p: np.ndarray, campaign: CampaignConfig,
                            grid: int = 200) -> tuple[float, float]:
    """EMP per customer in the base and the share of the base contacted at the maximum (at the
    mean acceptance rate).

    Contacting a churner who accepts keeps ``clv`` at the cost of the incentive; every contact
    costs ``contact_cost``; a non-churner who is contacted takes the incentive too. With
    delta = incentive / clv and phi = contact / clv, the profit per customer of contacting the
    top fraction is ``clv * (gamma * (1 - delta) - phi) * n0 / N - clv * (delta + phi) * n1 / N``
    for n0 churners and n1 non-churners in that fraction (Verbraken et al., 2013, eq. 12).
    """
    y = np.asarray(y, dtype=bool)
    order = np.argsort(-np.asarray(p, float), kind="stable")
    n = len(y)
    churners = np.concatenate([[0], np.cumsum(y[order])]) / n  # n0 / N at each cut
    others = np.concatenate([[0], np.cumsum(~y[order])]) / n  # n1 / N
    clv = campaign.customer_lifetime_value
    delta, phi = campaign.incentive_cost / clv, campaign.contact_cost / clv
    # midpoints of equal-probability slices of the Beta distribution of gamma
    gammas = stats.beta.ppf((np.arange(grid) + 0.5) / grid, campaign.acceptance_alpha,
                            campaign.acceptance_beta)
    profits = (clv * (gammas[:, None] * (1 - delta) - phi) * churners[None, :]
               - clv * (delta + phi) * others[None, :])
    emp = float(profits.max(axis=1).mean())
    mean_gamma = campaign.acceptance_alpha / (campaign.acceptance_alpha + campaign.acceptance_beta)
    at_mean = clv * (mean_gamma * (1 - delta) - phi) * churners - clv * (delta + phi) * others
    return emp, float(np.argmax(at_mean) / n)


def margin_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, Spearman's rank correlation, normalized Gini and the totals."""
    y = np.asarray(y, float)
    pred = np.asarray(pred, float)
    return {
        "mae": mean_absolute_error(y, pred),
        "rmse": root_mean_squared_error(y, pred),
        "spearman": float(stats.spearmanr(y, pred).statistic),
        "normalized_gini": normalized_gini(y, pred),
        "total_predicted": float(pred.sum()),
        "total_actual": float(y.sum()),
        "total_ratio": float(pred.sum() / y.sum()) if y.sum() != 0 else float("nan"),
    }


def normalized_gini(y: np.ndarray, pred: np.ndarray) -> float:
    """The Gini of the values ordered by prediction over that of the perfect order: 1 ranks the
    values perfectly, 0 is no better than chance. Values may be negative."""
    def gini(order_by: np.ndarray) -> float:
        values = np.asarray(y, float)[np.argsort(-order_by, kind="stable")]
        total = values.sum()
        if total == 0:
            return float("nan")
        cumulative = np.cumsum(values) / total
        return float((cumulative - np.arange(1, len(values) + 1) / len(values)).sum()
                     / len(values))
    return gini(np.asarray(pred, float)) / gini(np.asarray(y, float))


def decile_table(y: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """Per decile of the prediction: customers, mean predicted and mean actual."""
    frame = pd.DataFrame({"predicted": np.asarray(pred, float), "actual": np.asarray(y, float)})
    frame["decile"] = _deciles(frame.predicted.to_numpy(), 10)
    return frame.groupby("decile").agg(customers=("actual", "size"),
                                       mean_predicted=("predicted", "mean"),
                                       mean_actual=("actual", "mean")).reset_index()


def upgrade_metrics(labels: pd.DataFrame, scores: pd.DataFrame, eligible: pd.DataFrame,
                    k: int) -> dict[str, float]:
    """ROC-AUC and PR-AUC per category (among the customers who could still adopt it), and the
    hit rate of the next-best categories: the share of customers who adopted something whose
    ``k`` best-ranked eligible categories hold an adopted one."""
    out: dict[str, float] = {}
    for c in labels.columns:
        mask = eligible[c].to_numpy()
        y, s = labels[c].to_numpy()[mask], scores[c].to_numpy()[mask]
        if y.any() and not y.all():
            out[f"roc_auc__{c}"] = roc_auc_score(y, s)
            out[f"pr_auc__{c}"] = average_precision_score(y, s)
    ranked = np.where(eligible.to_numpy(), scores.to_numpy(), -np.inf)
    best = np.argsort(-ranked, axis=1, kind="stable")[:, :k]
    adopted = labels.to_numpy().astype(bool)
    hit = np.take_along_axis(adopted, best, axis=1).any(axis=1)
    some = adopted.any(axis=1)
    out[f"hit_rate_at_{k}"] = float(hit[some].mean()) if some.any() else float("nan")
    aucs = [v for name, v in out.items() if name.startswith("roc_auc__")]
    out["mean_roc_auc"] = float(np.mean(aucs)) if aucs else float("nan")
    return out


def _deciles(values: np.ndarray, bins: int) -> np.ndarray:
    """1 .. bins by rank (ties split by position), the highest values in the last bin."""
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return ranks * bins // max(len(values), 1) + 1


def qini_curve(retained: np.ndarray, treated: np.ndarray, effect: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """The Qini curve of a ranking by predicted ``effect`` (highest first): at each cut (after
    a group of tied scores) the customers targeted so far and the extra retained among them,
    R_T - R_C * N_T / N_C (Radcliffe, 2007). Starts at (0, 0)."""
    retained = np.asarray(retained, float)
    treated = np.asarray(treated, bool)
    effect = np.asarray(effect, float)
    order = np.argsort(-effect, kind="stable")
    r, t, s = retained[order], treated[order], effect[order]
    cuts = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last row of each tied group
    n_t, n_c = np.cumsum(t)[cuts], np.cumsum(~t)[cuts]
    r_t, r_c = np.cumsum(r * t)[cuts], np.cumsum(r * ~t)[cuts]
    gain = r_t - np.divide(r_c * n_t, n_c, out=np.zeros(len(cuts)), where=n_c > 0)
    return np.r_[0, cuts + 1].astype(float), np.r_[0.0, gain]


def qini_coefficient(retained: np.ndarray, treated: np.ndarray, effect: np.ndarray) -> float:
    """The area between the Qini curve and the random line (the straight line to the same end),
    over that of the perfect ranking (treated who stayed first, untreated who stayed last), as
    scikit-uplift's ``qini_auc_score``: 1 is the best ranking the outcomes allow, 0 is random,
    negative ranks the wrong way. NaN without treated and untreated customers."""
    retained = np.asarray(retained, float)
    treated = np.asarray(treated, bool)
    if treated.all() or not treated.any():
        return float("nan")

    def area(score: np.ndarray) -> float:
        x, y = qini_curve(retained, treated, score)
        return float(np.trapezoid(y, x) - x[-1] * y[-1] / 2)  # minus the random line's

    perfect = area(retained * treated - retained * ~treated)
    return area(np.asarray(effect, float)) / perfect if perfect != 0 else float("nan")


def uplift_at(churned: np.ndarray, treated: np.ndarray, effect: np.ndarray,
              share: float = TOP) -> float:
    """Among the ``share`` with the largest predicted effect: the observed churn rate of the
    untreated minus that of the treated (positive: contacts went with less churn there)."""
    churned = np.asarray(churned, float)
    treated = np.asarray(treated, bool)
    top = _top(np.asarray(effect, float), share)
    t, c = churned[top][treated[top]], churned[top][~treated[top]]
    return float(c.mean() - t.mean()) if len(t) and len(c) else float("nan")


def uplift_metrics(churned: np.ndarray, treated: np.ndarray, effect: np.ndarray
                   ) -> dict[str, float]:
    """The Qini coefficient and uplift in the top 10% on the rows with an estimate (finite
    ``effect``), and the share of rows without one."""
    effect = np.asarray(effect, float)
    known = np.isfinite(effect)
    churned = np.asarray(churned, bool)[known]
    treated = np.asarray(treated, bool)[known]
    return {"qini": qini_coefficient(~churned, treated, effect[known]),
            "uplift_top10": uplift_at(churned, treated, effect[known]),
            "no_estimate_share": float(1 - known.mean()) if len(known) else float("nan"),
            "treated_share": float(treated.mean()) if len(treated) else float("nan")}


def qini_table(churned: np.ndarray, treated: np.ndarray, effect: np.ndarray,
               points: int = 20) -> pd.DataFrame:
    """The Qini curve at ``points`` shares of the rows with an estimate, as a share of its end
    (for ``plots.gains_png``: random is the diagonal)."""
    effect = np.asarray(effect, float)
    known = np.isfinite(effect)
    x, y = qini_curve(~np.asarray(churned, bool)[known], np.asarray(treated, bool)[known],
                      effect[known])
    shares = np.linspace(1 / points, 1, points)
    at = np.interp(shares * x[-1], x, y) if len(x) > 1 else np.zeros(points)
    end = y[-1] if len(y) and y[-1] != 0 else 1.0
    return pd.DataFrame({"contacted_share": shares, "captured_share": at / end})
