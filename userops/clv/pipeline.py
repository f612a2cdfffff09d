"""Fit, backtest, score and write the CLV tables: the steps the Dagster asset clv_scores calls.

A transaction is a day with a paid order (the same unit as the churn model's BG/NBD baseline,
userops.churn.pipeline.ORDER_LOG_SQL) and its value is that day's paid amount. Time is in days.
A customer is born on their first paid day; x counts the later paid days, t_x is the day of the
last one and T the customer's age at the cutoff, all from the first paid day. Users without a
paid order are not customers and get no CLV score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from userops.churn import bgnbd
from userops.churn.config import dbt_vars
from userops.churn.pipeline import write_tables
from userops.clv import gamma_gamma

HORIZONS = (90, 365)
TIERS = ("high", "medium", "low")

TABLES = {
    "clv_scores": """
        user_id varchar not null,
        scored_date date not null,
        repeat_transactions bigint not null,
        recency_days integer not null,
        age_days integer not null,
        repeat_average_value double,
        p_alive double not null,
        expected_transactions_90d double not null,
        expected_transactions_365d double not null,
        expected_order_value double not null,
        predicted_value_90d double not null,
        predicted_value_365d double not null,
        predicted_value_tier varchar not null
    """,
    "clv_model_fits": """
        scored_date date not null,
        fit_role varchar not null,
        calibration_end_date date not null,
        customers bigint not null,
        repeat_customers bigint not null,
        r double not null,
        alpha double not null,
        a double not null,
        b double not null,
        p double not null,
        q double not null,
        gamma double not null,
        bgnbd_mean_log_likelihood double not null,
        gamma_gamma_mean_log_likelihood double not null,
        fitted_at timestamp not null
    """,
    "clv_backtest_deciles": """
        scored_date date not null,
        calibration_end_date date not null,
        holdout_end_date date not null,
        holdout_days integer not null,
        decile integer not null,
        customers bigint not null,
        predicted_transactions double not null,
        actual_transactions bigint not null,
        predicted_value double not null,
        actual_value double not null
    """,
}

PAID_DAYS_SQL = """
select user_id, activity_date, paid_amount
from intermediate.int_user_days_aggregated
where has_paid_order
"""
LATEST_DATE_SQL = "select max(activity_date) from intermediate.int_user_days_aggregated"


@dataclass(frozen=True)
class ClvConfig:
    holdout_days: int = 28
    tier_high_share: float = 0.2
    tier_medium_share: float = 0.3

    def __post_init__(self) -> None:
        if self.holdout_days < 1:
            raise ValueError(f"clv_holdout_days must be >= 1, got {self.holdout_days}")
        high, medium = self.tier_high_share, self.tier_medium_share
        if not (high > 0 and medium >= 0 and high + medium <= 1):
            raise ValueError(
                "clv value-tier shares must be > 0 (high), >= 0 (medium) and sum to <= 1, got "
                f"{self.tier_high_share}, {self.tier_medium_share}"
            )


def load_config(variables: dict[str, Any] | None = None) -> ClvConfig:
    """ClvConfig from the dbt vars clv_* (dbt_project.yml), defaults for missing ones."""
    variables = dbt_vars() if variables is None else variables
    names = {
        "clv_holdout_days": "holdout_days",
        "clv_value_tier_high_share": "tier_high_share",
        "clv_value_tier_medium_share": "tier_medium_share",
    }
    return ClvConfig(**{field: variables[var] for var, field in names.items() if var in variables})


def customer_summary(paid_days: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """Per customer with a paid day on or before the cutoff: x (repeat paid days), t_x, T (days
    from the first paid day) and m, the mean value of the repeat paid days (NaN when x = 0: the
    first purchase is the customer's birth, not a repeat, as in the Gamma-Gamma papers)."""
    days = paid_days[pd.to_datetime(paid_days["activity_date"]) <= pd.Timestamp(cutoff)].copy()
    columns = ["user_id", "x", "t_x", "T", "m"]
    if days.empty:
        return pd.DataFrame(columns=columns)
    days["activity_date"] = pd.to_datetime(days["activity_date"])
    days = days.sort_values(["user_id", "activity_date"])
    first = days.groupby("user_id")["activity_date"].transform("min")
    days["is_repeat"] = days["activity_date"] > first
    days["repeat_amount"] = days["paid_amount"].astype(float).where(days["is_repeat"])
    grouped = days.groupby("user_id")
    summary = pd.DataFrame(
        {
            "x": grouped["is_repeat"].sum().astype(int),
            "first": grouped["activity_date"].min(),
            "last": grouped["activity_date"].max(),
            "m": grouped["repeat_amount"].mean(),
        }
    ).reset_index()
    summary["t_x"] = (summary["last"] - summary["first"]).dt.days.astype(int)
    summary["T"] = (pd.Timestamp(cutoff) - summary["first"]).dt.days.astype(int)
    return summary[columns]


def period_actuals(paid_days: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """Paid days and paid amount per user in (start, end]."""
    dates = pd.to_datetime(paid_days["activity_date"])
    part = paid_days[(dates > pd.Timestamp(start)) & (dates <= pd.Timestamp(end))]
    grouped = part.groupby("user_id")["paid_amount"]
    return pd.DataFrame(
        {"actual_transactions": grouped.size(), "actual_value": grouped.sum().astype(float)}
    ).reset_index()


@dataclass(frozen=True)
class Fit:
    bgnbd: bgnbd.BGNBDParams
    gamma_gamma: gamma_gamma.GammaGammaParams
    customers: int
    repeat_customers: int
    bgnbd_ll: float
    gamma_gamma_ll: float


def fit_models(summary: pd.DataFrame) -> Fit:
    """BG/NBD on every customer, Gamma-Gamma on those with a repeat of positive mean value."""
    if summary.empty:
        raise ValueError("no customer with a paid order: CLV cannot be fitted")
    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    repeat = summary[(summary["x"] > 0) & (summary["m"] > 0)]
    if repeat.empty:
        raise ValueError("no customer with a repeat paid order: Gamma-Gamma cannot be fitted")
    bg = bgnbd.fit(x, t_x, T)
    gg = gamma_gamma.fit(repeat["x"], repeat["m"])
    return Fit(
        bg,
        gg,
        len(summary),
        len(repeat),
        float(np.mean(bgnbd.log_likelihood(bg, x, t_x, T))),
        float(np.mean(gamma_gamma.log_likelihood(gg, repeat["x"], repeat["m"]))),
    )


def predict(fit: Fit, summary: pd.DataFrame, horizons: tuple[int, ...] = HORIZONS) -> pd.DataFrame:
    """P(alive), expected transactions and predicted value (expected transactions x expected
    order value, undiscounted) per customer over each horizon in days."""
    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    # A customer whose repeats were all worth 0 has no positive mean: the population mean.
    usable = (x > 0) & (summary["m"].fillna(0).to_numpy() > 0)
    value = gamma_gamma.conditional_expected_value(
        fit.gamma_gamma, np.where(usable, x, 0.0), summary["m"].fillna(0).to_numpy()
    )
    out = summary[["user_id"]].copy()
    out["p_alive"] = bgnbd.p_alive(fit.bgnbd, x, t_x, T)
    out["expected_order_value"] = value
    for horizon in horizons:
        expected = bgnbd.conditional_expected_purchases(fit.bgnbd, x, t_x, T, horizon)
        out[f"expected_transactions_{horizon}d"] = expected
        out[f"predicted_value_{horizon}d"] = expected * value
    return out


def value_tiers(values, high_share: float, medium_share: float) -> np.ndarray:
    """high: fewer than high_share x n customers have a strictly higher value; medium: fewer
    than (high_share + medium_share) x n; else low. Ties share the better tier."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    higher = n - np.searchsorted(np.sort(values), values, side="right")
    return np.where(
        higher < high_share * n,
        "high",
        np.where(higher < (high_share + medium_share) * n, "medium", "low"),
    ).astype(object)


def backtest_deciles(predicted: pd.DataFrame, actual: pd.DataFrame) -> pd.DataFrame:
    """Predicted vs actual holdout transactions and value per decile of predicted value
    (decile 1 = highest; ties broken by user_id so the split is reproducible). predicted has
    user_id, predicted_transactions, predicted_value; customers absent from actual bought
    nothing in the holdout."""
    frame = predicted.merge(actual, on="user_id", how="left")
    frame["actual_transactions"] = frame["actual_transactions"].fillna(0).astype(int)
    frame["actual_value"] = frame["actual_value"].fillna(0.0)
    frame = frame.sort_values(["predicted_value", "user_id"], ascending=[False, True])
    frame["decile"] = np.arange(len(frame)) * 10 // max(len(frame), 1) + 1
    grouped = frame.groupby("decile")
    return pd.DataFrame(
        {
            "customers": grouped.size(),
            "predicted_transactions": grouped["predicted_transactions"].sum(),
            "actual_transactions": grouped["actual_transactions"].sum(),
            "predicted_value": grouped["predicted_value"].sum(),
            "actual_value": grouped["actual_value"].sum(),
        }
    ).reset_index()


@dataclass
class ClvResult:
    scored_date: date
    calibration_end_date: date
    scores: pd.DataFrame
    fits: pd.DataFrame
    deciles: pd.DataFrame


def _fit_row(fit: Fit, scored: date, role: str, calibration_end: date, at: datetime) -> dict:
    return {
        "scored_date": scored,
        "fit_role": role,
        "calibration_end_date": calibration_end,
        "customers": fit.customers,
        "repeat_customers": fit.repeat_customers,
        **fit.bgnbd.as_dict(),
        **fit.gamma_gamma.as_dict(),
        "bgnbd_mean_log_likelihood": fit.bgnbd_ll,
        "gamma_gamma_mean_log_likelihood": fit.gamma_gamma_ll,
        "fitted_at": at,
    }


def run(paid_days: pd.DataFrame, latest: date, config: ClvConfig) -> ClvResult:
    """Backtest (fit on the days up to latest - holdout_days, predict the holdout, compare),
    then refit on all days and score every customer at the latest data date."""
    at = datetime.now(UTC).replace(tzinfo=None)
    calibration_end = latest - timedelta(days=config.holdout_days)
    fits = []
    calibration = customer_summary(paid_days, calibration_end)
    deciles = pd.DataFrame(columns=["decile"])
    if not calibration.empty and (calibration["x"] > 0).any():
        calibration_fit = fit_models(calibration)
        fits.append(_fit_row(calibration_fit, latest, "calibration", calibration_end, at))
        holdout = predict(calibration_fit, calibration, (config.holdout_days,))
        holdout = holdout.rename(
            columns={
                f"expected_transactions_{config.holdout_days}d": "predicted_transactions",
                f"predicted_value_{config.holdout_days}d": "predicted_value",
            }
        )
        deciles = backtest_deciles(holdout, period_actuals(paid_days, calibration_end, latest))
    deciles.insert(0, "scored_date", latest)
    deciles.insert(1, "calibration_end_date", calibration_end)
    deciles.insert(2, "holdout_end_date", latest)
    deciles.insert(3, "holdout_days", config.holdout_days)
    summary = customer_summary(paid_days, latest)
    fit = fit_models(summary)
    fits.append(_fit_row(fit, latest, "production", latest, at))
    predicted = predict(fit, summary)
    scores = summary.rename(
        columns={
            "x": "repeat_transactions",
            "t_x": "recency_days",
            "T": "age_days",
            "m": "repeat_average_value",
        }
    ).merge(predicted, on="user_id")
    scores.insert(1, "scored_date", latest)
    scores["predicted_value_tier"] = value_tiers(
        scores["predicted_value_365d"], config.tier_high_share, config.tier_medium_share
    )
    columns = [line.split()[0] for line in TABLES["clv_scores"].strip().splitlines()]
    return ClvResult(latest, calibration_end, scores[columns], pd.DataFrame(fits), deciles)


def load_paid_days(warehouse_path: Path) -> tuple[pd.DataFrame, date | None]:
    with duckdb.connect(str(warehouse_path), read_only=True) as connection:
        days = connection.execute(PAID_DAYS_SQL).df()
        (latest,) = connection.execute(LATEST_DATE_SQL).fetchone()
    return days, latest


def score_warehouse(warehouse_path: Path, config: ClvConfig | None = None) -> ClvResult:
    days, latest = load_paid_days(warehouse_path)
    if latest is None:
        raise ValueError("int_user_days_aggregated is empty: nothing to score")
    return run(days, latest, config or load_config())


def write_result(warehouse_path: Path, result: ClvResult) -> None:
    """Replace the rows of the scored date in the three tables (older dates are kept)."""
    where, params = "scored_date = ?", [result.scored_date]
    write_tables(
        warehouse_path,
        {
            "clv_scores": (result.scores, where, params),
            "clv_model_fits": (result.fits, where, params),
            "clv_backtest_deciles": (result.deciles, where, params),
        },
        table_ddl=TABLES,
    )
