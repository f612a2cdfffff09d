"""The race in plain pandas: the three headline marts from the landing files, read whole into
memory, as a user without this project would write them once told the rules.

- daily active users: users with an active event (seeds/event_mapping.csv) or a paid order on
  the business day (Asia/Shanghai), every day from the first to the latest data day;
- the monthly retention matrix: users by month of their first active day, and how many of
  them are active in each later calendar month (periods 0-12 that have started);
- RFM segments on the latest data day: recency = days since the last paid order, frequency and
  monetary over the last 90 days, each split at the buyers' median, eight named segments.

Definitions and the quarantine rules (which rows count) are those of userops/bench_race.py,
which also compares the files written here with the marts.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from userops.bench_race import NO_PURCHASE, OUTPUTS, SEGMENTS, Definitions, definitions


def read_table(landing_dir: Path, table: str, columns: list[str]) -> pd.DataFrame:
    """All files of a landing table, with each row's file (the duplicate rule's order)."""
    frames = []
    for path in sorted((landing_dir / table).glob("*/*.parquet")):
        frame = pd.read_parquet(path, columns=columns)
        frames.append(frame.assign(file_order=str(path.with_suffix(""))))
    return pd.concat(frames, ignore_index=True)


def clean_text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip(" ")
    return text.mask(text == "")


def to_timestamp(values: pd.Series) -> pd.Series:
    """UTC timestamps without zone; NaT where a value does not convert."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601").dt.tz_localize(None)


def business_date(timestamps: pd.Series, rules: Definitions) -> pd.Series:
    local = timestamps.dt.tz_localize("UTC").dt.tz_convert(rules.business_timezone)
    return local.dt.tz_localize(None).dt.normalize()


def in_range(timestamps: pd.Series, rules: Definitions) -> pd.Series:
    latest = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=rules.max_future_days)
    return timestamps.ge(pd.Timestamp(rules.min_valid_timestamp)) & timestamps.le(latest)


def valid_json(values: pd.Series) -> pd.Series:
    """Null or parseable JSON; each distinct text is parsed once."""
    distinct = values.dropna().unique()

    def parses(text: str) -> bool:
        try:
            json.loads(text)
        except ValueError:
            return False
        return True

    good = {text for text in distinct if parses(text)}
    return values.isna() | values.isin(good)


def first_valid(frame: pd.DataFrame, key: str, order: list[str]) -> pd.DataFrame:
    """The duplicate rule: of rows with the same key, the first by file, then `order`."""
    return frame.sort_values(["file_order", *order], kind="stable").drop_duplicates(key)


def load_events(landing_dir: Path, rules: Definitions) -> pd.DataFrame:
    raw = read_table(
        landing_dir, "events", ["event_id", "user_id", "event_time", "event_name", "properties"]
    )
    events = pd.DataFrame(
        {
            "event_id": clean_text(raw["event_id"]),
            "user_id": clean_text(raw["user_id"]),
            "event_at": to_timestamp(raw["event_time"]),
            "raw_event_name": clean_text(raw["event_name"]).str.lower(),
            "file_order": raw["file_order"],
        }
    )
    ok = (
        events["event_id"].notna()
        & events["user_id"].notna()
        & raw["event_time"].notna()
        & events["raw_event_name"].notna()
        & events["event_at"].notna()
        & valid_json(clean_text(raw["properties"]))
        & in_range(events["event_at"], rules)
    )
    del raw
    events = first_valid(events[ok], "event_id", ["event_at", "raw_event_name"])
    return events.assign(
        day=business_date(events["event_at"], rules),
        is_active=events["raw_event_name"].isin(rules.active_event_names),
    )[["user_id", "day", "event_at", "is_active"]]


def load_orders(landing_dir: Path, rules: Definitions) -> pd.DataFrame:
    raw = read_table(
        landing_dir, "orders", ["order_id", "user_id", "ordered_at", "status", "amount", "discount"]
    )
    amount_text = clean_text(raw["amount"])
    # Amounts to whole cents (decimal(18, 2)); text that is not a plain number is unparseable.
    amount = pd.to_numeric(
        amount_text.where(amount_text.str.fullmatch(r"[+-]?\d+(\.\d*)?|[+-]?\.\d+"))
    )
    discount = pd.to_numeric(raw["discount"], errors="coerce")
    orders = pd.DataFrame(
        {
            "order_id": clean_text(raw["order_id"]),
            "user_id": clean_text(raw["user_id"]),
            "ordered_at": to_timestamp(raw["ordered_at"]),
            "status": clean_text(raw["status"]).str.lower(),
            "amount_cents": np.round(amount * 100),
            "file_order": raw["file_order"],
        }
    )
    ok = (
        orders["order_id"].notna()
        & orders["user_id"].notna()
        & raw["ordered_at"].notna()
        & orders["status"].notna()
        & amount_text.notna()
        & orders["ordered_at"].notna()
        & orders["amount_cents"].notna()
        & (raw["discount"].isna() | discount.notna())
        & orders["status"].isin(["paid", "cancelled", "refunded"])
        & in_range(orders["ordered_at"], rules)
        & (orders["amount_cents"] >= 0)
        & ~(discount < 0)
    )
    orders = first_valid(orders[ok], "order_id", ["ordered_at", "amount_cents", "status"])
    return orders.assign(
        day=business_date(orders["ordered_at"], rules),
        is_paid=orders["status"] == "paid",
        amount_cents=orders["amount_cents"].astype("int64"),
    )[["user_id", "day", "ordered_at", "is_paid", "amount_cents"]]


def not_integer(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return values.notna() & (numbers.isna() | (numbers != np.round(numbers)))


def load_users(landing_dir: Path, rules: Definitions) -> pd.DataFrame:
    raw = read_table(landing_dir, "users", ["user_id", "signup_at", "birth_year", "city_tier"])
    users = pd.DataFrame(
        {
            "user_id": clean_text(raw["user_id"]),
            "signup_at": to_timestamp(raw["signup_at"]),
            "file_order": raw["file_order"],
        }
    )
    city_tier = pd.to_numeric(raw["city_tier"], errors="coerce")
    ok = (
        users["user_id"].notna()
        & raw["signup_at"].notna()
        & users["signup_at"].notna()
        & ~not_integer(raw["birth_year"])
        & ~not_integer(raw["city_tier"])
        & (city_tier.isna() | city_tier.between(1, 5))
        & in_range(users["signup_at"], rules)
    )
    users = first_valid(users[ok], "user_id", ["signup_at"])
    return users.assign(signup_date=business_date(users["signup_at"], rules))[
        ["user_id", "signup_date"]
    ]


def user_days(events: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """One row per user and day with any staged event or order."""
    event_days = events.groupby(["user_id", "day"]).agg(
        has_active_event=("is_active", "any"), first_event_at=("event_at", "min")
    )
    paid = orders.assign(paid_cents=orders["amount_cents"].where(orders["is_paid"], 0))
    order_days = paid.groupby(["user_id", "day"]).agg(
        has_paid_order=("is_paid", "any"),
        paid_orders=("is_paid", "sum"),
        paid_cents=("paid_cents", "sum"),
        first_ordered_at=("ordered_at", "min"),
    )
    days = event_days.join(order_days, how="outer").reset_index()
    return pd.DataFrame(
        {
            "user_id": days["user_id"],
            "day": days["day"],
            "is_active": days["has_active_event"].fillna(False).astype(bool)
            | days["has_paid_order"].fillna(False).astype(bool),
            "paid_orders": days["paid_orders"].fillna(0).astype("int64"),
            "paid_cents": days["paid_cents"].fillna(0).astype("int64"),
            "first_seen_at": days[["first_event_at", "first_ordered_at"]].min(axis=1),
        }
    )


def daily_active_users(days: pd.DataFrame) -> pd.DataFrame:
    calendar = pd.date_range(days["day"].min(), days["day"].max(), freq="D")
    dau = days[days["is_active"]].groupby("day").size().reindex(calendar, fill_value=0)
    return pd.DataFrame({"metric_date": calendar.date, "dau": dau.to_numpy().astype("int64")})


def monthly_retention(days: pd.DataFrame, rules: Definitions) -> pd.DataFrame:
    latest = days["day"].max()
    active = days[days["is_active"]]
    months = pd.DataFrame(
        {"user_id": active["user_id"], "month": active["day"].dt.to_period("M")}
    ).drop_duplicates()
    cohort = months.groupby("user_id")["month"].min().rename("cohort_month")
    months = months.join(cohort, on="user_id")
    months["period_number"] = (
        (months["month"].dt.year - months["cohort_month"].dt.year) * 12
        + months["month"].dt.month
        - months["cohort_month"].dt.month
    )
    retained = months.groupby(["cohort_month", "period_number"]).size().rename("retained_users")
    sizes = cohort.value_counts().rename("cohort_size")
    cells = pd.MultiIndex.from_product(
        [sizes.index, range(rules.max_periods_month + 1)], names=["cohort_month", "period_number"]
    ).to_frame(index=False)
    month = cells["cohort_month"].dt.year * 12 + cells["cohort_month"].dt.month - 1
    month = month + cells["period_number"]
    starts = pd.to_datetime(pd.DataFrame({"year": month // 12, "month": month % 12 + 1, "day": 1}))
    cells = cells[starts.to_numpy() <= latest.to_datetime64()]
    cells = cells.join(sizes, on="cohort_month").join(
        retained, on=["cohort_month", "period_number"]
    )
    return pd.DataFrame(
        {
            "cohort_month": cells["cohort_month"].dt.start_time.dt.date,
            "period_number": cells["period_number"].astype("int64"),
            "cohort_size": cells["cohort_size"].astype("int64"),
            "retained_users": cells["retained_users"].fillna(0).astype("int64"),
        }
    ).sort_values(["cohort_month", "period_number"])


def rfm_segments(days: pd.DataFrame, users: pd.DataFrame, rules: Definitions) -> pd.DataFrame:
    as_of = days["day"].max()
    first_seen = days.groupby("user_id")["first_seen_at"].min()
    known = users.set_index("user_id")["signup_date"].reindex(
        users["user_id"].tolist() + sorted(set(first_seen.index) - set(users["user_id"]))
    )
    derived = business_date(first_seen.reindex(known.index), rules)
    signup = known.fillna(derived)
    population = signup.index[signup <= as_of]
    paid = days[(days["paid_orders"] > 0) & days["user_id"].isin(population)]
    recent = paid[paid["day"] > as_of - pd.Timedelta(days=rules.rfm_window_days)]
    buyers = pd.DataFrame({"recency": (as_of - paid.groupby("user_id")["day"].max()).dt.days})
    buyers["frequency"] = recent.groupby("user_id")["paid_orders"].sum()
    buyers["monetary"] = recent.groupby("user_id")["paid_cents"].sum()
    buyers = buyers.fillna({"frequency": 0, "monetary": 0}).astype("int64")
    high_r = buyers["recency"] < buyers["recency"].median()
    high_f = buyers["frequency"] > buyers["frequency"].median()
    # DuckDB's median of decimal(38, 2) truncates the mean of the two middle values to whole
    # cents; against whole-cent amounts `>` that threshold and `>` the exact median agree.
    high_m = buyers["monetary"] > buyers["monetary"].median()
    segment = pd.Series(
        [SEGMENTS[key] for key in zip(high_r, high_f, high_m, strict=True)],
        index=buyers.index,
        dtype=object,
    )
    segment = segment.reindex(population).fillna(NO_PURCHASE)
    return pd.DataFrame(
        {
            "user_id": population.astype(str),
            "as_of_date": as_of.date(),
            "rfm_segment": segment.to_numpy(),
        }
    ).sort_values("user_id")


def run(landing_dir: Path, out: Path) -> None:
    rules = definitions()
    out.mkdir(parents=True, exist_ok=True)
    days = user_days(load_events(landing_dir, rules), load_orders(landing_dir, rules))
    daily_active_users(days).to_parquet(out / OUTPUTS["dau"], index=False)
    monthly_retention(days, rules).to_parquet(out / OUTPUTS["retention"], index=False)
    rfm_segments(days, load_users(landing_dir, rules), rules).to_parquet(
        out / OUTPUTS["rfm"], index=False
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m userops.bench_pandas", description=__doc__)
    parser.add_argument("--landing-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    run(args.landing_dir, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
