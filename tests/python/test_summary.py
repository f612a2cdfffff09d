"""`userops summary`: every printed number is the marts' own value; absent or empty marts and an
orders-only build do not break it; a table whose rows did not get in is flagged."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import Build

from userops import cli
from userops.churn import pipeline
from userops.summary import (
    LandingTable,
    format_landing,
    format_summary,
    read_summary,
)
from userops.warehouse import serving_database


def one(warehouse: Path, sql: str) -> tuple:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchone()


def rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def percent(value: float) -> str:
    return f"{value:.1%}".replace("%", " %")


@pytest.fixture(scope="module")
def scored_warehouse(sample_build: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample warehouse plus ml.churn_scores for its latest day (3 high, 2 medium, 5 low)."""
    assert sample_build.result.returncode == 0
    warehouse = tmp_path_factory.mktemp("summary") / "warehouse.duckdb"
    shutil.copyfile(sample_build.warehouse_path, warehouse)
    (latest,) = one(warehouse, "select max(metric_date) from marts.daily_metrics")
    tiers = ["high"] * 3 + ["medium"] * 2 + ["low"] * 5
    probability = {"high": 0.8, "medium": 0.5, "low": 0.1}
    pipeline.write_scores(
        warehouse,
        pd.DataFrame(
            {
                "user_id": [f"u{i}" for i in range(10)],
                "scored_date": [latest] * 10,
                "churn_probability": [probability[tier] for tier in tiers],
                "risk_tier": tiers,
                "model_version": ["test"] * 10,
            }
        ),
    )
    return warehouse


def test_headline_numbers_are_the_marts_values(scored_warehouse: Path) -> None:
    summary = read_summary(scored_warehouse)
    headline = summary.headline
    latest, dau, new_users, gmv, paying_users, paying_rate = one(
        scored_warehouse,
        "select metric_date, dau, new_users, gmv, paying_users, paying_rate"
        " from marts.daily_metrics order by metric_date desc limit 1",
    )
    assert headline.metric_date == latest
    assert (headline.dau, headline.new_users, headline.gmv) == (dau, new_users, gmv)
    assert (headline.paying_users, headline.paying_rate) == (paying_users, paying_rate)
    d7 = one(
        scored_warehouse,
        "select signup_date, new_users, d7_retained_users, d7_retention_rate"
        " from marts.n_day_retention_rates"
        " where segment_dimension = 'overall' and d7_retention_rate is not null"
        " order by signup_date desc limit 1",
    )
    assert d7 is not None and d7[0] < latest
    assert (
        headline.d7_signup_date,
        headline.d7_new_users,
        headline.d7_retained_users,
        headline.d7_retention_rate,
    ) == d7
    # The same D7 as daily_metrics reports for that signup day.
    (daily_d7,) = one(
        scored_warehouse,
        f"select d7_retention_rate from marts.daily_metrics where metric_date = '{d7[0]}'",
    )
    assert daily_d7 == pytest.approx(d7[3])
    # The catalogue's north star (gmv) at its latest overall value in metric_values.
    [(star_code,)] = rows(
        scored_warehouse, "select metric_code from config.metric_catalogue where is_north_star"
    )
    (star_value,) = one(
        scored_warehouse,
        f"select metric_value from marts.metric_values where metric_code = '{star_code}'"
        " and dimension = 'overall' order by metric_date desc limit 1",
    )
    [star] = headline.north_stars
    assert (star.metric_code, star.value, star.as_of) == (star_code, star_value, latest)
    assert headline.churn_tiers == {"high": 3, "medium": 2, "low": 5}
    assert headline.churn_scored_date == latest
    tags = dict(
        rows(
            scored_warehouse,
            "select tag_value, count(*) from marts.user_tags where tag_code = 'churn_risk'"
            " and as_of_date = (select max(as_of_date) from marts.user_tags) group by all",
        )
    )
    assert tags and headline.churn_tag_values == tags

    text = format_summary(summary, scored_warehouse)
    assert f"Latest day {latest}" in text
    assert f"  DAU                  {dau:>14,}" in text
    assert f"  New users            {new_users:>14,}" in text
    assert f"  GMV                  {gmv:>14,.2f}   * north star" in text
    assert f"{percent(paying_rate):>14}   ({paying_users:,} paying users of {dau:,} active)" in text
    assert f"{percent(d7[3])}   ({d7[2]:,} of {d7[1]:,} users who signed up on {d7[0]}" in text
    assert "3 high, 2 medium, 5 low of 10 scored users (ml.churn_scores" in text
    tag_text = ", ".join(f"{count:,} {value}" for value, count in sorted(tags.items()))
    assert f"Churn risk (tag)     {tag_text}" in text


def test_landing_lines_are_the_accounting_and_quarantine_marts(scored_warehouse: Path) -> None:
    summary = read_summary(scored_warehouse)
    text = format_summary(summary, scored_warehouse)
    accounting = rows(
        scored_warehouse,
        "select table_name, raw_rows, staged_rows, quarantined_rows"
        " from marts.landing_row_accounting",
    )
    # The five mandatory landing tables and the five optional operations tables (generated).
    assert len(accounting) == 10
    landing = text.split("What got in")[1].split("Latest day")[0]
    for table, raw, staged, quarantined in accounting:
        [line] = [line for line in landing.splitlines() if line[2:].startswith(f"{table} ")]
        assert line.startswith("  "), line  # ~1-2 % injected bad rows: not flagged
        assert f" {raw:,} raw" in line
        assert f" {staged:,} staged ({percent(staged / raw)})" in line
        assert f" {quarantined:,} quarantined" in line
        if quarantined == 0:
            assert "top reasons" not in line, line
            continue
        top_reason, top_count = rows(
            scored_warehouse,
            "select quarantine_reason, count(*) from marts.quarantined_rows"
            f" where table_name = '{table}' group by all order by 2 desc, 1 limit 1",
        )[0]
        share = f"{top_count / quarantined:.0%}".replace("%", " %")
        assert f"top reasons: {top_reason} {share}" in line
    assert "! " not in landing


def test_closing_hint_points_bi_at_the_serving_copy(
    scored_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USEROPS_SERVING_DIR", str(tmp_path / "serving"))
    serving = serving_database(scored_warehouse)
    assert serving == tmp_path / "serving" / "userops.duckdb"
    text = format_summary(read_summary(scored_warehouse), scored_warehouse)
    where = text.split(f"Working warehouse (builds write here): {scored_warehouse}")[1]
    assert f"BI reads the serving copy {serving} (not published yet: userops publish)" in where
    assert f"duckdb:///{serving}?access_mode=read_only" in where
    assert f"duckdb.connect('{serving}', read_only=True)" in where
    assert str(scored_warehouse) not in where


def test_summary_of_an_orders_only_build(
    retail_build: Build, capsys: pytest.CaptureFixture
) -> None:
    assert cli.main(["summary", "--warehouse", str(retail_build.warehouse_path)]) == 0
    text = capsys.readouterr().out
    (orders_raw, orders_staged) = one(
        retail_build.warehouse_path,
        "select raw_rows, staged_rows from marts.landing_row_accounting"
        " where table_name = 'orders'",
    )
    assert f"orders           {orders_raw:>12,} raw" in text
    assert f" {orders_staged:,} staged" in text
    for table in ("users", "events", "order_items", "marketing_spend"):
        assert f"  {table:<16} no landing files (optional, absent)" in text
    assert "Churn risk (model)" not in text
    (dau,) = one(
        retail_build.warehouse_path,
        "select dau from marts.daily_metrics order by metric_date desc limit 1",
    )
    assert f"  DAU                  {dau:>14,}" in text


def test_summary_on_empty_and_absent_marts(tmp_path: Path) -> None:
    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()
    text = format_summary(read_summary(bare), bare)
    assert "Latest day: no daily metrics (marts.daily_metrics is absent or empty)" in text
    assert "Landing: no marts.landing_row_accounting in this warehouse" in text

    empty = tmp_path / "empty.duckdb"
    with duckdb.connect(str(empty)) as connection:
        for sql in [
            "create schema marts",
            "create schema ml",
            "create schema config",
            "create table marts.daily_metrics (metric_date date, dau bigint, new_users bigint,"
            " gmv double, paying_users bigint, paying_rate double)",
            "create table marts.n_day_retention_rates (signup_date date,"
            " segment_dimension varchar, new_users bigint, d7_retained_users bigint,"
            " d7_retention_rate double)",
            "create table marts.metric_values (metric_date date, metric_code varchar,"
            " dimension varchar, metric_value double)",
            "create table marts.user_tags (user_id varchar, as_of_date date, tag_code varchar,"
            " tag_value varchar)",
            "create table marts.landing_row_accounting (table_name varchar, raw_rows bigint,"
            " staged_rows bigint, quarantined_rows bigint)",
            "create table marts.quarantined_rows (table_name varchar, quarantine_reason varchar)",
            "create table ml.churn_scores (user_id varchar, scored_date date,"
            " churn_probability double, risk_tier varchar)",
            "create table config.metric_catalogue as select 'gmv' as metric_code,"
            " 'GMV' as name_en, 'currency' as unit, true as is_north_star,"
            " 'day' as grain, 'daily_metrics' as source_model, 'gmv' as source_column",
        ]:
            connection.execute(sql).fetchall()
    summary = read_summary(empty)
    assert summary.headline.metric_date is None and summary.landing == []
    assert summary.headline.north_stars[0].value is None
    text = format_summary(summary, empty)
    assert "Latest day: no daily metrics" in text


def test_a_table_whose_rows_did_not_get_in_is_flagged() -> None:
    """Issue 18: a 1997 order log, every row before min_valid_timestamp."""
    orders = LandingTable("orders", 25_943, 0, 25_943, [("bad_timestamp", 25_943)])
    users = LandingTable("users", 0, 0, 0, [])
    lines = format_landing([users, orders])
    assert lines[1] == "  users            no landing files (optional, absent)"
    assert lines[2] == (
        "! orders                 25,943 raw            0 staged (0.0 %)     25,943 quarantined"
        " - top reason: bad_timestamp 100 %"
    )
    assert lines[3].startswith(
        "! orders: only 0.0 % of 25,943 raw rows got in. 100.0 % are bad_timestamp (timestamps"
        " before var min_valid_timestamp"
    )
    assert "above dq_max_out_of_range_share = 0.05" in lines[3]
    assert lines[3].endswith("old history needs a lower var min_valid_timestamp.")
    # A mandatory table with no rows is flagged; 5 % duplicates is within dq_max_duplicate_id_share.
    assert format_landing([LandingTable("orders", 0, 0, 0)])[1].startswith("! orders ")
    assert format_landing([LandingTable("orders", 0, 0, 0)])[-1] == (
        "! orders: no landing rows at all."
    )
    within = LandingTable("orders", 100, 95, 5, [("duplicate", 5)])
    assert within.over_threshold() == [] and not within.is_flagged(mandatory=True)
    over = LandingTable("orders", 100, 94, 6, [("duplicate", 6)])
    assert over.over_threshold() == [("duplicate", 0.06, "dq_max_duplicate_id_share", 0.05)]


def test_layer_counts_are_still_listed(scored_warehouse: Path) -> None:
    summary = read_summary(scored_warehouse)
    (users,) = one(scored_warehouse, "select count(*) from marts.users")
    assert summary.layers["marts"]["users"] == users
    assert f"  {'users':<40} {users:>12,}" in format_summary(summary, scored_warehouse)
    assert summary.headline.metric_date is not None
    assert isinstance(summary.headline.metric_date, date)


def test_flags_judge_by_the_vars_the_build_ran_with() -> None:
    """The quarantine gate reads the build's --vars; so does the end of `userops build`. The
    online-retail build (docs/landing_contract.md) raises dq_max_null_required_share and
    dq_max_quarantined_share to 0.15: its 14.3 % missing_key passes the gate, and the landing
    lines must not call it "above dq_max_null_required_share = 0.05". Like the gate, a total
    above dq_max_quarantined_share is flagged when no reason alone is above its var."""
    orders = LandingTable(
        "orders", 25_943, 22_190, 3_753, [("missing_key", 3_722), ("duplicate", 31)]
    )
    assert orders.over_threshold() == [
        ("missing_key", 3_722 / 25_943, "dq_max_null_required_share", 0.05),
        ("all reasons", 3_753 / 25_943, "dq_max_quarantined_share", 0.1),
    ]
    raised = {"dq_max_null_required_share": 0.15, "dq_max_quarantined_share": 0.15}
    assert orders.over_threshold(raised) == []
    assert not [line for line in format_landing([orders], raised) if line.startswith("!")]
    assert format_landing([orders])[-1].startswith(
        "! orders: only 85.5 % of 25,943 raw rows got in. 14.3 % are missing_key (no key),"
        " above dq_max_null_required_share = 0.05."
    )

    # Four reasons of 3 % each: none above its 5 %, 12 % in all above 10 %.
    spread = LandingTable(
        "orders", 100, 88, 12,
        [("bad_timestamp", 3), ("duplicate", 3), ("missing_key", 3), ("negative_amount", 3)],
    )  # fmt: skip
    assert spread.over_threshold() == [("all reasons", 0.12, "dq_max_quarantined_share", 0.1)]
    assert format_landing([spread])[-1] == (
        "! orders: only 88.0 % of 100 raw rows got in. 12.0 % are quarantined for any reason,"
        " above dq_max_quarantined_share = 0.1. See marts.quarantined_rows for examples."
    )

    # The floor named is the one the build used.
    old = LandingTable("orders", 10, 0, 10, [("bad_timestamp", 10)])
    assert "var min_valid_timestamp (dbt_project.yml: 1990-01-01)" in format_landing([old])[-1]
    strict = format_landing([old], {"min_valid_timestamp": "2000-01-01"})[-1]
    assert "var min_valid_timestamp (--vars: 2000-01-01)" in strict


def test_the_end_of_a_build_reads_its_vars() -> None:
    extra = ["--select", "x", "--vars", "{dq_max_quarantined_share: 0.15, landing_format: csv}"]
    assert cli.dbt_vars_of(extra) == {"dq_max_quarantined_share": 0.15, "landing_format": "csv"}
    assert cli.dbt_vars_of(["--vars={min_valid_timestamp: '1980-01-01'}"]) == {
        "min_valid_timestamp": "1980-01-01"
    }
    assert cli.dbt_vars_of(["--vars", "{not yaml"]) == {} == cli.dbt_vars_of([])
    assert cli.landing_format_of(extra) == "csv"
