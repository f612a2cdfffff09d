"""The benchmark's baseline: three headline marts in plain pandas, as a user without this project
would write them, straight from the landing files.

- daily active users: users with an active event (seeds/event_mapping.csv) or a paid order on
  the business day (Asia/Shanghai);
- the monthly retention matrix: users by month of their first active day, and how many of
  them are active in each later calendar month;
- RFM segments on the latest data day: recency = days since the last paid order, frequency and
  monetary over the last 90 days, each split at the buyers' median, eight named segments.

Cleaning is what such a script does: drop rows without keys or parseable times, keep the first
row of a repeated id. Afterwards the figures are compared with the marts of the dbt build of the
same files and the agreement is written next to the outputs (the benchmark reports it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from userops.paths import PROJECT_DIR

TIME_ZONE = "Asia/Shanghai"
RFM_WINDOW_DAYS = 90
SEGMENTS = {  # (recency high, frequency high, monetary high) -> segment
    (True, True, True): "重要价值",
    (True, False, True): "重要发展",
    (False, True, True): "重要保持",
    (False, False, True): "重要挽留",
    (True, True, False): "一般价值",
    (True, False, False): "一般发展",
    (False, True, False): "一般保持",
    (False, False, False): "一般挽留",
}


def business_day(timestamps: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(timestamps, errors="coerce", utc=True)
    return parsed.dt.tz_convert(TIME_ZONE).dt.tz_localize(None).dt.normalize()


def load(landing_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    events = pd.read_parquet(
        landing_dir / "events", columns=["event_id", "user_id", "event_time", "event_name"]
    )
    events = events.dropna(subset=["event_id", "user_id", "event_time", "event_name"])
    events = events.drop_duplicates("event_id")
    mapping = pd.read_csv(PROJECT_DIR / "seeds" / "event_mapping.csv")
    active_names = set(mapping.loc[mapping["counts_as_active"], "raw_event_name"])
    events = events[events["event_name"].str.lower().isin(active_names)]
    events = events.assign(day=business_day(events["event_time"])).dropna(subset=["day"])

    orders = pd.read_parquet(
        landing_dir / "orders", columns=["order_id", "user_id", "ordered_at", "status", "amount"]
    )
    orders = orders.dropna(subset=["order_id", "user_id", "ordered_at", "status", "amount"])
    orders = orders.drop_duplicates("order_id")
    orders = orders[orders["status"].str.lower() == "paid"]
    orders = orders.assign(
        day=business_day(orders["ordered_at"]),
        amount=pd.to_numeric(orders["amount"], errors="coerce"),
    ).dropna(subset=["day", "amount"])
    orders = orders[orders["amount"] >= 0]
    # Keep days inside the delivered load days: the files carry a few absurd timestamps (1970,
    # years ahead) that a report over the data window leaves out.
    load_days = sorted(path.name.removeprefix("dt=") for path in (landing_dir / "orders").iterdir())
    first, last = pd.Timestamp(load_days[0]), pd.Timestamp(load_days[-1])
    events = events[events["day"].between(first, last)]
    orders = orders[orders["day"].between(first, last)]
    return events, orders


def daily_active_users(events: pd.DataFrame, orders: pd.DataFrame) -> pd.Series:
    active = pd.concat([events[["user_id", "day"]], orders[["user_id", "day"]]])
    return active.drop_duplicates().groupby("day").size().rename("dau")


def monthly_retention(events: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    active = pd.concat([events[["user_id", "day"]], orders[["user_id", "day"]]])
    active["month"] = active["day"].dt.to_period("M")
    months = active[["user_id", "month"]].drop_duplicates()
    cohort = months.groupby("user_id")["month"].min().rename("cohort_month")
    months = months.join(cohort, on="user_id")
    months["period_number"] = (months["month"] - months["cohort_month"]).apply(lambda p: p.n)
    matrix = months.groupby(["cohort_month", "period_number"]).size().rename("retained_users")
    return matrix.reset_index()


def rfm_segments(orders: pd.DataFrame, users: pd.Index, as_of: pd.Timestamp) -> pd.Series:
    orders = orders[orders["day"] <= as_of]
    last_order = orders.groupby("user_id")["day"].max()
    recent = orders[orders["day"] > as_of - pd.Timedelta(days=RFM_WINDOW_DAYS)]
    buyers = pd.DataFrame({"recency": (as_of - last_order).dt.days})
    buyers["frequency"] = recent.groupby("user_id").size()
    buyers["monetary"] = recent.groupby("user_id")["amount"].sum()
    buyers = buyers.fillna({"frequency": 0, "monetary": 0.0})
    medians = buyers.median()
    high = pd.DataFrame(
        {
            "r": buyers["recency"] < medians["recency"],
            "f": buyers["frequency"] > medians["frequency"],
            "m": buyers["monetary"] > medians["monetary"],
        }
    )
    segment = pd.Series(
        [SEGMENTS[key] for key in zip(high["r"], high["f"], high["m"], strict=True)],
        index=buyers.index,
        name="rfm_segment",
    )
    return segment.reindex(users).fillna("未购买")


def agreement(
    out: Path,
    warehouse: Path,
    dau: pd.Series,
    retention: pd.DataFrame,
    segments: pd.Series,
    as_of: pd.Timestamp,
) -> dict:
    """How far the pandas figures are from the marts of the dbt build of the same files."""
    import duckdb

    connection = duckdb.connect(str(warehouse), read_only=True)
    marts_dau = (
        connection.execute("select metric_date, dau from marts.daily_metrics")
        .df()
        .set_index("metric_date")["dau"]
    )
    marts_dau.index = pd.to_datetime(marts_dau.index)
    both = pd.concat([dau, marts_dau.rename("marts")], axis=1).fillna(0)
    marts_retention = connection.execute(
        "select cohort_start_date, period_number, retained_users from marts.retention_cohorts"
        " where cohort_grain = 'month' and retention_type = 'activity'"
        " and cohort_basis = 'first_time' and retention_mode = 'classic'"
        " and segment_dimension = 'overall'"
    ).df()
    marts_retention["cohort_month"] = pd.to_datetime(
        marts_retention["cohort_start_date"]
    ).dt.to_period("M")
    cells = retention.merge(
        marts_retention[["cohort_month", "period_number", "retained_users"]],
        on=["cohort_month", "period_number"],
        how="outer",
        suffixes=("", "_marts"),
    ).fillna({"retained_users": 0, "retained_users_marts": 0})
    marts_segments = (
        connection.execute(
            "select user_id, rfm_segment from marts.user_layers where as_of_date = ?",
            [as_of.date()],
        )
        .df()
        .set_index("user_id")["rfm_segment"]
    )
    joined = pd.concat([segments, marts_segments.rename("marts")], axis=1, join="inner")
    return {
        "dau_days": len(both),
        "dau_days_equal": int((both["dau"] == both["marts"]).sum()),
        "dau_max_abs_diff": int((both["dau"] - both["marts"]).abs().max()),
        "retention_cells": len(cells),
        "retention_cells_equal": int(
            (cells["retained_users"] == cells["retained_users_marts"]).sum()
        ),
        "rfm_users_compared": len(joined),
        "rfm_users_equal": int((joined["rfm_segment"] == joined["marts"]).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m userops.bench_pandas")
    parser.add_argument("--landing-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, help="dbt-built warehouse to compare with")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    events, orders = load(args.landing_dir)
    dau = daily_active_users(events, orders)
    retention = monthly_retention(events, orders)
    users = pd.read_parquet(args.landing_dir / "users", columns=["user_id"])["user_id"]
    users = pd.Index(users.dropna().drop_duplicates())
    as_of = dau.index.max()
    segments = rfm_segments(orders, users, as_of)
    dau.to_frame().to_parquet(args.out / "dau.parquet")
    retention.assign(cohort_month=retention["cohort_month"].astype(str)).to_parquet(
        args.out / "monthly_retention.parquet"
    )
    segments.to_frame().to_parquet(args.out / "rfm_segments.parquet")
    if args.warehouse:
        result = agreement(args.out, args.warehouse, dau, retention, segments, as_of)
        (args.out / "agreement.json").write_text(json.dumps(result))
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
