"""The race in polars: lazy scans of the landing Parquet files, collected by the streaming
engine, as a competent polars user would write it. Daily active users, the monthly retention
matrix and RFM segments with the project's definitions and quarantine rules
(userops/bench_race.py), written as the files of userops.bench_race.OUTPUTS.

Events are reduced to one row per user and business day inside the streaming scan; only the
rows whose id occurs more than once among valid rows (found on a 64-bit hash of the id, ranked
by the real id) are held in memory to pick the first by file. Orders and users are small and
are deduplicated in memory.

Known limits against DuckDB's casts (none occur in the generated files): text amounts with more
than two decimals are truncated here (DuckDB rounds), and text timestamps are parsed by polars'
ISO-8601 parser, which accepts fewer forms than DuckDB's cast.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from userops.bench_race import (
    NO_PURCHASE,
    OUTPUTS,
    SEGMENTS,
    Definitions,
    definitions,
    landing_glob,
)

STREAMING = "streaming"


def clean_text(name: str) -> pl.Expr:
    """Text with surrounding spaces removed; blank is null (the project's clean_text)."""
    text = pl.col(name).cast(pl.String).str.strip_chars(" ")
    return pl.when(text.str.len_bytes() > 0).then(text)


def to_timestamp(name: str, dtype: pl.DataType) -> pl.Expr:
    """A UTC timestamp without zone, null where the value does not convert."""
    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone:
            column = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return column.dt.cast_time_unit("us")
    if dtype == pl.Date:
        return column.cast(pl.Datetime("us"))
    return column.cast(pl.String).str.strip_chars(" ").str.to_datetime(time_unit="us", strict=False)


def business_date(expr: pl.Expr, rules: Definitions) -> pl.Expr:
    return expr.dt.replace_time_zone("UTC").dt.convert_time_zone(rules.business_timezone).dt.date()


def in_range(expr: pl.Expr, rules: Definitions) -> pl.Expr:
    """Not a bad_timestamp: from min_valid_timestamp to max_future_days after now."""
    latest = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=rules.max_future_days)
    earliest = datetime.fromisoformat(rules.min_valid_timestamp)
    return (expr >= earliest) & (expr <= latest)


def scan(landing_dir: Path, table: str) -> pl.LazyFrame:
    return pl.scan_parquet(
        landing_glob(landing_dir, table),
        include_file_paths="source_file",
        hive_partitioning=False,
        missing_columns="insert",
    )


def file_order() -> pl.Expr:
    """The duplicate rule's file order: the path without its extension."""
    return pl.col("source_file").str.replace(r"\.parquet$", "")


def valid_events(landing_dir: Path, rules: Definitions) -> pl.LazyFrame:
    source = scan(landing_dir, "events")
    schema = source.collect_schema()
    properties = clean_text("properties")
    return (
        source.select(
            event_id=clean_text("event_id"),
            user_id=clean_text("user_id"),
            event_time_raw=pl.col("event_time"),
            event_at=to_timestamp("event_time", schema["event_time"]),
            raw_event_name=clean_text("event_name").str.to_lowercase(),
            # JSON validity: polars has no json_valid; a path match of the whole document is
            # null exactly when it does not parse (or is the JSON literal null).
            properties_valid=properties.is_null()
            | properties.str.json_path_match("$").is_not_null()
            | (properties == "null"),
            source_file=pl.col("source_file"),
        )
        .filter(
            pl.col("event_id").is_not_null()
            & pl.col("user_id").is_not_null()
            & pl.col("event_time_raw").is_not_null()
            & pl.col("raw_event_name").is_not_null()
            & pl.col("event_at").is_not_null()
            & pl.col("properties_valid")
            & in_range(pl.col("event_at"), rules)
        )
        .select("event_id", "user_id", "event_at", "raw_event_name", "source_file")
        .with_columns(id_hash=pl.col("event_id").hash())
    )


def event_days(landing_dir: Path, rules: Definitions) -> pl.DataFrame:
    """One row per user and business day with a staged event: has_active_event and the first
    event's time. Three streaming passes over the event files: repeated id hashes, the first
    row of each repeated id, and the aggregate of every other valid row."""
    events = valid_events(landing_dir, rules)
    repeated = (
        events.group_by("id_hash")
        .agg(pl.len())
        .filter(pl.col("len") > 1)
        .select("id_hash")
        .collect(engine=STREAMING)
    )
    first_repeated = (
        events.join(repeated.lazy(), on="id_hash", how="semi")
        .with_columns(file_order=file_order())
        .group_by("event_id")
        .agg(
            pl.col("user_id", "event_at", "raw_event_name")
            .sort_by("file_order", "event_at", "raw_event_name")
            .first()
        )
        .select("user_id", "event_at", "raw_event_name")
        .collect(engine=STREAMING)
    )
    staged = pl.concat(
        [
            events.join(repeated.lazy(), on="id_hash", how="anti").select(
                "user_id", "event_at", "raw_event_name"
            ),
            first_repeated.lazy(),
        ]
    )
    return (
        staged.group_by("user_id", activity_date=business_date(pl.col("event_at"), rules))
        .agg(
            has_active_event=pl.col("raw_event_name").is_in(sorted(rules.active_event_names)).any(),
            first_event_at=pl.col("event_at").min(),
        )
        .collect(engine=STREAMING)
    )


def staged_orders(landing_dir: Path, rules: Definitions) -> pl.DataFrame:
    source = scan(landing_dir, "orders")
    schema = source.collect_schema()
    amount_raw = clean_text("amount")
    typed = source.select(
        order_id=clean_text("order_id"),
        user_id=clean_text("user_id"),
        ordered_at_raw=pl.col("ordered_at"),
        ordered_at=to_timestamp("ordered_at", schema["ordered_at"]),
        status=clean_text("status").str.to_lowercase(),
        amount_raw=amount_raw,
        amount=amount_raw.cast(pl.Decimal(18, 2), strict=False),
        discount_raw=pl.col("discount"),
        discount=pl.col("discount").cast(pl.Decimal(18, 2), strict=False),
        source_file=pl.col("source_file"),
    )
    valid = typed.filter(
        pl.col("order_id").is_not_null()
        & pl.col("user_id").is_not_null()
        & pl.col("ordered_at_raw").is_not_null()
        & pl.col("status").is_not_null()
        & pl.col("amount_raw").is_not_null()
        & pl.col("ordered_at").is_not_null()
        & pl.col("amount").is_not_null()
        & (pl.col("discount_raw").is_null() | pl.col("discount").is_not_null())
        & pl.col("status").is_in(["paid", "cancelled", "refunded"])
        & in_range(pl.col("ordered_at"), rules)
        & (pl.col("amount") >= 0)
        & (pl.col("discount").fill_null(0) >= 0)
    ).collect(engine=STREAMING)
    return (
        valid.with_columns(file_order=file_order())
        .sort("file_order", "ordered_at", "amount", "status")
        .unique("order_id", keep="first", maintain_order=True)
        .select(
            "user_id",
            "ordered_at",
            order_date=business_date(pl.col("ordered_at"), rules),
            is_paid=pl.col("status") == "paid",
            amount_cents=(pl.col("amount") * 100).cast(pl.Int64),
        )
    )


def is_integer_text(name: str) -> pl.Expr:
    """Present and not an integer (a fraction counts as unparseable, as in the project)."""
    as_float = pl.col(name).cast(pl.Float64, strict=False)
    return pl.col(name).is_not_null() & (as_float.is_null() | (as_float != as_float.round(0)))


def staged_users(landing_dir: Path, rules: Definitions) -> pl.DataFrame:
    source = scan(landing_dir, "users")
    schema = source.collect_schema()
    valid = (
        source.select(
            user_id=clean_text("user_id"),
            signup_at_raw=pl.col("signup_at"),
            signup_at=to_timestamp("signup_at", schema["signup_at"]),
            birth_year_bad=is_integer_text("birth_year"),
            city_tier_bad=is_integer_text("city_tier"),
            city_tier=pl.col("city_tier").cast(pl.Float64, strict=False),
            source_file=pl.col("source_file"),
        )
        .filter(
            pl.col("user_id").is_not_null()
            & pl.col("signup_at_raw").is_not_null()
            & pl.col("signup_at").is_not_null()
            & ~pl.col("birth_year_bad")
            & ~pl.col("city_tier_bad")
            & (pl.col("city_tier").is_null() | pl.col("city_tier").is_between(1, 5))
            & in_range(pl.col("signup_at"), rules)
        )
        .collect(engine=STREAMING)
    )
    return (
        valid.with_columns(file_order=file_order())
        .sort("file_order", "signup_at")
        .unique("user_id", keep="first", maintain_order=True)
        .select("user_id", signup_date=business_date(pl.col("signup_at"), rules))
    )


def user_days(events: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """One row per user and day with any staged event or order."""
    order_days = orders.group_by("user_id", activity_date="order_date").agg(
        has_paid_order=pl.col("is_paid").any(),
        paid_orders=pl.col("is_paid").sum(),
        paid_cents=pl.col("amount_cents").filter(pl.col("is_paid")).sum(),
        first_ordered_at=pl.col("ordered_at").min(),
    )
    return events.join(
        order_days, on=["user_id", "activity_date"], how="full", coalesce=True
    ).select(
        "user_id",
        "activity_date",
        is_active=pl.col("has_active_event").fill_null(False)
        | pl.col("has_paid_order").fill_null(False),
        paid_orders=pl.col("paid_orders").fill_null(0),
        paid_cents=pl.col("paid_cents").fill_null(0),
        first_seen_at=pl.min_horizontal("first_event_at", "first_ordered_at"),
    )


def daily_active_users(days: pl.DataFrame) -> pl.DataFrame:
    first, latest = days["activity_date"].min(), days["activity_date"].max()
    calendar = pl.DataFrame({"metric_date": pl.date_range(first, latest, "1d", eager=True)})
    dau = (
        days.filter("is_active")
        .group_by(metric_date="activity_date")
        .agg(dau=pl.len().cast(pl.Int64))
    )
    return (
        calendar.join(dau, on="metric_date", how="left")
        .with_columns(pl.col("dau").fill_null(0))
        .sort("metric_date")
    )


def month_index(expr: pl.Expr) -> pl.Expr:
    return expr.dt.year().cast(pl.Int64) * 12 + expr.dt.month().cast(pl.Int64)


def monthly_retention(days: pl.DataFrame, rules: Definitions) -> pl.DataFrame:
    latest = days["activity_date"].max()
    months = (
        days.filter("is_active")
        .select("user_id", activity_month=pl.col("activity_date").dt.truncate("1mo"))
        .unique()
    )
    members = months.group_by("user_id").agg(cohort_month=pl.col("activity_month").min())
    retained = (
        months.join(members, on="user_id")
        .with_columns(
            period_number=month_index(pl.col("activity_month"))
            - month_index(pl.col("cohort_month"))
        )
        .group_by("cohort_month", "period_number")
        .agg(retained_users=pl.len().cast(pl.Int64))
    )
    cohorts = members.group_by("cohort_month").agg(cohort_size=pl.len().cast(pl.Int64))
    periods = pl.DataFrame(
        {"period_number": pl.int_range(0, rules.max_periods_month + 1, eager=True, dtype=pl.Int64)}
    )
    cells = cohorts.join(periods, how="cross").filter(
        pl.col("cohort_month").dt.offset_by(pl.format("{}mo", pl.col("period_number"))) <= latest
    )
    return (
        cells.join(retained, on=["cohort_month", "period_number"], how="left")
        .with_columns(pl.col("retained_users").fill_null(0))
        .select("cohort_month", "period_number", "cohort_size", "retained_users")
        .sort("cohort_month", "period_number")
    )


def rfm_segments(days: pl.DataFrame, users: pl.DataFrame, rules: Definitions) -> pl.DataFrame:
    as_of = days["activity_date"].max()
    first_seen = days.group_by("user_id").agg(pl.col("first_seen_at").min())
    known = users.join(first_seen, on="user_id", how="full", coalesce=True).select(
        "user_id",
        signup_date=pl.coalesce("signup_date", business_date(pl.col("first_seen_at"), rules)),
    )
    population = known.filter(pl.col("signup_date") <= as_of).select("user_id")
    window_start = as_of - timedelta(days=rules.rfm_window_days)
    in_window = pl.col("activity_date") > window_start
    buyers = (
        days.filter(pl.col("paid_orders") > 0)
        .group_by("user_id")
        .agg(
            recency_days=(as_of - pl.col("activity_date").max()).dt.total_days(),
            frequency=pl.col("paid_orders").filter(in_window).sum(),
            monetary_cents=pl.col("paid_cents").filter(in_window).sum(),
        )
        .join(population, on="user_id", how="semi")
    )
    recency_threshold = buyers["recency_days"].median()
    frequency_threshold = buyers["frequency"].median()
    # DuckDB's median of decimal(38, 2) truncates the mean of the two middle values to whole
    # cents; against whole-cent amounts `>` that threshold and `>` the exact median agree.
    monetary_threshold = buyers["monetary_cents"].median()
    segment = pl.lit(NO_PURCHASE)
    for (r_high, f_high, m_high), name in SEGMENTS.items():
        condition = (
            ((pl.col("recency_days") < recency_threshold) == r_high)
            & ((pl.col("frequency") > frequency_threshold) == f_high)
            & ((pl.col("monetary_cents") > monetary_threshold) == m_high)
        )
        segment = (
            pl.when(pl.col("recency_days").is_not_null() & condition)
            .then(pl.lit(name))
            .otherwise(segment)
        )
    return (
        population.join(buyers, on="user_id", how="left")
        .select("user_id", as_of_date=pl.lit(as_of), rfm_segment=segment)
        .sort("user_id")
    )


def run(landing_dir: Path, out: Path) -> None:
    rules = definitions()
    out.mkdir(parents=True, exist_ok=True)
    days = user_days(event_days(landing_dir, rules), staged_orders(landing_dir, rules))
    daily_active_users(days).write_parquet(out / OUTPUTS["dau"])
    monthly_retention(days, rules).write_parquet(out / OUTPUTS["retention"])
    rfm_segments(days, staged_users(landing_dir, rules), rules).write_parquet(out / OUTPUTS["rfm"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m userops.bench_polars", description=__doc__)
    parser.add_argument("--landing-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    run(args.landing_dir, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
