"""Retention cohorts and the metric system on built sample and online-retail warehouses."""

from __future__ import annotations

import csv
import math

import duckdb
import yaml
from conftest import PROJECT_DIR, Build

CATALOGUE = PROJECT_DIR / "seeds" / "metric_catalogue.csv"
LAYERS = {"rfm_segment_code", "lifecycle_stage", "activity_tier", "value_tier"}

# A buyer month's value tier by the point-in-time rule, straight from user_layers: the latest
# as-of date strictly before the month's first day, `unassigned` without a layer row there.
POINT_IN_TIME_REPURCHASE_SQL = """
with buyer_months as (
    select user_id, date_trunc('month', activity_date) as order_month,
        sum(paid_order_count) as paid_orders
    from intermediate.int_user_days_aggregated where has_paid_order group by all
),
layer_dates as (
    select b.user_id, b.order_month, b.paid_orders, max(a.as_of_date) as layer_as_of_date
    from buyer_months as b
    left join intermediate.int_as_of_dates_selected as a on a.as_of_date < b.order_month
    group by all
)
select cast(d.order_month as date), coalesce(l.value_tier, 'unassigned'), count(*),
    count(*) filter (where d.paid_orders >= 2)
from layer_dates as d
left join marts.user_layers as l
    on l.user_id = d.user_id and l.as_of_date = d.layer_as_of_date
group by all
"""


def query(build: Build, sql: str) -> list[tuple]:
    with duckdb.connect(str(build.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def normalise(text: str) -> str:
    """Collapse whitespace so YAML line folding does not hide a matching definition."""
    return " ".join(text.split())


def read_catalogue() -> list[dict[str, str]]:
    with CATALOGUE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def model_description(model_name: str) -> str:
    """Description of a model from the YAML file beside its SQL."""
    [path] = list((PROJECT_DIR / "models").rglob(f"{model_name}.yml"))
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    [model] = [m for m in document["models"] if m["name"] == model_name]
    return normalise(model["description"])


def test_catalogue_has_one_north_star_and_required_metrics() -> None:
    catalogue = read_catalogue()
    assert [row["metric_code"] for row in catalogue if row["is_north_star"] == "true"] == ["gmv"]
    required = {
        "new_users", "activation_rate", "dau", "wau", "mau", "stickiness", "d1_retention",
        "d7_retention", "d30_retention", "paying_users", "paying_rate", "orders", "gmv", "aov",
        "arpu", "arppu", "repurchase_rate", "referral_invites", "referral_conversions",
        "k_factor", "reactivated_users", "cac", "roi",
    }  # fmt: skip
    assert required <= {row["metric_code"] for row in catalogue}


def test_definitions_are_written_in_model_docs_in_the_catalogue_words() -> None:
    docs = normalise((PROJECT_DIR / "docs" / "metrics.md").read_text(encoding="utf-8"))
    for row in read_catalogue():
        definition = normalise(row["definition"])
        assert definition in model_description(row["source_model"]), row["metric_code"]
        assert definition in docs, row["metric_code"]


def test_build_passes(sample_build: Build) -> None:
    output = sample_build.result.stdout + sample_build.result.stderr
    assert sample_build.result.returncode == 0, output[-4000:]


def test_metric_values_cover_every_daily_catalogue_metric(sample_build: Build) -> None:
    daily = {row["metric_code"] for row in read_catalogue() if row["grain"] == "day"}
    found = {
        code
        for (code,) in query(sample_build, "select distinct metric_code from marts.metric_values")
    }
    assert found == daily
    dimensions = {
        d for (d,) in query(sample_build, "select distinct dimension from marts.metric_values")
    }
    assert dimensions == {"overall", "acquisition_channel", "platform", "city_tier", *LAYERS}


def test_daily_metrics_recomputed_from_staging(sample_build: Build) -> None:
    """GMV, orders and paying users straight from clean orders; new users from marts.users."""
    mismatches = query(
        sample_build,
        """
        with orders as (
            select order_date, sum(amount) as gmv, count(*) as orders,
                count(distinct user_id) as paying_users
            from staging.stg_landing__orders where is_paid group by order_date
        ),
        signups as (select signup_date, count(*) as new_users from marts.users group by 1)
        select daily.metric_date
        from marts.daily_metrics as daily
        left join orders on daily.metric_date = orders.order_date
        left join signups on daily.metric_date = signups.signup_date
        where abs(daily.gmv - coalesce(orders.gmv, 0)) > 1e-6
            or daily.orders <> coalesce(orders.orders, 0)
            or daily.paying_users <> coalesce(orders.paying_users, 0)
            or daily.new_users <> coalesce(signups.new_users, 0)
        """,
    )
    assert mismatches == []
    [(days, min_date, max_date)] = query(
        sample_build, "select count(*), min(metric_date), max(metric_date) from marts.daily_metrics"
    )
    assert days == (max_date - min_date).days + 1


def test_wau_and_mau_match_a_direct_distinct_count(sample_build: Build) -> None:
    mismatches = query(
        sample_build,
        """
        select daily.metric_date
        from marts.daily_metrics as daily
        where daily.mau <> (
                select count(distinct user_id) from intermediate.int_user_days_aggregated as d
                where d.is_active and d.activity_date between daily.metric_date - 29
                    and daily.metric_date)
            or daily.wau <> (
                select count(distinct user_id) from intermediate.int_user_days_aggregated as d
                where d.is_active and d.activity_date between daily.metric_date - 6
                    and daily.metric_date)
        """,
    )
    assert mismatches == []


def test_n_day_retention_equals_classic_signup_cohort_cells(sample_build: Build) -> None:
    rows = query(
        sample_build,
        """
        select n.signup_date, n.segment_dimension, n.segment_value, c.period_number,
            case c.period_number when 1 then n.d1_retained_users when 7 then n.d7_retained_users
                else n.d30_retained_users end as n_day,
            c.retained_users
        from marts.n_day_retention_rates as n
        inner join marts.retention_cohorts as c
            on c.cohort_grain = 'day' and c.retention_type = 'activity'
            and c.cohort_basis = 'signup' and c.retention_mode = 'classic'
            and c.cohort_start_date = n.signup_date
            and c.segment_dimension = n.segment_dimension and c.segment_value = n.segment_value
            and c.period_number in (1, 7, 30)
        """,
    )
    assert len(rows) > 100
    assert [row for row in rows if row[4] != row[5]] == []


def test_unbounded_retention_is_at_least_classic(sample_build: Build) -> None:
    [(violations, cells)] = query(
        sample_build,
        """
        select count(*) filter (where u.retained_users < c.retained_users), count(*)
        from marts.retention_cohorts as c
        inner join marts.retention_cohorts as u
            using (cohort_grain, cohort_start_date, retention_type, cohort_basis,
                segment_dimension, segment_value, period_number)
        where c.retention_mode = 'classic' and u.retention_mode = 'unbounded'
        """,
    )
    assert cells > 0 and violations == 0


def test_dau_decomposition_matches_daily_metrics(sample_build: Build) -> None:
    rows = query(
        sample_build,
        """
        select d.comparison, d.dau, m.dau, d.comparison_dau, coalesce(p.dau, 0),
            d.new_users + d.resurrected_users - d.newly_dormant_users, d.dau_change
        from marts.dau_change_decompositions as d
        inner join marts.daily_metrics as m on d.metric_date = m.metric_date
        left join marts.daily_metrics as p on d.comparison_date = p.metric_date
        """,
    )
    assert {row[0] for row in rows} == {"day_over_day", "week_over_week"}
    for _, dau, daily_dau, comparison_dau, previous_dau, parts, change in rows:
        assert dau == daily_dau
        assert comparison_dau == previous_dau
        assert parts == change == dau - comparison_dau


def test_mix_and_rate_effects_sum_to_the_monthly_change(sample_build: Build) -> None:
    rows = query(
        sample_build,
        """
        select d.metric_code, d.dimension, d.order_month, sum(d.mix_effect + d.rate_effect),
            max(case d.metric_code when 'gmv' then cur.gmv else cur.repurchase_rate end
                - case d.metric_code when 'gmv' then prev.gmv else prev.repurchase_rate end)
        from marts.metric_change_decompositions as d
        inner join marts.monthly_repurchase_rates as cur
            on cur.order_month = d.order_month and cur.group_dimension = 'overall'
        inner join marts.monthly_repurchase_rates as prev
            on prev.order_month = d.previous_month and prev.group_dimension = 'overall'
        group by all
        """,
    )
    assert {(code, dim) for code, dim, *_ in rows} >= {
        ("gmv", "buyer_type"),
        ("repurchase_rate", "platform"),
    }
    for *_, parts, change in rows:
        assert math.isclose(parts, change, rel_tol=1e-9, abs_tol=1e-9)


def test_layer_breakdowns_take_the_layer_before_the_period(sample_build: Build) -> None:
    expected = set(query(sample_build, POINT_IN_TIME_REPURCHASE_SQL))
    actual = set(
        query(
            sample_build,
            "select order_month, group_value, buyers, repeat_buyers"
            " from marts.monthly_repurchase_rates where group_dimension = 'value_tier'",
        )
    )
    assert actual == expected
    # Not trivially all unassigned, and an older month does not take the latest layers.
    assert {value for _, value, *_ in actual} - {"unassigned"}
    [(latest_as_of,)] = query(
        sample_build, "select max(as_of_date) from intermediate.int_as_of_dates_selected"
    )
    [(layer_dates,)] = query(
        sample_build,
        "select count(distinct layer_as_of_date) from intermediate.int_layer_dates_mapped"
        f" where layer_as_of_date < date '{latest_as_of}'",
    )
    assert layer_dates > 1


def test_week_cohorts_by_layer_match_user_layers(sample_build: Build) -> None:
    """First-activity week cohorts by lifecycle stage, recomputed from user_layers directly."""
    mismatches = query(
        sample_build,
        """
        with firsts as (
            select user_id, cast(date_trunc('week', min(activity_date)) as date) as cohort_start
            from intermediate.int_user_days_aggregated where is_active group by user_id
        ),
        direct as (
            select f.cohort_start, coalesce(l.lifecycle_stage, 'unassigned') as stage,
                count(*) as users
            from firsts as f
            left join marts.user_layers as l on l.user_id = f.user_id and l.as_of_date = (
                select max(a.as_of_date) from intermediate.int_as_of_dates_selected as a
                where a.as_of_date < f.cohort_start)
            group by all
        ),
        mart as (
            select cohort_start_date, segment_value, cohort_size
            from marts.retention_cohorts
            where cohort_grain = 'week' and retention_type = 'activity'
                and cohort_basis = 'first_time' and retention_mode = 'classic'
                and period_number = 0 and segment_dimension = 'lifecycle_stage'
        )
        select * from direct
        full outer join mart
            on direct.cohort_start = mart.cohort_start_date and direct.stage = mart.segment_value
        where direct.users is distinct from mart.cohort_size
        """,
    )
    assert mismatches == []
    [(day_layer_rows,)] = query(
        sample_build,
        "select count(*) from marts.retention_cohorts"
        f" where cohort_grain = 'day' and segment_dimension in {tuple(sorted(LAYERS))}",
    )
    assert day_layer_rows == 0


def test_decomposition_uses_only_the_chosen_layer(sample_build: Build) -> None:
    dimensions = {
        d
        for (d,) in query(
            sample_build, "select distinct dimension from marts.metric_change_decompositions"
        )
    }
    assert "value_tier" in dimensions
    assert not (LAYERS - {"value_tier"}) & dimensions


def test_funnel_steps_never_grow(sample_build: Build) -> None:
    rows = query(
        sample_build,
        """
        select funnel_code, step_number, sum(users)
        from marts.funnel_conversions group by all order by 1, 2
        """,
    )
    with (PROJECT_DIR / "seeds" / "funnels.csv").open(encoding="utf-8") as funnels:
        assert {row[0] for row in rows} == {row["funnel_code"] for row in csv.DictReader(funnels)}
    for (funnel, _, users), (next_funnel, _, next_users) in zip(rows, rows[1:], strict=False):
        if funnel == next_funnel:
            assert next_users <= users
    assert rows[0][2] > 0


def test_online_retail_builds_order_models(retail_build: Build) -> None:
    output = retail_build.result.stdout + retail_build.result.stderr
    assert retail_build.result.returncode == 0, output[-4000:]
    [(days, gmv, dau, last_day)] = query(
        retail_build,
        "select count(*), sum(gmv), sum(dau), max(metric_date) from marts.daily_metrics",
    )
    assert days > 300 and gmv > 0 and dau > 0 and last_day.year == 2011
    [(cells, provisional)] = query(
        retail_build,
        "select count(*), count(*) filter (where is_provisional) from marts.retention_cohorts"
        " where retention_mode = 'classic' and cohort_grain = 'month'",
    )
    # Provisional is relative to the log's last day (2011), not today's date.
    assert cells > 0 and 0 < provisional < cells
    [(repurchase_months,)] = query(
        retail_build, "select count(*) from marts.monthly_repurchase_rates"
    )
    assert repurchase_months > 0
    # Layers derive from orders on an orders-only log. Every cohort anchor there is the first
    # order (users are derived from it), so cohort layer rows are all `unassigned` yet add up to
    # overall; returning buyers of a month carry real layers.
    [(overall_cohort_users, layer_cohort_users, month_buyers, layer_buyers, assigned_buyers)] = (
        query(
            retail_build,
            """
            select
                (select sum(cohort_size) from marts.retention_cohorts
                    where cohort_grain = 'month' and segment_dimension = 'overall'
                    and period_number = 0),
                (select sum(cohort_size) from marts.retention_cohorts
                    where cohort_grain = 'month' and segment_dimension = 'lifecycle_stage'
                    and period_number = 0),
                (select sum(buyers) from marts.monthly_repurchase_rates
                    where group_dimension = 'overall'),
                (select sum(buyers) from marts.monthly_repurchase_rates
                    where group_dimension = 'activity_tier'),
                (select sum(buyers) from marts.monthly_repurchase_rates
                    where group_dimension = 'activity_tier' and group_value <> 'unassigned')
            """,
        )
    )
    assert layer_cohort_users == overall_cohort_users > 0
    assert layer_buyers == month_buyers and 0 < assigned_buyers < month_buyers
    # Event-based models exist and are empty on an orders-only log.
    [(funnel_rows,)] = query(retail_build, "select count(*) from marts.funnel_conversions")
    assert funnel_rows == 0
