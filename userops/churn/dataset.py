"""The churn data set as dbt built it: churn_features joined to churn_labels and churn_cutoffs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

NUMERIC_FEATURES = (
    "days_since_last_active",
    "days_since_first_active",
    "days_since_signup",
    "active_days_7d",
    "active_days_28d",
    "active_days_prev_28d",
    "active_days_lifetime",
    "active_day_share_28d",
    "mean_days_between_active_days",
    "sessions_28d",
    "events_28d",
    "paid_orders_28d",
    "paid_orders_lifetime",
    "unpaid_orders_lifetime",
    "paid_amount_28d",
    "paid_amount_lifetime",
    "coupon_orders_lifetime",
    "days_since_last_paid_order",
    "bgnbd_frequency",
    "bgnbd_recency_days",
    "bgnbd_age_days",
    "city_tier",
)
CATEGORICAL_FEATURES = ("gender", "acquisition_channel", "platform")
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES

DATASET_SQL = f"""
select
    features.user_id,
    features.cutoff_date,
    {", ".join(f"features.{name}" for name in FEATURES)},
    labels.is_churned,
    cutoffs.label_window_days,
    cutoffs.is_label_complete,
    cutoffs.is_latest
from marts.churn_features as features
inner join marts.churn_labels as labels
    on features.user_id = labels.user_id
    and features.cutoff_date = labels.cutoff_date
inner join marts.churn_cutoffs as cutoffs
    on features.cutoff_date = cutoffs.cutoff_date
order by features.cutoff_date, features.user_id
"""


def load_dataset(warehouse_path: Path) -> pd.DataFrame:
    """Every (user, cutoff) row with its features and label, read with a read-only connection
    (so it never blocks or clobbers a dbt run), sorted for deterministic training."""
    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        frame = connection.execute(DATASET_SQL).df()
    return normalise(frame)


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain numpy dtypes: floats with NaN for missing numbers, object strings, python dates."""
    frame = frame.copy()
    for name in NUMERIC_FEATURES:
        frame[name] = pd.to_numeric(frame[name]).astype("float64")
    for name in CATEGORICAL_FEATURES:
        frame[name] = frame[name].astype("object").where(frame[name].notna(), None)
    frame["cutoff_date"] = pd.to_datetime(frame["cutoff_date"]).dt.date
    frame["user_id"] = frame["user_id"].astype("object")
    return frame


@dataclass(frozen=True)
class TimeSplit:
    """Cutoffs for evaluation (train < test) and for the production refit."""

    train_cutoffs: tuple[date, ...]
    test_cutoff: date
    refit_cutoffs: tuple[date, ...]
    score_cutoff: date


def time_split(
    labelled_cutoffs: list[date], latest_cutoff: date, label_window_days: int
) -> TimeSplit:
    """Hold out the latest labelled cutoff; train on cutoffs whose label window ends on or before
    it (cutoff <= test - window), so no training label peeks past the test cutoff, exactly as a
    model trained at the test date could have been. The production model is refit on every
    labelled cutoff and scores the latest cutoff (the latest data date)."""
    labelled = sorted(set(labelled_cutoffs))
    if not labelled:
        raise ValueError(
            "no churn cutoff has a complete label window: the data must span more than "
            "churn_label_window_days days"
        )
    test = labelled[-1]
    train = tuple(c for c in labelled if c <= test - timedelta(days=label_window_days))
    if not train:
        raise ValueError(
            f"no training cutoff at least {label_window_days} days before the test cutoff {test}: "
            "the data must span about two label windows plus one cutoff step "
            "(or lower churn_label_window_days / churn_cutoff_step_days)"
        )
    return TimeSplit(
        train_cutoffs=train,
        test_cutoff=test,
        refit_cutoffs=tuple(labelled),
        score_cutoff=latest_cutoff,
    )


def split_frame(frame: pd.DataFrame) -> TimeSplit:
    windows = frame["label_window_days"].unique()
    if len(windows) != 1:
        raise ValueError(f"expected one label window in churn_cutoffs, got {sorted(windows)}")
    labelled = frame.loc[frame["is_label_complete"], "cutoff_date"].unique().tolist()
    latest = frame.loc[frame["is_latest"], "cutoff_date"]
    if latest.empty:
        raise ValueError("churn_features has no row at the latest cutoff")
    return time_split(labelled, latest.iloc[0], int(windows[0]))


def rows_at(frame: pd.DataFrame, cutoffs: tuple[date, ...] | list[date]) -> pd.DataFrame:
    return frame[frame["cutoff_date"].isin(set(cutoffs))].reset_index(drop=True)


def labels_of(frame: pd.DataFrame) -> np.ndarray:
    if frame["is_churned"].isna().any():
        raise ValueError("rows without a label (incomplete label window) cannot train or evaluate")
    return frame["is_churned"].astype(bool).to_numpy().astype(int)
