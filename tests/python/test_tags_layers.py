"""Tags, layers and audiences on real build output: invariants the dbt tests cannot see alone."""

from __future__ import annotations

import re

import duckdb
import pytest
from conftest import Build

MY_MODELS = (
    "user_layers",
    "user_tags",
    "user_tag_history",
    "user_profiles",
    "layer_migrations",
    "audience_members",
    "audience_outcomes",
)
LAYER_DIMENSIONS = ("rfm_segment", "lifecycle_stage", "period_state", "activity_tier", "value_tier")


def query(build: Build, sql: str) -> list[tuple]:
    with duckdb.connect(str(build.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def assert_my_models_built_cleanly(build: Build) -> None:
    """My models, their data tests and unit tests: built, and no WARN / ERROR / FAIL / SKIP line."""
    output = build.result.stdout + build.result.stderr
    for model in MY_MODELS:
        created = [
            line
            for line in output.splitlines()
            if re.search(rf"OK created sql (table|incremental) model marts\.{model} ", line)
        ]
        assert created, f"{model} was not built"
        mentioned = [line for line in output.splitlines() if model in line]
        bad = [line for line in mentioned if re.search(r"\b(WARN|ERROR|FAIL|SKIP)\b", line)]
        assert not bad, bad


@pytest.fixture(params=["sample", "retail"])
def build(request: pytest.FixtureRequest) -> Build:
    return request.getfixturevalue(f"{request.param}_build")


def test_my_models_build_without_warnings(build: Build) -> None:
    assert_my_models_built_cleanly(build)


def test_every_layer_dimension_sums_to_all_users_per_as_of_date(build: Build) -> None:
    expected = dict(
        query(
            build,
            """
            select dates.as_of_date, count(users.user_id)
            from intermediate.int_as_of_dates_selected as dates
            left join marts.users as users on users.signup_date <= dates.as_of_date
            group by dates.as_of_date
            """,
        )
    )
    assert len(expected) >= 4
    for dimension in LAYER_DIMENSIONS:
        column = "rfm_segment_code" if dimension == "rfm_segment" else dimension
        rows = query(
            build,
            f"""
            select as_of_date, count(*), count(distinct user_id), count({column})
            from marts.user_layers group by as_of_date
            """,
        )
        assert {date: total for date, total, _, _ in rows} == expected, dimension
        # One row per user and date, and every row has a layer: exactly one layer per user.
        assert all(total == distinct == labelled for _, total, distinct, labelled in rows)


def test_migrations_add_up_to_the_layers_of_each_close(build: Build) -> None:
    mismatches = query(
        build,
        """
        with migrated as (
            select period_grain, as_of_date, layer_dimension, to_layer, sum(user_count) as users
            from marts.layer_migrations
            group by all
        ),
        layered as (
            select as_of_date, 'lifecycle_stage' as layer_dimension, lifecycle_stage as layer,
                count(*) as users
            from marts.user_layers group by all
            union all
            select as_of_date, 'rfm_segment', rfm_segment_code, count(*)
            from marts.user_layers group by all
        )
        select migrated.*, layered.users
        from migrated
        inner join layered
            on migrated.as_of_date = layered.as_of_date
            and migrated.layer_dimension = layered.layer_dimension
            and migrated.to_layer = layered.layer
        where migrated.users != layered.users
        """,
    )
    assert mismatches == []
    grains = {
        grain
        for (grain,) in query(build, "select distinct period_grain from marts.layer_migrations")
    }
    assert grains == {"week", "month"}


def test_order_only_log_gets_order_based_layers(retail_build: Build) -> None:
    segments = dict(
        query(
            retail_build,
            """
            select rfm_segment_code, count(*) from marts.user_layers
            where as_of_date = (select max(as_of_date) from marts.user_layers) group by all
            """,
        )
    )
    # Users of an order log are derived from their first order; only those whose every order
    # was cancelled have never bought.
    assert set(segments) - {"no_purchase"} == {
        "important_value",
        "important_develop",
        "important_maintain",
        "important_retain",
        "general_value",
        "general_develop",
        "general_maintain",
        "general_retain",
    }
    assert segments.get("no_purchase", 0) < 0.05 * sum(segments.values())
    [(paying_no_purchase,)] = query(
        retail_build,
        """
        select count(*) from marts.user_layers as layers
        inner join staging.stg_landing__orders as orders
            on layers.user_id = orders.user_id and orders.is_paid
            and orders.order_date <= layers.as_of_date
        where layers.rfm_segment_code = 'no_purchase'
        """,
    )
    assert paying_no_purchase == 0
    [(latest,)] = query(retail_build, "select max(as_of_date) from marts.user_layers")
    assert latest.year == 2011  # the latest data day, not the wall clock
    event_tags = query(
        retail_build,
        "select count(*) from marts.user_tags where tag_code in ('night_owl', 'search_heavy')",
    )
    assert event_tags == [(0,)]


def test_tag_history_answers_who_had_a_tag_on_a_date(sample_build: Build) -> None:
    dates = [
        d
        for (d,) in query(
            sample_build, "select as_of_date from intermediate.int_as_of_dates_selected"
        )
    ]
    checked = 0
    for tag_code in ("push_responsive", "lifecycle_stage", "spend_band"):
        for as_of_date in dates:
            evaluated = set(
                query(
                    sample_build,
                    f"""select user_id, tag_value from intermediate.int_user_tags_evaluated
                    where tag_code = '{tag_code}' and as_of_date = date '{as_of_date}'""",
                )
            )
            from_history = set(
                query(
                    sample_build,
                    f"""select user_id, tag_value from marts.user_tag_history
                    where tag_code = '{tag_code}' and valid_from <= date '{as_of_date}'
                    and (valid_to is null or date '{as_of_date}' < valid_to)""",
                )
            )
            assert from_history == evaluated, (tag_code, as_of_date)
            checked += len(evaluated)
    assert checked > 1000
    # Latest tags are the current history rows.
    [(current,)] = query(
        sample_build, "select count(*) from marts.user_tag_history where is_current"
    )
    [(latest,)] = query(sample_build, "select count(*) from marts.user_tags")
    assert current == latest > 0


def test_holdout_share_is_within_tolerance_and_stable(sample_build: Build) -> None:
    rows = query(
        sample_build,
        """
        select audience_id, any_value(holdout_share), count(distinct user_id),
            count(distinct user_id) filter (where is_holdout)
        from marts.audience_members group by audience_id
        """,
    )
    assert rows
    total = sum(users for _, _, users, _ in rows)
    assert total > 300
    for audience_id, share, users, holdout in rows:
        if users >= 200:
            # Binomial sd of the share is sqrt(s(1-s)/n) <= 0.035 at n = 200: 4 sd tolerance.
            tolerance = 4 * (share * (1 - share) / users) ** 0.5
            assert abs(holdout / users - share) <= tolerance, audience_id
    # A user's group never changes between audience dates.
    [(flips,)] = query(
        sample_build,
        """
        select count(*) from (
            select audience_id, user_id from marts.audience_members
            group by audience_id, user_id having count(distinct is_holdout) > 1
        )
        """,
    )
    assert flips == 0
    # The bucket is the documented md5 prefix, so any engine or rerun reproduces it.
    [(mismatched,)] = query(
        sample_build,
        """
        select count(*) from marts.audience_members
        where abs(holdout_bucket
            - cast(('0x' || substr(md5(audience_id || '|' || user_id), 1, 8)) as bigint)
              / 4294967296.0) > 1e-12
        """,
    )
    assert mismatched == 0


def test_audience_outcomes_cover_every_audience_date(sample_build: Build) -> None:
    [(member_groups, outcome_rows)] = query(
        sample_build,
        """
        select (select count(*) from (select distinct audience_id, audience_date
                from marts.audience_members)),
            (select count(*) from marts.audience_outcomes)
        """,
    )
    assert outcome_rows == 3 * member_groups > 0
    [(bad,)] = query(
        sample_build,
        """
        select count(*) from marts.audience_outcomes
        where holdout_users > 0 and treatment_users > 0
            and not (lift_ci_lower <= absolute_lift and absolute_lift <= lift_ci_upper)
        """,
    )
    assert bad == 0
