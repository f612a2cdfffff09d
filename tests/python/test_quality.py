"""Great Expectations suites: grading, landing rules on hand-made files, mart invariants on a
hand-made warehouse, and the results table."""

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import Build

from userops.quality.expected import FailedCheck, classify, format_report
from userops.quality.landing import (
    LANDING_TABLES,
    check_landing_table,
    rule_reasons,
    timestamp_bounds,
)
from userops.quality.marts import check_mart, is_share_column, share_metric_codes
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


# ------------------------------------------------------------------------- range rules (audit)
def test_share_columns_are_named_as_shares() -> None:
    for name in [
        "retention_rate",
        "d7_retention_rate",
        "treatment_rate",
        "coupon_order_share",
        "holdout_share",
        "active_day_share_28d",
        "churn_probability",
        "mean_churn_probability",
        "rate",
    ]:
        assert is_share_column(name), name
    # GMV per buyer (metric_change_decompositions), effects, counts are not shares.
    for name in ["previous_unit_value", "rate_effect", "share_count", "gmv", "sessions_28d"]:
        assert not is_share_column(name), name


def test_every_share_column_outside_0_1_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as connection:
        for sql in [
            "create schema marts",
            "create table marts.churn_features (user_id varchar, active_day_share_28d double,"
            " previous_unit_value double, treatment_rate double)",
            "insert into marts.churn_features values ('u1', 0.5, 182.37, 0.2),"
            " ('u2', 1.25, 90.7, 1.0), ('u3', 0.0, 0.0, -0.1)",
        ]:
            connection.execute(sql).fetchall()
    outcomes = by_rule(check_mart(str(path), "marts", "churn_features"))
    share = outcomes["active_day_share_28d_between_0_and_1"]
    assert not share.passed and share.severity == "error" and "1.25" in share.message
    # Once graded a mere warning (not a "known" rate name); a proportion is a proportion.
    treatment = outcomes["treatment_rate_between_0_and_1"]
    assert not treatment.passed and treatment.severity == "error" and "-0.1" in treatment.message
    assert "previous_unit_value_between_0_and_1" not in outcomes


def test_share_metrics_of_metric_values_are_checked_by_catalogue(tmp_path: Path) -> None:
    codes = share_metric_codes()
    assert {"paying_rate", "d7_retention", "activation_rate", "coupon_order_share"} <= set(codes)
    assert not {"gmv", "k_factor", "roi", "sessions_per_active_user", "dau"} & set(codes)
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as connection:
        for sql in [
            "create schema marts",
            "create table marts.metric_values (metric_date date, metric_code varchar,"
            " dimension varchar, dimension_value varchar, metric_value double)",
            "insert into marts.metric_values values"
            " ('2026-06-01', 'gmv', 'overall', 'all', 3917.5),"
            " ('2026-06-01', 'k_factor', 'overall', 'all', 1.4),"
            " ('2026-06-01', 'paying_rate', 'overall', 'all', 0.1),"
            " ('2026-06-01', 'paying_rate', 'platform', 'ios', 1.2)",
        ]:
            connection.execute(sql).fetchall()
    rule = by_rule(check_mart(str(path), "marts", "metric_values"))[
        "share_metric_values_between_0_and_1"
    ]
    assert not rule.passed and rule.severity == "error"
    assert "1 of 2 rows" in rule.message and "1.2" in rule.message


def test_quarantine_share_is_judged_per_reason_by_its_dq_var(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as connection:
        for sql in [
            "create schema marts",
            "create table marts.landing_row_accounting (table_name varchar, raw_rows bigint,"
            " staged_rows bigint, quarantined_rows bigint, unaccounted_rows bigint)",
            "insert into marts.landing_row_accounting values ('orders', 100, 0, 100, 0),"
            " ('users', 100, 96, 4, 0)",
            "create table marts.quarantined_rows (table_name varchar, quarantine_reason varchar)",
            "insert into marts.quarantined_rows select 'orders', 'bad_timestamp' from range(100)",
            "insert into marts.quarantined_rows select 'users', 'duplicate' from range(4)",
        ]:
            connection.execute(sql).fetchall()
    outcomes = by_rule(check_mart(str(path), "marts", "landing_row_accounting"))
    assert outcomes["raw_equals_staged_plus_quarantined"].passed
    rule = outcomes["quarantined_share_per_reason_within_dq_max"]
    assert not rule.passed and rule.severity == "warn"
    # 100 % bad_timestamp is over dq_max_out_of_range_share; 4 % duplicates is within 5 %.
    assert "1 of 2 rows" in rule.message
    assert "orders: 100.0% bad_timestamp > dq_max_out_of_range_share 5.0%" in rule.message


def write_orders(landing: Path, frame: pd.DataFrame) -> None:
    folder = landing / "orders" / "dt=2026-06-30"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "part-0.parquet")


def orders(times: list[datetime]) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "user_id": ["u1"] * n,
            "ordered_at": times,
            "status": ["paid"] * n,
            "amount": ["10.5"] * n,
        }
    )


def test_landing_timestamps_outside_the_staging_range_are_graded(tmp_path: Path) -> None:
    earliest, latest = timestamp_bounds()
    assert earliest == datetime.fromisoformat(str(dbt_var("min_valid_timestamp")))
    good = datetime(2026, 6, 30, 9, 0)
    # 1 of 40 before the floor: a warning (2.5 % <= dq_max_out_of_range_share).
    write_orders(tmp_path, orders([good] * 39 + [datetime(1987, 3, 1)]))
    rule = by_rule(check_landing_table(tmp_path, "orders"))["ordered_at_in_valid_range"]
    assert not rule.passed and rule.severity == "warn" and "1987-03-01" in rule.message
    # A log from 1987: every row before the floor (1990-01-01), an error; one from the future too.
    write_orders(tmp_path, orders([datetime(1987, 3, 1)] * 9 + [latest + timedelta(days=1)]))
    rule = by_rule(check_landing_table(tmp_path, "orders"))["ordered_at_in_valid_range"]
    assert not rule.passed and rule.severity == "error"
    assert "10 of 10 rows" in rule.message
    assert rule_reasons("ordered_at_in_valid_range") == ("bad_timestamp",)


def test_city_tier_is_graded_like_the_quarantine_it_causes(tmp_path: Path) -> None:
    folder = tmp_path / "users" / "dt=2026-06-30"
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3", "u4"],
            "signup_at": [datetime(2026, 6, 30)] * 4,
            "city_tier": [1, 5, 7, 2],
            "birth_year": [1990, 2001, 1850, datetime.now().year + 1],
        }
    ).to_parquet(folder / "part-0.parquet")
    outcomes = by_rule(check_landing_table(tmp_path, "users"))
    # Staging quarantines city_tier 7 (invalid_value): 25 % is above dq_max_out_of_range_share.
    tier = outcomes["city_tier_1_to_5"]
    assert not tier.passed and tier.severity == "error"
    assert rule_reasons("city_tier_1_to_5") == ("invalid_value",)
    # Birth years are kept by staging: a warning, and a year after this one is implausible.
    birth = outcomes["birth_year_plausible"]
    assert not birth.passed and birth.severity == "warn" and "2 of 4 rows" in birth.message


def test_every_mart_of_the_sample_build_passes_its_range_rules(sample_build: Build) -> None:
    """The decomposition's GMV per buyer once failed "previous_rate is a rate in [0, 1]"."""
    with duckdb.connect(str(sample_build.warehouse_path), read_only=True) as connection:
        marts = [
            name
            for (name,) in connection.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        ]
        columns = {
            name
            for (name,) in connection.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'marts' and table_name = 'metric_change_decompositions'"
            ).fetchall()
        }
    assert {"previous_unit_value", "current_unit_value"} <= columns
    assert not {"previous_rate", "current_rate"} & columns
    failed = []
    for table in marts:
        for outcome in check_mart(str(sample_build.warehouse_path), "marts", table) or []:
            if outcome.suite.endswith(("_rates", "_shares")) and not outcome.passed:
                failed.append(outcome.message)
    assert failed == []


# -------------------------------------------------------------- expected checks (injected rows)
def test_landing_warnings_on_generated_data_are_the_injected_rows(
    sample_build: Build, tmp_path: Path
) -> None:
    """The five landing suites run on the generated sample, as the Dagster checks run them;
    each warning is matched to the defects the generator injected, and nothing else."""
    warehouse = tmp_path / "w.duckdb"
    shutil.copyfile(sample_build.warehouse_path, warehouse)
    failed = []
    for table in LANDING_TABLES:
        outcomes = check_landing_table(sample_build.landing_dir, table)
        write_quality_results(
            warehouse, quality_rows("run-1", f"landing/{table}", "gx_landing_suite", outcomes)
        )
        passed, severity = worst(outcomes)
        assert not passed and severity == "warn", table
        failed.append(FailedCheck(f"landing/{table}", "gx_landing_suite", "WARN", "..."))
    churn = FailedCheck("churn_model", "churn_model_beats_recency_baseline", "WARN", "worse")
    report = classify(
        [*failed, churn], warehouse=warehouse, landing_dir=sample_build.landing_dir, run_id="run-1"
    )
    assert [item.check.asset_key for item in report.expected] == [c.asset_key for c in failed]
    assert report.failed == [churn]
    injected = sample_build.injected_defects
    by_table = {item.check.asset_key: item.explanation for item in report.expected}
    orders_total = sum(n for n in injected["orders"].values())
    assert by_table["landing/orders"].startswith(f"{orders_total:,} bad rows injected")
    unknown = injected["events"]["unknown_event_name"]
    assert f"{unknown:,} events with unknown names injected" in by_table["landing/events"]
    text = format_report(report)
    assert "Expected: 5 landing check(s) warn about the bad rows the generator injects" in text
    assert "--bad-row-share" in text and "injected_defects.json" in text
    assert "Failed checks (1):\n  failed check churn_model:" in text
    noted = format_report(report, ["churn_model:churn_model_beats_recency_baseline Not compared"])
    assert noted.endswith(
        "Passed without comparing:\n  churn_model:churn_model_beats_recency_baseline Not compared"
    )

    # The same warnings without the generator's counts, or on a different run: real failures.
    elsewhere = tmp_path / "imported" / "landing"
    assert classify(failed, warehouse=warehouse, landing_dir=elsewhere, run_id="run-1").failed
    assert classify(failed, warehouse=warehouse, landing_dir=sample_build.landing_dir,
                    run_id="run-2").failed == failed  # fmt: skip


def test_injected_rows_explain_a_warning_only_when_counts_and_rules_match(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    (tmp_path / "ground_truth").mkdir()
    (tmp_path / "ground_truth" / "injected_defects.json").write_text(
        json.dumps({"orders": {"duplicate": 2, "negative_amount": 1, "missing_key": 0}})
    )
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("create schema marts").fetchall()
        connection.execute(
            "create table marts.quarantined_rows as select * from (values"
            " ('orders', 'duplicate'), ('orders', 'duplicate'), ('orders', 'negative_amount'))"
            " as t(table_name, quarantine_reason)"
        ).fetchall()

    def outcome(rule: str) -> CheckOutcome:
        return CheckOutcome("landing_orders", rule, "warn", False, 0.01, rule)

    def verdict(rules: list[str], severity: str = "WARN", run: str = "r1") -> bool:
        write_quality_results(
            warehouse, quality_rows(run, "landing/orders", "gx_landing_suite", map(outcome, rules))
        )
        check = FailedCheck("landing/orders", "gx_landing_suite", severity, "...")
        report = classify([check], warehouse=warehouse, landing_dir=landing, run_id=run)
        return bool(report.expected)

    assert verdict(["order_id_unique", "amount_at_least_0"], run="r1")
    # An error is a failure whatever caused it.
    assert not verdict(["order_id_unique"], severity="ERROR", run="r2")
    # Nothing injected matches a failing status rule (invalid_value) or a null key.
    assert not verdict(["order_id_unique", "status_accepted"], run="r3")
    assert not verdict(["order_id_not_null"], run="r4")
    # The quarantine no longer equals what was injected (e.g. a log imported over the sample).
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "insert into marts.quarantined_rows values ('orders', 'duplicate')"
        ).fetchall()
    assert not verdict(["order_id_unique"], run="r5")


def test_rules_read_only_their_columns_and_table_rules_read_all() -> None:
    from userops.quality.landing import derived, landing_rules, source_column
    from userops.quality.validate import Rule, columns_needed

    present = {"event_id", "user_id", "event_time", "event_name", "properties", "page"}
    needed = columns_needed(landing_rules("events", present), sorted(present | derived(present)))
    # The range rule reads event_time_out_of_range, which prepare_rows derives from event_time.
    assert "event_time_out_of_range" in needed
    assert {source_column(column) for column in needed} == {
        "event_id",
        "user_id",
        "event_time",
        "event_name",
    }
    whole = Rule("cols", "expect_table_columns_to_match_set", {"column_set": ["a"]}, "", None)
    assert columns_needed([whole], ["a", "b"]) is None
