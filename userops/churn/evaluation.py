"""Scoring metrics for churn probabilities against observed labels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def lift_top_fraction(labels: np.ndarray, scores: np.ndarray, fraction: float = 0.1) -> float:
    """Churn rate among the top `fraction` of users by score, divided by the overall rate.

    Ties at the cut are shared out fractionally (each tied user counts with the share of the
    remaining slots), so the result does not depend on the order of tied rows; recency has
    many ties."""
    labels = np.asarray(labels, dtype=float)
    scores = np.asarray(scores, dtype=float)
    n = len(labels)
    if n == 0 or labels.sum() == 0:
        return math.nan
    k = max(1, math.ceil(fraction * n))
    threshold = np.sort(scores)[::-1][k - 1]
    above = scores > threshold
    tied = scores == threshold
    weight_tied = (k - above.sum()) / tied.sum()
    top_churned = labels[above].sum() + weight_tied * labels[tied].sum()
    return float((top_churned / k) / labels.mean())


def calibration_table(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Predicted vs observed churn rate in equal-width probability bins [i/bins, (i+1)/bins)
    (the last bin includes 1.0); empty bins are left out."""
    labels = np.asarray(labels, dtype=float)
    scores = np.asarray(scores, dtype=float)
    index = np.minimum((scores * bins).astype(int), bins - 1)
    rows = []
    for i in np.unique(index):
        mask = index == i
        rows.append(
            {
                "bin_lower": i / bins,
                "bin_upper": (i + 1) / bins,
                "users": int(mask.sum()),
                "mean_predicted": float(scores[mask].mean()),
                "observed_churn_rate": float(labels[mask].mean()),
            }
        )
    return pd.DataFrame(
        rows, columns=["bin_lower", "bin_upper", "users", "mean_predicted", "observed_churn_rate"]
    )


def score_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), Brier score and top-decile lift."""
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    both_classes = 0 < labels.sum() < len(labels)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else math.nan,
        "pr_auc": float(average_precision_score(labels, scores)) if both_classes else math.nan,
        "brier_score": float(brier_score_loss(labels, scores)),
        "lift_top_decile": lift_top_fraction(labels, scores, 0.1),
    }


def rank_correlation(scores: np.ndarray, truth: np.ndarray) -> float:
    """Spearman correlation of scores with a hidden truth (the generator's churn propensity)."""
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth, dtype=float)
    known = ~np.isnan(truth)
    if known.sum() < 3:
        return math.nan
    return float(spearmanr(scores[known], truth[known]).statistic)
