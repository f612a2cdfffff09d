"""Scoring metrics for churn probabilities against observed labels."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass(frozen=True)
class BaselineComparison:
    """Verdict of "the model ranks churners at least as well as recency" on the held-out cutoff."""

    compared: bool  # False: too little data for the comparison to mean anything
    passed: bool
    message: str


def compare_with_recency(
    model_auc: float,
    recency_auc: float,
    *,
    train_rows: int,
    train_churned: int,
    test_rows: int,
    test_churned: int,
    min_train_rows: int,
    refit_rows: int | None = None,
) -> BaselineComparison:
    """Compare held-out ROC AUCs only when the model could be trained as configured and both
    classes occur; otherwise pass with a note that says why nothing was compared."""
    sizes = (
        f"{train_rows:,} training rows ({train_churned:,} churned), {test_rows:,} test rows "
        f"({test_churned:,} churned)"
    )
    aucs = f"model ROC AUC {model_auc:.3f}, recency {recency_auc:.3f}"
    if train_rows < min_train_rows:
        return BaselineComparison(
            False,
            True,
            f"Not compared: {sizes}. The comparison needs at least {min_train_rows:,} training "
            "rows (max_leaf_nodes x min_samples_leaf of the gradient boosting settings); with "
            f"fewer the model cannot grow its trees and its AUC says nothing ({aucs}). "
            "Generate more users or more days (every churn_cutoff_step_days beyond two label "
            "windows adds a training cutoff)."
            + (
                f" The scores come from the model refit on all {refit_rows:,} labelled rows."
                if refit_rows is not None
                else ""
            ),
        )
    if min(train_churned, train_rows - train_churned, test_churned, test_rows - test_churned) < 1:
        return BaselineComparison(
            False,
            True,
            f"Not compared: {sizes}; ROC AUC needs churned and retained users in both.",
        )
    if model_auc >= recency_auc:
        return BaselineComparison(
            True, True, f"Model ranks churners at least as well as recency: {aucs}; {sizes}."
        )
    return BaselineComparison(
        True,
        False,
        f"Model ranks churners worse than days since the last active day: {aucs}; {sizes}. "
        "ml.churn_scores then ranks users no better than recency would.",
    )
