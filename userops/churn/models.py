"""The churn classifier (gradient boosting) and the recency-only baseline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from userops.churn.config import ChurnConfig
from userops.churn.dataset import CATEGORICAL_FEATURES, NUMERIC_FEATURES


def category_levels(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Sorted levels seen in training, so scoring encodes categories the same way."""
    return {
        name: sorted(str(v) for v in frame[name].dropna().unique()) for name in CATEGORICAL_FEATURES
    }


def informative_features(frame: pd.DataFrame) -> list[str]:
    """Features with at least two distinct known values in training. An orders-only data set
    has no profile or event columns (all missing or constant): they carry nothing, and
    histogram binning cannot bin a column without two distinct values."""
    return [
        name
        for name in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
        if frame[name].nunique(dropna=True) >= 2
    ]


def design_matrix(
    frame: pd.DataFrame, levels: dict[str, list[str]], features: list[str] | None = None
) -> pd.DataFrame:
    """Numeric features as floats (NaN = missing, handled natively by the trees) and the
    categorical ones as pandas categoricals with the training levels (unseen -> missing)."""
    features = list(features or (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES))
    matrix = pd.DataFrame(index=range(len(frame)))
    for name in features:
        if name in CATEGORICAL_FEATURES:
            matrix[name] = pd.Categorical(frame[name].to_numpy(), categories=levels[name])
        else:
            matrix[name] = frame[name].astype("float64").to_numpy()
    return matrix


@dataclass
class ChurnClassifier:
    """HistGradientBoostingClassifier on the churn features, with its category encoding."""

    config: ChurnConfig
    levels: dict[str, list[str]] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    estimator: HistGradientBoostingClassifier | None = None

    def fit(self, frame: pd.DataFrame, labels: np.ndarray) -> ChurnClassifier:
        self.levels = category_levels(frame)
        self.features = informative_features(frame)
        if not self.features:
            raise ValueError("no churn feature has two distinct values in the training rows")
        self.estimator = HistGradientBoostingClassifier(
            max_iter=self.config.max_iter,
            learning_rate=self.config.learning_rate,
            max_leaf_nodes=self.config.max_leaf_nodes,
            min_samples_leaf=self.config.min_samples_leaf,
            l2_regularization=self.config.l2_regularization,
            categorical_features="from_dtype",
            early_stopping=False,
            random_state=self.config.random_seed,
        )
        # One OpenMP thread: on a small shared machine competing threads make boosting many
        # times slower, and churn data sets are small enough for one core.
        with threadpool_limits(limits=1, user_api="openmp"):
            self.estimator.fit(design_matrix(frame, self.levels, self.features), labels)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.estimator is None:
            raise RuntimeError("fit the classifier first")
        with threadpool_limits(limits=1, user_api="openmp"):
            matrix = design_matrix(frame, self.levels, self.features)
            return self.estimator.predict_proba(matrix)[:, 1]


def _recency(frame: pd.DataFrame) -> np.ndarray:
    return np.log1p(frame["days_since_last_active"].astype("float64").to_numpy()).reshape(-1, 1)


@dataclass
class RecencyBaseline:
    """Churn probability from days since the last active day only: a one-feature logistic
    regression on log(1 + recency), so it ranks exactly like recency but gives probabilities
    (for Brier and calibration)."""

    estimator: LogisticRegression | None = None

    def fit(self, frame: pd.DataFrame, labels: np.ndarray) -> RecencyBaseline:
        self.estimator = LogisticRegression().fit(_recency(frame), labels)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.estimator is None:
            raise RuntimeError("fit the baseline first")
        return self.estimator.predict_proba(_recency(frame))[:, 1]
