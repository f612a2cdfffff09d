"""Great Expectations suites: grading, landing rules on hand-made files, mart invariants on a
hand-made warehouse, and the results table."""

from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from userops.quality.landing import check_landing_table
from userops.quality.marts import check_mart
from userops.quality.results import quality_rows, write_quality_results
from userops.quality.settings import dbt_var, known_event_names, required_columns
from userops.quality.validate import CheckOutcome, Rule, grade, run_rules, worst


def by_rule(outcomes: list[CheckOutcome]) -> dict[str, CheckOutcome]:
    return {outcome.check: outcome for outcome in outcomes}


def write_events(landing: Path, day: str, frame: pd.DataFrame, part: int = 0) -> Path:
    folder = landing / "events" / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{part}.parquet"
    frame.to_parquet(path)
    return path


def events(n: int, names: list[str], duplicate_ids: int = 0) -> pd.DataFrame:
    ids = [f"e{i}" for i in range(n - duplicate_ids)] + ["e0"] * duplicate_ids
    return pd.DataFrame(
        {
            "event_id": ids,
            "user_id": [f"u{i % 7}" for i in range(n)],
            "event_time": [datetime(2026, 6, 30, 9, 0)] * n,
            "event_name": [names[i % len(names)] for i in range(n)],
        }
    )


def test_grade_splits_errors_from_warnings_at_the_threshold() -> None:
    rule = Rule("r", "expect_column_values_to_be_unique", {"column": "x"}, "x unique", 0.05)
    assert grade(rule, success=False, unexpected_share=0.06) == "error"
    assert grade(rule, success=False, unexpected_share=0.05) == "warn"
    assert grade(rule, success=True, unexpected_share=0.0) == "error"
    strict = Rule("s", "expect_column_to_exist", {"column": "x"}, "x exists", 0.0)
    assert grade(strict, success=False, unexpected_share=None) == "error"
    advisory = Rule("a", "expect_column_to_exist", {"column": "x"}, "x exists", None)
    assert grade(advisory, success=False, unexpected_share=0.9) == "warn"


def test_worst_outcome_decides_the_check() -> None:
    ok = CheckOutcome("s", "a", "error", True, 0.0, "")
    warning = CheckOutcome("s", "b", "warn", False, 0.01, "")
    error = CheckOutcome("s", "c", "error", False, 0.5, "")
    assert worst([ok]) == (True, "warn")
    assert worst([ok, warning]) == (False, "warn")
    assert worst([ok, warning, error]) == (False, "error")


def test_run_rules_reports_share_and_examples() -> None:
    frame = pd.DataFrame({"rate": [0.1, 0.5, 1.5, 2.0]})
    (outcome,) = run_rules(
        "rates",
        frame,
        [
            Rule(
                "rate_in_0_1",
                "expect_column_values_to_be_between",
                {"column": "rate", "min_value": 0, "max_value": 1},
                "rate in [0, 1]",
            )
        ],
    )
    assert not outcome.passed and outcome.severity == "error"
    assert outcome.observed_value == pytest.approx(0.5)
    assert "2 of 4 rows (50.0%)" in outcome.message and "1.5" in outcome.message


def test_settings_come_from_the_project_files() -> None:
    assert required_columns("events") == ["event_id", "user_id", "event_time", "event_name"]
    assert {"signup", "app_open"} <= known_event_names()
    assert 0 < float(dbt_var("dq_min_known_event_share")) <= 1


def test_landing_events_unknown_names_and_duplicates_are_graded(tmp_path: Path) -> None:
    known = sorted(known_event_names())[:3]
    # The names cycle through 18 known and 1 unknown: 5 of 100 unknown, a warning (under
    # 1 - dq_min_known_event_share = 20 %).
    write_events(tmp_path, "2026-06-30", events(100, known[:2] * 9 + ["brand_new_button"]))
    outcomes = by_rule(check_landing_table(tmp_path, "events"))
    assert outcomes["required_columns_present"].passed
    name_rule = outcomes["event_name_known"]
    assert not name_rule.passed and name_rule.severity == "warn"
    assert "brand_new_button" in name_rule.message
    assert outcomes["event_id_unique"].passed

    # A day where the tracking plan was renamed: 134 of its 200 names unknown, and its ids
    # repeat the first day's.
    write_events(tmp_path, "2026-07-01", events(200, ["v2_open", "v2_view", known[0]], 30), part=0)
    outcomes = by_rule(check_landing_table(tmp_path, "events"))
    name_rule = outcomes["event_name_known"]
    assert name_rule.severity == "error"
    assert name_rule.observed_value == pytest.approx((5 + 134) / 300)
    duplicates = outcomes["event_id_unique"]
    assert not duplicates.passed and duplicates.severity == "error"


def test_landing_file_without_a_required_column_is_an_error_naming_the_file(
    tmp_path: Path,
) -> None:
    write_events(tmp_path, "2026-06-29", events(10, ["signup"]))
    write_events(tmp_path, "2026-06-30", events(10, ["signup"]).drop(columns="event_time"))
    rule = by_rule(check_landing_table(tmp_path, "events"))["required_columns_present"]
    assert not rule.passed and rule.severity == "error"
    assert "events/dt=2026-06-30/part-0.parquet lacks event_time" in rule.message
    assert "2026-06-29" not in rule.message


def test_absent_landing_table_has_no_suite(tmp_path: Path) -> None:
    assert check_landing_table(tmp_path, "marketing_spend") is None


@pytest.fixture()
def marts_warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        for sql in [
            "create schema marts",
            "create table marts.users (user_id varchar, email varchar, signup_date date)",
            "insert into marts.users values ('u1', null, null), ('u1', null, null)",
            "create table marts.retention_cohorts (cohort_start_date date, retention_mode varchar,"
            " period_number integer, cohort_size integer, retained_users integer,"
            " retention_rate double, is_provisional boolean)",
            # Unbounded retention rises from period 2 to 3: impossible; classic may rise.
            "insert into marts.retention_cohorts values"
            " ('2026-01-05', 'unbounded', 1, 10, 6, 0.6, false),"
            " ('2026-01-05', 'unbounded', 2, 10, 4, 0.4, false),"
            " ('2026-01-05', 'unbounded', 3, 10, 5, 0.5, false),"
            " ('2026-01-05', 'classic', 1, 10, 2, 0.2, false),"
            " ('2026-01-05', 'classic', 2, 10, 3, 0.3, false),"
            " ('2026-01-12', 'unbounded', 1, 8, 9, 1.125, true)",
            "create table marts.user_layers (user_id varchar, as_of_date date,"
            " rfm_segment varchar, value_tier varchar)",
            "insert into marts.user_layers values"
            " ('u1', '2026-06-01', 'a', 'core'), ('u2', '2026-06-01', 'b', 'normal'),"
            " ('u1', '2026-06-02', 'a', 'core'), ('u2', '2026-06-02', null, 'normal')",
        ]:
            connection.execute(sql).fetchall()
    return path


def test_users_mart_rules_catch_pii_and_duplicate_keys(marts_warehouse: Path) -> None:
    outcomes = by_rule(check_mart(str(marts_warehouse), "marts", "users"))
    assert not outcomes["no_pii_columns"].passed
    assert "email" in outcomes["no_pii_columns"].message
    assert not outcomes["user_id_unique"].passed
    assert outcomes["user_id_not_null"].passed


def test_unbounded_retention_must_not_increase(marts_warehouse: Path) -> None:
    outcomes = by_rule(check_mart(str(marts_warehouse), "marts", "retention_cohorts"))
    rule = outcomes["unbounded_retention_non_increasing"]
    # Only the 2 -> 3 step of the first unbounded cohort; classic rows are not checked (4
    # unbounded rows, the first of each cohort has no previous period).
    assert not rule.passed and rule.severity == "error"
    assert "1 of 4 rows" in rule.message
    rate = outcomes["retention_rate_between_0_and_1"]
    assert not rate.passed and rate.severity == "error"
    assert "1.125" in rate.message


def test_layers_must_sum_to_all_users(marts_warehouse: Path) -> None:
    outcomes = by_rule(check_mart(str(marts_warehouse), "marts", "user_layers"))
    rule = outcomes["layers_sum_to_all_users"]
    # 2026-06-02: u2 has no rfm_segment -> 1 layer user of 2 users (1 failing row of 6).
    assert not rule.passed and rule.severity == "error"
    assert "1 of 6 rows" in rule.message


def test_missing_mart_has_no_suite(marts_warehouse: Path) -> None:
    assert check_mart(str(marts_warehouse), "marts", "daily_metrics") is None


def test_results_are_appended_per_run(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    outcome = CheckOutcome("landing_orders", "order_id_unique", "warn", False, 0.01, "1 dup")
    for run in ("run-1", "run-2"):
        write_quality_results(
            warehouse, quality_rows(run, "landing/orders", "gx_landing_suite", [outcome])
        )
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "select run_id, check_name, rule_name, severity, passed, observed_value"
            " from ops.data_quality_results order by run_id"
        ).fetchall()
    assert rows == [
        ("run-1", "gx_landing_suite", "order_id_unique", "warn", False, 0.01),
        ("run-2", "gx_landing_suite", "order_id_unique", "warn", False, 0.01),
    ]
