"""Funnels v2 (docs/funnels.md): the sample data makes every feature non-trivial, and the
funnel seeds' validation tests fail on a bad row with a test that names what is wrong."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import duckdb
from conftest import PROJECT_DIR, Build

from userops.dbt import dbt_env, dbt_executable

FUNNEL_SEEDS = ("funnels", "funnel_settings", "funnel_exclusions", "event_mapping")


def query(build: Build, sql: str) -> list[tuple]:
    with duckdb.connect(str(build.warehouse_path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def step_users(build: Build) -> dict[tuple[str, int], tuple[int, int]]:
    rows = query(
        build,
        "select funnel_code, step_number, sum(users), sum(excluded_attempts)"
        " from marts.funnel_conversions group by all",
    )
    return {(funnel, step): (users, excluded) for funnel, step, users, excluded in rows}


def test_strict_order_held_property_and_exclusions_cut_the_funnel(sample_build: Build) -> None:
    users = step_users(sample_build)
    # quick_checkout (strict) and same_product_cart (product_id held) start like the ordered
    # purchase funnel, on view_item: every attempt is counted or excluded at step 1.
    entered = users[("purchase", 1)][0]
    assert users[("quick_checkout", 1)][0] == entered
    assert sum(users[("same_product_cart", 1)]) == entered
    assert 0 < users[("quick_checkout", 2)][0] < users[("purchase", 2)][0]
    assert 0 < users[("same_product_cart", 2)][0] < users[("purchase", 2)][0] / 4
    # Exclusions only where seeds/funnel_exclusions.csv has some.
    assert users[("same_product_cart", 1)][1] > 0 and users[("discovery_any", 1)][1] > 0
    assert users[("purchase", 1)][1] == users[("quick_checkout", 1)][1] == 0


def test_any_order_counts_steps_done_before_the_previous_one(sample_build: Build) -> None:
    # In `any` order step 3 (view_item) may come before step 2 (search): then both are reached
    # when the search happens, at the same time.
    [(reached_3, out_of_order)] = query(
        sample_build,
        """
        select count(*), count(*) filter (where s3.reached_at = s2.reached_at)
        from intermediate.int_funnel_steps_reached as s2
        inner join intermediate.int_funnel_steps_reached as s3
            using (funnel_code, user_id, entry_date)
        where funnel_code = 'discovery_any' and s2.step_number = 2 and s3.step_number = 3
        """,
    )
    assert 0 < out_of_order < reached_3


def test_step_window_and_percentiles(sample_build: Build) -> None:
    # quick_checkout: begin_checkout at most 1 minute after the add_to_cart just before it.
    # Every reached step 3 has such a cart; and the window cuts: some checkouts right after a
    # cart (a strict chain) come later than that.
    [(checkouts, without_cart, late_strict_checkouts)] = query(
        sample_build,
        """
        with sequenced as (
            select user_id, event_name, event_at,
                lag(event_name) over user_events as previous_name,
                lag(event_at) over user_events as previous_at
            from staging.stg_landing__events where is_active_event
            window user_events as (partition by user_id order by event_at, event_id)
        )
        select
            (select count(*) from intermediate.int_funnel_steps_reached
                where funnel_code = 'quick_checkout' and step_number = 3),
            (select count(*) from intermediate.int_funnel_steps_reached as s3
                where funnel_code = 'quick_checkout' and step_number = 3 and not exists (
                    select 1 from sequenced
                    where sequenced.user_id = s3.user_id and sequenced.event_at = s3.reached_at
                        and sequenced.event_name = 'begin_checkout'
                        and sequenced.previous_name = 'add_to_cart'
                        and sequenced.previous_at >= s3.reached_at - interval 1 minute)),
            (select count(*) from sequenced where event_name = 'begin_checkout'
                and previous_name = 'add_to_cart' and previous_at < event_at - interval 1 minute)
        """,
    )
    assert checkouts > 0 and without_cart == 0 and late_strict_checkouts > 0
    [(rows, unordered)] = query(
        sample_build,
        """
        select count(*), count(*) filter (where not (p25_minutes_to_convert
            <= median_minutes_to_convert and median_minutes_to_convert <= p75_minutes_to_convert
            and p75_minutes_to_convert <= p90_minutes_to_convert))
        from marts.funnel_conversions where step_number > 1 and users > 1
        """,
    )
    assert rows > 0 and unordered == 0


def test_provisional_attempts_and_days_are_at_the_end(sample_build: Build) -> None:
    [(attempts, provisional, earliest_provisional, latest_closed)] = query(
        sample_build,
        """
        select count(*), count(*) filter (where is_provisional),
            min(entry_date) filter (where is_provisional),
            max(entry_date) filter (where not is_provisional)
        from intermediate.int_funnel_steps_reached where step_number = 1
        """,
    )
    assert 0 < provisional < attempts / 10
    assert latest_closed >= earliest_provisional  # attempts of one day close at different times
    days = dict(
        query(
            sample_build,
            "select funnel_code, count(distinct entry_date) filter (where is_provisional)"
            " from marts.funnel_conversions group by all",
        )
    )
    assert days["purchase"] == 3 and days["search_to_purchase"] == 1  # 72 h and 24 h windows


def test_breakdowns_split_each_funnel(sample_build: Build) -> None:
    values = dict(
        query(
            sample_build,
            "select funnel_code || ':' || attribution, count(distinct breakdown_value)"
            " from marts.funnel_step_breakdowns group by all",
        )
    )
    assert set(values) == {
        "purchase:first_touch",
        "search_to_purchase:user",
        "quick_checkout:per_step",
        "same_product_cart:last_touch",
        "discovery_any:first_touch",
    }
    assert all(count > 1 for count in values.values()), values


BAD_ROWS = {
    # seed file: (row to append, the failing test it must produce)
    "funnel_settings": ("purchase_x,sometimes,,,", "accepted_values_funnel_settings_order_mode"),
    "funnels": (
        "purchase,购买漏斗,Purchase funnel,5,teleport,72,",
        "funnels_step_event_name_is_a_canonical_event_of_event_mapping",
    ),
    "funnel_exclusions": ("purchase,teleport,1,9", "relationships_funnel_exclusions_event_name"),
}


def test_bad_funnel_seed_rows_fail_named_tests(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(PROJECT_DIR / name, project / name)
    for folder in ("models", "macros", "seeds", "tests"):
        shutil.copytree(
            PROJECT_DIR / folder, project / folder, ignore=shutil.ignore_patterns("python")
        )
    for seed, (row, _) in BAD_ROWS.items():
        with (project / "seeds" / f"{seed}.csv").open("a", encoding="utf-8") as csv_file:
            csv_file.write(row + "\n")
    env = dbt_env(tmp_path / "landing", tmp_path / "w.duckdb")
    env["DBT_PROJECT_DIR"] = env["DBT_PROFILES_DIR"] = str(project)
    (tmp_path / "tmp").mkdir()
    subprocess.run(
        [dbt_executable(), "build", "--select", *FUNNEL_SEEDS, "--log-path", str(tmp_path)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    failed = {r["unique_id"].split(".")[2] for r in results if r["status"] in ("fail", "error")}
    for _, test_prefix in BAD_ROWS.values():
        assert any(name.startswith(test_prefix) for name in failed), (test_prefix, failed)
    # The exclusion's to_step 9 is no step of the purchase funnel.
    assert any(name.startswith("funnel_steps_exist_funnel_exclusions") for name in failed)
    assert not any(name.startswith("accepted_values_event_mapping") for name in failed)
