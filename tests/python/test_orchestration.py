"""The Dagster code location: loads, materializes the whole graph against a temporary DuckDB file,
reruns day partitions idempotently (a range in one dbt invocation), stops at a bad landing file,
and logs failed runs."""

import importlib
import json
import os
import re
import shutil
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from conftest import SAMPLE_END_DATE

from orchestration.instance import write_dagster_yaml
from userops.generate import generate
from userops.manifest import prepare_manifest

PARTITION = SAMPLE_END_DATE.isoformat()
DAILY_MODEL = "int_user_days_aggregated"


@dataclass(frozen=True)
class Location:
    root: Path
    landing_dir: Path
    warehouse_path: Path
    defs: Any


def load_definitions() -> Any:
    """Import the code location fresh, after the environment points at the test's files."""
    for name in [name for name in sys.modules if name.startswith("orchestration.")]:
        if name != "orchestration.ml":
            del sys.modules[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module("orchestration.definitions").defs


@pytest.fixture(scope="module")
def location(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Location]:
    root = tmp_path_factory.mktemp("orchestration")
    # 100 days: the churn assets need two label windows before the latest cutoff.
    generate(
        root / "landing", users=250, days=100, end_date=SAMPLE_END_DATE, seed=11, bad_row_share=0.01
    )
    dagster_home = root / "dagster_home"
    # The dagster.yaml `make dagster-home` writes (orchestration/instance.py).
    write_dagster_yaml(dagster_home)
    patch = pytest.MonkeyPatch()
    for name, value in {
        "USEROPS_LANDING_DIR": root / "landing",
        "USEROPS_DUCKDB_PATH": root / "warehouse.duckdb",
        "USEROPS_DUCKDB_TEMP_DIR": root / "tmp",
        "USEROPS_DBT_TARGET_PATH": root / "target",
        "USEROPS_MODEL_DIR": root / "models",
        "DAGSTER_HOME": dagster_home,
    }.items():
        patch.setenv(name, str(value))
    prepare_manifest(root / "target")
    yield Location(root, root / "landing", root / "warehouse.duckdb", load_definitions())
    patch.undo()


def execute(location: Location, job_name: str, *, on_disk: bool = False, **kwargs: Any) -> Any:
    """Run a job in process: on an ephemeral instance, or (on_disk) on the DAGSTER_HOME instance
    `make demo` and the UI use, with its SQLite run history."""
    from dagster import DagsterInstance

    job = location.defs.resolve_job_def(job_name)
    instance = DagsterInstance.get() if on_disk else DagsterInstance.ephemeral()
    return job.execute_in_process(instance=instance, raise_on_error=False, **kwargs)


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def step_errors(result: Any) -> str:
    return "\n".join(
        f"{event.step_key}: {event.event_specific_data.error.to_string()[-1500:]}"
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    )


@pytest.fixture(scope="module")
def full_run(location: Location) -> Any:
    return execute(location, "userops_all", on_disk=True, partition_key=PARTITION)


def test_definitions_expose_assets_checks_schedules_and_sensors(location: Location) -> None:
    from dagster import AssetKey

    repository = location.defs.get_repository_def()
    graph = location.defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    # Every dbt model and seed is an asset keyed by its name; landing tables are sources.
    assert {"stg_landing__events", DAILY_MODEL, "users", "event_mapping"} <= keys
    assert {f"landing/{table}" for table in ("users", "events", "orders")} <= keys
    assert {"churn_model", "churn_scores", "clv_scores"} <= keys
    assert {"value_cohorts", "channel_paybacks", "stickiness_distributions"} <= keys
    assert {"retention_interval_rates", "int_clv_scores_dated"} <= keys
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert ("landing/events", "gx_landing_suite") in checks
    assert ("landing/orders", "dbt_source_freshness") in checks
    assert ("users", "gx_mart_suite") in checks
    assert any(asset == "users" and name.startswith("unique_users") for asset, name in checks)
    landing_check = graph.get_check_spec(
        next(key for key in graph.asset_check_keys if key.name == "gx_landing_suite")
    )
    assert landing_check.blocking
    assert {job.name for job in repository.get_all_jobs()} >= {
        "userops_daily",
        "userops_all",
        "churn_retrain",
    }
    assert {schedule.name for schedule in repository.schedule_defs} == {
        "userops_daily_schedule",
        "churn_retrain_weekly_schedule",
    }
    assert {sensor.name for sensor in repository.sensor_defs} == {
        "landing_files_sensor",
        "run_failure_log_sensor",
        "alert_notification_sensor",
    }
    # One alert check per daily catalogue metric, on the alerts mart, never blocking.
    alert_checks = {name for asset, name in checks if asset == "alerts" and "no_alert_" in name}
    assert {"no_alert_dau", "no_alert_gmv", "no_alert_paying_rate"} <= alert_checks
    assert "report" in keys
    daily = graph.get(AssetKey([DAILY_MODEL]))
    assert daily.partitions_def.timezone == "Asia/Shanghai"
    assert daily.backfill_policy.max_partitions_per_run is None  # single run per backfill
    # Marts after the last incremental model are unpartitioned (tables between two incremental
    # models, e.g. users, run in the partitioned step and are rebuilt in full there).
    assert graph.get(AssetKey(["daily_metrics"])).partitions_def is None


def test_the_run_history_is_on_disk_in_the_unsynced_storage(full_run: Any) -> None:
    from dagster import DagsterEventType, DagsterInstance

    from orchestration.event_log_storage import UnsyncedSqliteEventLogStorage

    instance = DagsterInstance.get()
    storage = instance.event_log_storage
    assert type(storage).__name__ == UnsyncedSqliteEventLogStorage.__name__
    assert storage.synchronous == "off"
    with storage.run_connection(full_run.run_id) as connection:
        assert connection.exec_driver_sql("pragma synchronous").scalar() == 0
    stored = [entry.dagster_event_type for entry in instance.all_logs(full_run.run_id)]
    assert stored.count(DagsterEventType.ASSET_MATERIALIZATION) == len(
        full_run.get_asset_materialization_events()
    )
    assert stored.count(DagsterEventType.ASSET_CHECK_EVALUATION) == len(
        full_run.get_asset_check_evaluations()
    )
    assert instance.get_run_by_id(full_run.run_id).is_success


def test_whole_graph_materializes(location: Location, full_run: Any) -> None:
    assert full_run.success, step_errors(full_run)
    materialized = {
        event.asset_key.to_user_string() for event in full_run.get_asset_materialization_events()
    }
    graph = location.defs.resolve_asset_graph()
    expected = {key.to_user_string() for key in graph.materializable_asset_keys}
    assert expected - materialized == set()
    # The tags read churn scores: their partitioned step starts after the scores are written.
    started = [e.step_key for e in full_run.all_events if e.event_type_value == "STEP_START"]
    assert started.index("churn_scores") < started.index("dbt_daily_models_after_python")
    # ... and the predicted_value_tier tag reads ml.clv_scores the same way.
    assert started.index("clv_scores") < started.index("dbt_daily_models_after_python")
    evaluations = full_run.get_asset_check_evaluations()
    # Freshness fails on purpose (the sample ends in 2026-06); everything else passes or warns.
    failed_errors = [
        evaluation.check_name
        for evaluation in evaluations
        if not evaluation.passed
        and evaluation.severity.value == "ERROR"
        and evaluation.check_name != "dbt_source_freshness"
    ]
    assert failed_errors == []
    landing = {
        evaluation.asset_key.to_user_string(): evaluation
        for evaluation in evaluations
        if evaluation.check_name == "gx_landing_suite"
    }
    assert set(landing) == {
        f"landing/{table}"
        for table in ("users", "events", "orders", "order_items", "marketing_spend")
    }
    # The sample injects ~1 % bad rows: warnings (staging quarantines them), never errors.
    for evaluation in landing.values():
        assert evaluation.passed or evaluation.severity.value == "WARN", evaluation.description
    assert query(location.warehouse_path, "select count(*) from marts.users")[0][0] > 200
    # The CLV asset scored every buyer and the tag engine picked its tier up on the scored date.
    [(scored, buyers, tagged)] = query(
        location.warehouse_path,
        """
        select
            (select count(*) from ml.clv_scores),
            (select count(distinct user_id) from intermediate.int_user_days_aggregated
                where has_paid_order),
            (select count(*) from marts.user_tags where tag_code = 'predicted_value_tier')
        """,
    )
    assert scored == buyers == tagged > 0


def test_every_check_result_is_written_to_data_quality_results(
    location: Location, full_run: Any
) -> None:
    rows = query(
        location.warehouse_path,
        "select check_name, rule_name, severity, passed from ops.data_quality_results"
        f" where run_id = '{full_run.run_id}'",
    )
    frame = pd.DataFrame(rows, columns=["check_name", "rule_name", "severity", "passed"])
    assert {"gx_landing_suite", "gx_mart_suite", "dbt_source_freshness"} <= set(frame.check_name)
    assert (frame.rule_name == "dbt_test").sum() > 50
    assert set(frame.severity) <= {"error", "warn"}
    # The unknown event names the generator injects show up as a failed warning rule.
    unknown = frame[(frame.rule_name == "event_name_known")]
    assert list(unknown.passed) == [False] and list(unknown.severity) == ["warn"]
    # One freshness row per landing table with a freshness config (order_items has none): four
    # core tables and the five operations-loop tables; the sample ends months before today, so
    # at least one of them fails (without blocking).
    freshness = frame[frame.check_name == "dbt_source_freshness"]
    assert len(freshness) == 9
    assert not freshness.passed.all()


def test_run_output_sets_the_injected_rows_apart(
    location: Location, full_run: Any, capsys: pytest.CaptureFixture
) -> None:
    """make demo's closing lines: the landing warnings the generator's bad rows cause are listed
    as expected (matched to ground_truth/injected_defects.json), every other failed check as a
    failure. Runs before the tests below change the landing files."""
    from orchestration.materialize import print_failed_checks

    print_failed_checks(full_run)
    expected, _, failed = capsys.readouterr().out.partition("Failed checks")
    evaluations = [e for e in full_run.get_asset_check_evaluations() if not e.passed]
    landing = [
        e.asset_key.to_user_string() for e in evaluations if e.check_name == "gx_landing_suite"
    ]
    assert landing and expected.startswith(f"Expected: {len(landing)} landing check(s) warn")
    for key in landing:
        assert f"\n  {key}: " in expected and f"{key}:gx_landing_suite" not in failed
    others = [e for e in evaluations if e.check_name != "gx_landing_suite"]
    assert {e.check_name for e in others} >= {"dbt_source_freshness"}  # fails on purpose
    for evaluation in others:
        assert f"failed check {evaluation.asset_key.to_user_string()}:{evaluation.check_name}" in (
            failed
        )


def _ghost_rows(warehouse: Path, days: list[str]) -> None:
    with duckdb.connect(str(warehouse)) as connection:
        for day in days:
            connection.execute(
                f"insert into intermediate.{DAILY_MODEL} (user_id, activity_date, event_count)"
                " values ('ghost', cast(? as date), 99)",
                [day],
            ).fetchall()


def _ghost_days(warehouse: Path) -> set[str]:
    rows = query(
        warehouse, f"select activity_date from intermediate.{DAILY_MODEL} where user_id = 'ghost'"
    )
    return {row[0].isoformat() for row in rows}


def _real_rows(warehouse: Path) -> list[tuple]:
    return query(
        warehouse,
        f"select * from intermediate.{DAILY_MODEL} where user_id <> 'ghost' order by all",
    )


def test_day_partition_rerun_is_idempotent_and_rebuilds_its_lookback(
    location: Location, full_run: Any
) -> None:
    from dagster import AssetKey

    assert full_run.success
    before = _real_rows(location.warehouse_path)
    # Lookback 3 days: the run for 06-30 owns business days 06-27 .. 06-30.
    _ghost_rows(location.warehouse_path, ["2026-06-26", "2026-06-27", "2026-06-30"])
    for _ in range(2):
        result = execute(
            location,
            "userops_daily",
            partition_key=PARTITION,
            asset_selection=[AssetKey([DAILY_MODEL])],
        )
        assert result.success, step_errors(result)
        assert _ghost_days(location.warehouse_path) == {"2026-06-26"}
        assert _real_rows(location.warehouse_path) == before


def test_backfill_of_a_range_is_one_dbt_invocation(location: Location, full_run: Any) -> None:
    from dagster import AssetKey

    assert full_run.success
    before = _real_rows(location.warehouse_path)
    _ghost_rows(location.warehouse_path, ["2026-06-06", "2026-06-07", "2026-06-15", "2026-06-16"])
    result = execute(
        location,
        "userops_daily",
        asset_selection=[AssetKey([DAILY_MODEL])],
        tags={
            "dagster/asset_partition_range_start": "2026-06-10",
            "dagster/asset_partition_range_end": "2026-06-15",
        },
    )
    assert result.success, step_errors(result)
    steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_START"]
    assert steps.count("dbt_daily_models") == 1
    partitions = {
        event.materialization.partition
        for event in result.get_asset_materialization_events()
        if event.asset_key == AssetKey([DAILY_MODEL])
    }
    assert partitions == {f"2026-06-{day}" for day in range(10, 16)}
    # One window: 06-10 minus the 3-day lookback up to the end of 06-15.
    assert _ghost_days(location.warehouse_path) >= {"2026-06-06", "2026-06-16"}
    assert not _ghost_days(location.warehouse_path) & {"2026-06-07", "2026-06-15"}
    assert _real_rows(location.warehouse_path) == before


def test_bad_landing_file_blocks_the_marts_and_keeps_the_previous_ones(
    location: Location, full_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert full_run.success
    landing = tmp_path / "landing"
    shutil.copytree(location.landing_dir, landing)
    bad_file = landing / "events" / f"dt={PARTITION}" / "part-9.parquet"
    # A client release that stopped sending event_name: required column missing.
    pd.DataFrame(
        {
            "event_id": [f"bad{i}" for i in range(20)],
            "user_id": ["u00000001"] * 20,
            "event_time": [datetime(2026, 6, 30, 8, 0)] * 20,
        }
    ).to_parquet(bad_file)
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(location.warehouse_path, warehouse)
    users_before = query(warehouse, "select count(*) from marts.users")
    monkeypatch.setenv("USEROPS_LANDING_DIR", str(landing))
    monkeypatch.setenv("USEROPS_DUCKDB_PATH", str(warehouse))

    result = execute(location, "userops_daily", partition_key=PARTITION)

    events_check = next(
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key.to_user_string() == "landing/events"
        and evaluation.check_name == "gx_landing_suite"
    )
    assert not events_check.passed
    assert events_check.severity.value == "ERROR"
    assert f"events/dt={PARTITION}/part-9.parquet lacks event_name" in events_check.description
    # Nothing built from events runs: raw events are read by the day-partitioned step (incremental
    # by load day), which waits for the check, as does everything after it. Only staging of the
    # other landing tables (views over their own checked files) may be refreshed.
    materialized = result.get_asset_materialization_events()
    assert {event.step_key for event in materialized} <= {"dbt_upstream_models"}
    assert "base_landing__events" not in {event.asset_key.path[-1] for event in materialized}
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert "landing__events_gx_landing_suite" in started
    assert not started & {"dbt_daily_models", "dbt_models", "dbt_daily_models_after_python"}
    # The previous marts are untouched and readable.
    assert query(warehouse, "select count(*) from marts.users") == users_before
    logged = query(
        warehouse,
        "select message from ops.data_quality_results where run_id = ?"
        " and rule_name = 'required_columns_present' and not passed and severity = 'error'".replace(
            "?", f"'{result.run_id}'"
        ),
    )
    assert len(logged) == 1 and "part-9.parquet lacks event_name" in logged[0][0]


def test_quarantine_gate_fails_the_dagster_run(
    location: Location, full_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receipts of users nobody knows (no landing suite reads deliveries): staging quarantines
    them as unknown_user, above dq_max_out_of_range_share, and the dbt quarantine gate fails its
    asset check with severity error and the run."""
    assert full_run.success
    landing = tmp_path / "landing"
    shutil.copytree(location.landing_dir, landing)
    deliveries = pd.read_parquet(landing / "deliveries")
    # 20 % of the receipts come from one file of unknown users (the limit is 5 %).
    ghosts = deliveries.head(len(deliveries) // 4).copy()
    assert len(ghosts) / (len(deliveries) + len(ghosts)) > 0.15
    ghosts["message_id"] = "ghost-" + ghosts["message_id"].astype(str)
    ghosts["user_id"] = "ghost-" + ghosts["user_id"].astype(str)
    ghost_file = landing / "deliveries" / f"dt={PARTITION}" / "part-9.parquet"
    ghost_file.parent.mkdir(parents=True, exist_ok=True)
    ghosts.drop(columns=["dt"], errors="ignore").to_parquet(ghost_file, index=False)
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(location.warehouse_path, warehouse)
    monkeypatch.setenv("USEROPS_LANDING_DIR", str(landing))
    monkeypatch.setenv("USEROPS_DUCKDB_PATH", str(warehouse))

    result = execute(location, "userops_all", partition_key=PARTITION)

    assert not result.success
    gate = [
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == "landing_quarantine_share_within_dq_max_vars"
    ]
    assert len(gate) == 1 and not gate[0].passed and gate[0].severity.value == "ERROR"
    assert gate[0].asset_key.to_user_string().endswith("landing_row_accounting")
    [(unknown,)] = query(
        warehouse,
        "select count(*) from marts.quarantined_rows"
        " where table_name = 'deliveries' and quarantine_reason = 'unknown_user'",
    )
    assert unknown >= len(ghosts)
    [(message,)] = query(
        warehouse,
        "select failure_message from dbt_test__audit.landing_quarantine_share_within_dq_max_vars",
    )
    assert message.startswith("deliveries: ") and "unknown_user" in message
    assert "var dq_max_out_of_range_share" in message


def test_run_failure_sensor_logs_failed_steps(
    location: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context, job, op

    from orchestration.automation import run_failure_log_sensor
    from orchestration.resources import Warehouse

    @op
    def read_landing() -> None:
        raise ValueError("landing folder unreadable")

    @job
    def doomed() -> None:
        read_landing()

    instance = DagsterInstance.ephemeral()
    result = doomed.execute_in_process(instance=instance, raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("USEROPS_DUCKDB_PATH", str(warehouse))
    context = build_run_status_sensor_context(
        sensor_name="run_failure_log_sensor",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"warehouse": Warehouse()},
    ).for_run_failure()
    run_failure_log_sensor(context)
    rows = query(warehouse, "select run_id, job_name, step_key, error from ops.run_failures")
    assert len(rows) == 1
    run_id, job_name, step_key, error = rows[0]
    assert (run_id, job_name, step_key) == (result.run_id, "doomed", "read_landing")
    assert "landing folder unreadable" in error


def test_landing_sensor_requests_new_and_changed_days_only() -> None:
    from orchestration.automation import landing_run_requests

    partitions = {"2026-06-28", "2026-06-29", "2026-06-30"}
    listing = {"2026-06-28": "a", "2026-06-29": "b", "2026-06-30": "c", "2026-07-01": "d"}
    # First evaluation: only the newest complete day, not the whole history; 07-01 is today.
    requests, cursor = landing_run_requests(listing, {}, partitions)
    assert [r.partition_key for r in requests] == ["2026-06-30"]
    assert landing_run_requests(listing, cursor, partitions)[0] == []
    # A late file for 06-29 and a new day 07-01 once it is a partition.
    listing |= {"2026-06-29": "b2"}
    requests, cursor = landing_run_requests(listing, cursor, partitions | {"2026-07-01"})
    assert [r.partition_key for r in requests] == ["2026-06-29", "2026-07-01"]
    assert len({r.run_key for r in requests}) == 2


def test_day_listing_hashes_each_days_files(tmp_path: Path) -> None:
    from orchestration.automation import day_listing

    for table, day in [
        ("orders", "2026-06-29"),
        ("orders", "2026-06-30"),
        ("events", "2026-06-30"),
    ]:
        folder = tmp_path / table / f"dt={day}"
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"x")
    first = day_listing(tmp_path)
    assert set(first) == {"2026-06-29", "2026-06-30"}
    (tmp_path / "events" / "dt=2026-06-30" / "part-1.parquet").write_bytes(b"late")
    second = day_listing(tmp_path)
    assert second["2026-06-29"] == first["2026-06-29"]
    assert second["2026-06-30"] != first["2026-06-30"]


def test_split_nodes_orders_partitioned_and_python_fed_models() -> None:
    from orchestration.project import split_nodes

    def node(name: str, parents: list[str], materialized: str = "view") -> tuple[str, dict]:
        return f"model.p.{name}", {
            "name": name,
            "resource_type": "model",
            "config": {"materialized": materialized},
            "depends_on": {"nodes": parents},
        }

    manifest = {
        "nodes": dict(
            [
                node("stg", ["source.p.landing.events"]),
                node("stg_unused", ["source.p.landing.users"]),
                node("daily", ["model.p.stg"], "incremental"),
                node("mart", ["model.p.daily", "model.p.stg_unused"], "table"),
                node("targets", ["model.p.mart", "source.p.ml.scores"], "table"),
                node("scores_dated", ["source.p.ml.scores"]),
                node("tags", ["model.p.daily", "model.p.scores_dated"], "incremental"),
                node("profiles", ["model.p.tags"], "table"),
            ]
        ),
        "sources": {
            "source.p.landing.events": {"source_name": "landing", "name": "events"},
            "source.p.landing.users": {"source_name": "landing", "name": "users"},
            "source.p.ml.scores": {"source_name": "ml", "name": "scores"},
        },
    }
    groups = split_nodes(manifest)
    assert groups.upstream == ("stg",)
    assert groups.daily == ("daily",)
    assert groups.main == ("mart", "stg_unused")
    # An incremental model fed by a Python asset runs partitioned after it, with the view
    # between them; what reads it comes last.
    assert groups.daily_after_python == ("scores_dated", "tags")
    assert groups.after_python == ("profiles", "targets")


def test_partition_vars_cover_the_business_days_of_the_range() -> None:
    from orchestration.project import DAILY_PARTITIONS

    window = DAILY_PARTITIONS.time_window_for_partition_key("2026-06-30")
    assert window.start.date() == date(2026, 6, 30)
    assert window.end.date() == date(2026, 7, 1)
    assert str(window.start.tzinfo) in ("Asia/Shanghai", "CST")


def test_landing_observation_versions_follow_the_file_listing(
    location: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterInstance
    from dagster._core.definitions.observe import observe

    from orchestration.landing import landing_files_observation
    from orchestration.resources import Warehouse

    for day in ("2026-06-29", "2026-06-30"):
        folder = tmp_path / "orders" / f"dt={day}"
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"orders")
    monkeypatch.setenv("USEROPS_LANDING_DIR", str(tmp_path))

    def observed() -> dict[str, tuple[str, dict]]:
        result = observe(
            [landing_files_observation],
            resources={"warehouse": Warehouse()},
            instance=DagsterInstance.ephemeral(),
        )
        found = {}
        for event in result.all_events:
            if event.event_type_value == "ASSET_OBSERVATION":
                observation = event.event_specific_data.asset_observation
                found[observation.asset_key.to_user_string()] = (
                    observation.tags["dagster/data_version"],
                    {key: value.value for key, value in observation.metadata.items()},
                )
        return found

    first = observed()
    assert first["landing/orders"][1] == {
        "file_count": 2,
        "latest_partition": "2026-06-30",
        "bytes": 12,
    }
    assert first["landing/events"][1]["file_count"] == 0
    late = tmp_path / "orders" / "dt=2026-06-28" / "part-0.parquet"
    late.parent.mkdir()
    late.write_bytes(b"late")
    second = observed()
    assert second["landing/orders"][0] != first["landing/orders"][0]
    assert second["landing/orders"][1]["latest_partition"] == "2026-06-30"
    assert second["landing/events"][0] == first["landing/events"][0]


@pytest.mark.skipif(__import__("report_page").CHROMIUM is None, reason="chromium is not installed")
def test_report_asset_renders_every_chart_in_chromium(location: Location, full_run: Any) -> None:
    """The run's report asset: its metadata links the page, which opens in headless Chromium
    with no console error and draws every chart, the value cohorts' LTV curves and the paths Sankey
    included; screenshots go to test-artifacts/report/."""
    from report_page import artifacts_dir, check_report

    from userops.report import default_report_path

    (materialization,) = [
        event.materialization
        for event in full_run.get_asset_materialization_events()
        if event.asset_key.to_user_string() == "report"
    ]
    path = Path(materialization.metadata["path"].value)
    assert path == default_report_path(location.warehouse_path)
    assert materialization.metadata["open"].value == path.as_uri()
    assert "<script src=" not in path.read_text()
    page = check_report(path, artifacts_dir("report"))
    assert page.console_errors == []
    assert page.remote_requests == []  # no network needed: the page asked for nothing else
    expected = {
        "north_star",
        "retention",
        "layers",
        "migrations",
        "funnels",
        "ltv",
        "paths",
        "dau_waterfall",
        "churn",
        "audiences",
        "quality",
    }
    assert expected <= set(page.charts), page.empty_sections
    for key, drawn in page.charts.items():
        assert drawn["traces"] > 0 and drawn["points"] > 0 and drawn["marks"] > 0, (key, drawn)
    assert page.empty_sections == []
    assert len(page.screenshots) == len(page.sections)


def test_dbt_steps_share_one_invocation_per_block_and_never_parse(
    location: Location, full_run: Any
) -> None:
    """dbt runs in the run's process (orchestration/dbt_runner.py): the dbt steps before the
    Python assets share one `dbt build`, those after another (orchestration/dbt_blocks.py),
    no step parses the project (they reuse one parsed manifest), and a parse starts from the
    code location's partial parse and re-reads only the files that read the day window."""
    assert full_run.success, step_errors(full_run)
    runs = location.root / "target" / "runs"
    builds = {log.parent.name: log.read_text() for log in runs.glob("*/dbt.log")}
    assert {"dbt_before_python", "dbt_after_python", "source_freshness"} <= builds.keys()
    for name, text in builds.items():
        if not name.startswith("parse-"):
            assert "Partial parsing enabled" not in text, name
            assert "Unable to do partial parsing" not in text, name
    # The run's one parse, with its window: the freshness check shares it (it has no window of
    # its own to need a second parse).
    from orchestration.dbt_assets import scoped_environ, step_env
    from orchestration.dbt_runner import parse_folder, parse_key
    from orchestration.project import DAILY_PARTITIONS
    from orchestration.resources import Warehouse

    day = DAILY_PARTITIONS.time_window_for_partition_key(PARTITION)
    folders = {}
    for window in (None, (day.start.date(), day.end.date())):
        with scoped_environ(step_env(Warehouse(), window)):
            key = parse_key(location.root / "target" / "manifest.json", os.environ)
            folders[window is not None] = parse_folder(key)
    assert folders[False] not in builds
    text = builds[folders[True]]
    assert "Unable to do partial parsing" not in text
    changed = [int(n) for n in re.findall(r"(\d+) files changed", text)]
    assert changed and max(changed) < 40, changed
    # Every node of the block reported in the step that owns it: one materialization per
    # model, seed and snapshot, and its dbt steps each succeeded.
    steps = {e.step_key for e in full_run.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert {"dbt_upstream_models", "dbt_daily_models", "dbt_models"} <= steps
    before = json.loads((runs / "dbt_before_python" / "run_results.json").read_text())
    built = {
        result["unique_id"].rsplit(".", 1)[-1]
        for result in before["results"]
        if result["unique_id"].startswith(("model.", "seed.", "snapshot."))
    }
    materialized_by_step: dict[str, set[str]] = {}
    for event in full_run.get_asset_materialization_events():
        materialized_by_step.setdefault(event.step_key, set()).add(event.asset_key.to_user_string())
    block = set().union(
        *(
            materialized_by_step.get(step, set())
            for step in ("dbt_upstream_models", "dbt_daily_models", "dbt_models")
        )
    )
    assert built <= block
    # One invocation built the three steps' nodes (other tests' partial runs have their own).
    assert {"event_mapping", DAILY_MODEL, "daily_metrics"} <= built
    assert DAILY_MODEL in materialized_by_step["dbt_daily_models"]
    assert "daily_metrics" in materialized_by_step["dbt_models"]


def test_a_run_of_the_dbt_assets_alone_is_one_dbt_build(location: Location, full_run: Any) -> None:
    """Without the Python assets the second block reads (here: the dbt assets alone, as
    `make bench` runs them), nothing runs between the blocks: the five dbt steps share one
    build, as a plain `dbt build` would run them."""
    assert full_run.success, step_errors(full_run)  # ml.churn_scores exists for the tags
    from orchestration.dbt_assets import NODE_NAMES
    from userops.bench import dagster_day_run

    outcome = dagster_day_run(PARTITION)
    assert outcome["success"], outcome
    results = json.loads(
        (location.root / "target" / "runs" / "dbt_build" / "run_results.json").read_text()
    )
    built = {result["unique_id"].rsplit(".", 1)[-1] for result in results["results"]}
    for op in ("dbt_upstream_models", "dbt_models", "dbt_models_after_python"):
        models = set(NODE_NAMES[op])
        assert models & built, op
    assert set(NODE_NAMES["dbt_daily_models_after_python"]) <= built
    assert outcome["materializations"] > 0
    # Nothing else in the run could open the warehouse: each step returned once its own nodes
    # had finished, while dbt went on with the later steps' nodes.
    from dagster import DagsterEventType, DagsterInstance

    records = DagsterInstance.get().all_logs(outcome["run_id"])
    first_step_done = next(
        record.timestamp
        for record in records
        if record.dagster_event
        and record.dagster_event.event_type == DagsterEventType.STEP_SUCCESS
        and record.dagster_event.step_key == "dbt_upstream_models"
    )
    last_node_done = max(
        datetime.fromisoformat(timing["completed_at"].replace("Z", "+00:00")).timestamp()
        for result in results["results"]
        for timing in result["timing"]
        if timing["completed_at"]
    )
    assert first_step_done < last_node_done
    # Every step's dbt tests still reach ops.data_quality_results, written after dbt exited.
    rows = query(
        location.warehouse_path,
        "select count(*) from ops.data_quality_results"
        f" where run_id = '{outcome['run_id']}' and rule_name = 'dbt_test'",
    )
    assert rows[0][0] == outcome["checks"] > 100


def test_step_env_sets_the_window_and_unsets_a_stale_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from orchestration.dbt_assets import scoped_environ, step_env
    from orchestration.resources import Warehouse

    monkeypatch.setenv("USEROPS_WINDOW_START", "2020-01-01")
    monkeypatch.delenv("USEROPS_WINDOW_END", raising=False)
    monkeypatch.delenv("DBT_INDIRECT_SELECTION", raising=False)
    windowed = step_env(Warehouse(), (date(2026, 6, 30), date(2026, 7, 1)))
    assert windowed["USEROPS_WINDOW_START"] == "2026-06-30"
    assert windowed["USEROPS_WINDOW_END"] == "2026-07-01"
    with scoped_environ(step_env(Warehouse(), None)):
        assert "USEROPS_WINDOW_START" not in os.environ
        assert os.environ["DBT_INDIRECT_SELECTION"] == "buildable"
    assert os.environ["USEROPS_WINDOW_START"] == "2020-01-01"
    with scoped_environ(windowed):
        assert os.environ["USEROPS_WINDOW_END"] == "2026-07-01"
    assert "USEROPS_WINDOW_END" not in os.environ


def test_schedules_start_running_and_the_landing_sensor_stopped(location: Location) -> None:
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    repository = location.defs.get_repository_def()
    schedules = {schedule.name: schedule.default_status for schedule in repository.schedule_defs}
    assert schedules == {
        "userops_daily_schedule": DefaultScheduleStatus.RUNNING,
        "churn_retrain_weekly_schedule": DefaultScheduleStatus.RUNNING,
    }
    sensors = {sensor.name: sensor.default_status for sensor in repository.sensor_defs}
    assert sensors == {
        # It would build the scheduled day a second time (README, docs/orchestration.md).
        "landing_files_sensor": DefaultSensorStatus.STOPPED,
        "run_failure_log_sensor": DefaultSensorStatus.RUNNING,
        "alert_notification_sensor": DefaultSensorStatus.RUNNING,
    }


def test_loading_the_definitions_and_gx_prints_no_third_party_warnings(
    location: Location,
) -> None:
    """Every warning on (-W always): the pyspark pandas-3 FutureWarning (GX imports pyspark)
    and Dagster's BetaWarning for the APIs the location uses are filtered at their source."""
    import os
    import subprocess

    code = (
        "import orchestration.definitions\n"
        "import great_expectations as gx\n"
        "gx.get_context(mode='ephemeral')\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    for text in ("pandas >= 3", "BetaWarning", "SupersessionWarning", "FutureWarning"):
        assert text not in output, (text, output[-3000:])


def test_no_secret_from_the_environment_reaches_a_runs_logs(
    location: Location, full_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import AssetKey

    secrets = {
        "USEROPS_ALERT_WEBHOOK_URL": "https://hooks.example.com/services/T0/B0/hooktoken123",
        "USEROPS_PUSH_WEBHOOK_URL": "https://push.example.com/send?key=pushkey456",
        "USEROPS_DB_PASSWORD": "dbpassword789",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    result = execute(
        location,
        "userops_daily",
        partition_key=PARTITION,
        asset_selection=[AssetKey([DAILY_MODEL])],
    )
    assert result.success, step_errors(result)
    logged = "\n".join(repr(event) for event in result.all_events)
    for token in ("hooktoken123", "pushkey456", "dbpassword789"):
        assert token not in logged, token


# ----------------------------------------------------------------- no secrets in a run's logs
class TokenWebhook:
    """A receiver on 127.0.0.1 that answers 500 to the first request of every idempotency key
    and 200 to the next (with the `accepted` count delivery expects). It records each request's
    path, key and Authorization header, and prints nothing: the runs' captured output is
    searched for tokens, and http.server would print every path (tokens included)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                first = all(request["key"] != key for request in receiver.requests)
                receiver.requests.append(
                    {
                        "path": self.path,
                        "key": key,
                        "authorization": self.headers.get("Authorization"),
                        "status": 500 if first else 200,
                    }
                )
                answer = json.dumps({"accepted": len(body.get("messages", []))}).encode()
                self.send_response(500 if first else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def statuses(self, path_start: str) -> list[int]:
        return [r["status"] for r in self.requests if r["path"].startswith(path_start)]


def closed_port() -> int:
    import socket

    with socket.socket() as probe:  # bound, never listening: every connection is refused
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def secret_urls(port: int) -> dict[str, str]:
    """Token-bearing webhook URLs in every shape a provider uses: token in the path, in the
    query, and a user and password."""
    base = f"127.0.0.1:{port}"
    return {
        "USEROPS_PUSH_WEBHOOK_URL": f"http://{base}/v1/pushpathtoken111/send?key=pushquery222",
        "USEROPS_SMS_WEBHOOK_URL": (
            f"http://smsuser:smspassword333@{base}/sms/smspathtoken444?sig=smsquery555"
        ),
        "USEROPS_ALERT_WEBHOOK_URL": (
            f"http://bot:alertpassword666@{base}/services/T0/B0/alertpathtoken777?sign=alertq888"
        ),
    }


SECRET_TOKENS = (
    "pushpathtoken111",
    "pushquery222",
    "smspassword333",
    "smspathtoken444",
    "smsquery555",
    "alertpassword666",
    "alertpathtoken777",
    "alertq888",
)


def secrets_warehouse(path: Path) -> Path:
    """marts.delivery_plans of one day (test_delivery's: a push and an sms audience) and one
    alert of that day in marts.alerts: what audience_deliveries and the alert sensor read."""
    from test_delivery import DAY, plan_warehouse

    from userops.alerts import ALERT_COLUMNS

    plan_warehouse(path, treatment=3, holdout=1)
    types = {
        "alert_id": "varchar", "metric_date": "date", "comparison_date": "date",
        "is_latest_day": "boolean", "robust_score": "double", "metric_value": "double",
        "baseline_value": "double", "comparison_value": "double", "overall_change": "double",
        "week_over_week_change": "double", "top_contribution": "double",
        "top_part_of_change": "double", "segment_rank_in_dimension": "integer",
    }  # fmt: skip
    columns = ", ".join(f"{name} {types.get(name, 'varchar')}" for name in ALERT_COLUMNS)
    alert = {
        "alert_id": "alert-dau-overall", "metric_date": DAY, "metric_code": "dau",
        "metric_name_en": "Daily active users", "metric_name_zh": "日活", "dimension": "overall",
        "dimension_value": "overall", "severity": "warn", "direction": "down",
        "metric_value": 90.0, "baseline_value": 120.0, "robust_score": -4.2,
        "is_latest_day": True,
    }  # fmt: skip
    with duckdb.connect(str(path)) as connection:
        connection.execute(f"create table marts.alerts ({columns})")
        connection.execute(
            f"insert into marts.alerts values ({', '.join('?' for _ in ALERT_COLUMNS)})",
            [alert.get(name) for name in ALERT_COLUMNS],
        )
        connection.execute(
            "create table marts.alert_explanations (alert_id varchar, explanation_kind varchar,"
            " dimension varchar, component varchar, contribution double, part_of_change double,"
            " part_rank integer)"
        )
    return path


def fast_destinations(path: Path) -> Path:
    """destinations.yml with its url_env names kept, and retries short (2 attempts, 10 ms)."""
    import yaml

    from userops.delivery import DEFAULT_DESTINATIONS

    document = yaml.safe_load(DEFAULT_DESTINATIONS.read_text(encoding="utf-8"))
    for entry in document["destinations"]:
        entry.update({"max_attempts": 2, "backoff_seconds": 0.01, "timeout_seconds": 5})
    assert {e.get("url_env") for e in document["destinations"]} >= {
        "USEROPS_PUSH_WEBHOOK_URL",
        "USEROPS_SMS_WEBHOOK_URL",
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def evaluate_sensor(location: Location, instance: Any, name: str, result: Any, status: Any) -> str:
    """Evaluate a run status sensor of the code location on the `status` event (a
    DagsterEventType) of a run's `result`, as the daemon would: its
    context.log captured by the instance's compute log manager under a tick's log key. Returns
    the tick's error as Dagster would store it ('' when none)."""
    from dagster import SensorEvaluationContext, build_run_status_sensor_context
    from dagster._utils.error import serializable_error_info_from_exc_info

    from orchestration.resources import Warehouse

    sensor = location.defs.resolve_sensor_def(name)
    event = next(e for e in result.all_events if e.event_type == status)
    tick = SensorEvaluationContext(
        instance_ref=instance.get_ref(),
        instance=instance,
        sensor_name=name,
        log_key=["__repository__", name, f"tick-{event.event_type_value}"],
    )
    context = build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        context=tick,
        resources={"warehouse": Warehouse()},
    )
    try:
        with tick:
            sensor(context)
    except Exception:
        return serializable_error_info_from_exc_info(sys.exc_info()).to_string()
    return ""


def test_no_secret_reaches_a_runs_events_captured_logs_or_ops_tables(
    location: Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """No secrets in Dagster logs (issue 14): the steps that read the webhook URLs, the
    audience_deliveries asset and the alert and run-failure sensors, run on a DAGSTER_HOME
    instance with token-bearing URLs, (a) at a closed port (every attempt fails, the run fails)
    and (b) at a receiver that answers 500 then 200. Every stored event, every file Dagster
    wrote (run history, captured stdout/stderr, sensor logs), the sensors' errors and log
    records and every ops table are searched for the tokens; the receiver and ops.deliveries
    prove the full URLs were used."""
    import base64
    import logging

    from dagster import AssetKey, DagsterEventType, DagsterInstance
    from dagster._serdes import serialize_value

    caplog.set_level(logging.DEBUG)
    home = tmp_path / "dagster_home"
    write_dagster_yaml(home)
    warehouse = secrets_warehouse(tmp_path / "warehouse.duckdb")
    for name, value in {
        "DAGSTER_HOME": home,
        "USEROPS_DUCKDB_PATH": warehouse,
        "USEROPS_DESTINATIONS": fast_destinations(tmp_path / "destinations.yml"),
        "USEROPS_OUTBOX_DIR": tmp_path / "outbox",
    }.items():
        monkeypatch.setenv(name, str(value))
    job = location.defs.resolve_implicit_global_asset_job_def()
    receiver = TokenWebhook()
    sensor_errors: list[str] = []
    try:
        with DagsterInstance.get() as instance:

            def deliver_run() -> Any:
                return job.execute_in_process(
                    instance=instance,
                    asset_selection=[AssetKey(["audience_deliveries"])],
                    raise_on_error=False,
                )

            # (a) A closed port: every attempt is refused, the step and the run fail, the
            # failure sensor copies the step's error into ops.run_failures.
            for name, url in secret_urls(closed_port()).items():
                monkeypatch.setenv(name, url)
            down = deliver_run()
            assert not down.success
            (failure,) = [e for e in down.all_events if e.event_type_value == "STEP_FAILURE"]
            failure_text = failure.event_specific_data.error.to_string()
            assert (
                "push_provider batch 1" in failure_text and "sms_provider batch 1" in failure_text
            )
            assert "failed after 2 attempt(s): ConnectionRefusedError" in failure_text
            assert (
                evaluate_sensor(
                    location,
                    instance,
                    "run_failure_log_sensor",
                    down,
                    DagsterEventType.RUN_FAILURE,
                )
                == ""
            )
            assert query(warehouse, "select count(*) from ops.run_failures") == [(1,)]

            # (b) The receiver: 500, then 200, for each batch and the alert batch.
            for name, url in secret_urls(receiver.port).items():
                monkeypatch.setenv(name, url)
            up = deliver_run()
            assert up.success, step_errors(up)
            success = DagsterEventType.RUN_SUCCESS
            # The alert sensor after the successful run, first at the closed port (the tick
            # fails and nothing is recorded), then at the receiver.
            monkeypatch.setenv(
                "USEROPS_ALERT_WEBHOOK_URL", secret_urls(closed_port())["USEROPS_ALERT_WEBHOOK_URL"]
            )
            sensor_errors.append(
                evaluate_sensor(location, instance, "alert_notification_sensor", up, success)
            )
            assert "SinkError" in sensor_errors[0] and "failed after 4 attempts" in sensor_errors[0]
            assert query(
                warehouse,
                "select count(*) from information_schema.tables"
                " where table_schema = 'ops' and table_name = 'alerts'",
            ) == [(0,)]
            monkeypatch.setenv(
                "USEROPS_ALERT_WEBHOOK_URL", secret_urls(receiver.port)["USEROPS_ALERT_WEBHOOK_URL"]
            )
            assert (
                evaluate_sensor(location, instance, "alert_notification_sensor", up, success) == ""
            )
            runs = [down.run_id, up.run_id]
            stored = "\n".join(
                serialize_value(entry) for run_id in runs for entry in instance.all_logs(run_id)
            )
            in_memory = "\n".join(repr(event) for event in [*down.all_events, *up.all_events])
    finally:
        receiver.close()

    # The steps did send, to the full URLs: path and query as configured, the password as
    # Basic authorization; each batch met a 500 and was resent.
    assert receiver.statuses("/v1/pushpathtoken111/send?key=pushquery222") == [500, 200]
    assert receiver.statuses("/sms/smspathtoken444?sig=smsquery555") == [500, 200]
    assert receiver.statuses("/services/T0/B0/alertpathtoken777?sign=alertq888") == [500, 200]
    sms_auth = {r["authorization"] for r in receiver.requests if r["path"].startswith("/sms/")}
    assert sms_auth == {"Basic " + base64.b64encode(b"smsuser:smspassword333").decode()}
    deliveries = query(
        warehouse,
        "select destination_id, status, attempts from ops.deliveries"
        " where destination_kind = 'webhook' order by destination_id",
    )
    # Two refused attempts in (a), the 500 and the 200 in (b).
    assert deliveries == [("push_provider", "sent", 4), ("sms_provider", "sent", 4)]
    assert query(warehouse, "select count(*) from ops.alerts") == [(1,)]
    # What was searched is not empty: the step's report and the failure are in the events,
    # and the captured logs and the sensor's log line are on disk.
    assert "userops deliver 2026-06-30" in stored and "ConnectionRefusedError" in stored
    written = {path: path.read_bytes() for path in home.rglob("*") if path.is_file()}
    step_output = b"".join(c for p, c in written.items() if "compute_logs" in p.parts)
    assert b"FAILED: sms_provider batch 1" in step_output and b"sent 2 batches" in step_output
    sensor_output = b"".join(c for p, c in written.items() if "__repository__" in p.parts)
    assert b"logged 1 failure row(s)" in sensor_output and b"1 new alerts since" in sensor_output

    with duckdb.connect(str(warehouse), read_only=True) as connection:
        ops_tables = [
            table
            for (table,) in connection.execute(
                "select table_name from information_schema.tables where table_schema = 'ops'"
            ).fetchall()
        ]
        assert {"deliveries", "delivery_recipients", "run_failures", "alerts"} <= set(ops_tables)
        ops_rows = "\n".join(
            str(connection.execute(f"select * from ops.{table}").fetchall()) for table in ops_tables
        )
    searched = {
        "stored events": stored,
        "events in memory": in_memory,
        "sensor errors": "\n".join(sensor_errors),
        "log records": "\n".join(record.getMessage() for record in caplog.records),
        "ops tables": ops_rows,
        **{str(path): content.decode("utf-8", "replace") for path, content in written.items()},
    }
    leaks = {
        token: [where for where, text in searched.items() if token in text]
        for token in SECRET_TOKENS
    }
    assert {token: found for token, found in leaks.items() if found} == {}


def test_day_partitions_list_their_keys_once_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """DAILY_PARTITIONS keeps its key list until a new day's partition appears, and the list
    is Dagster's own."""
    from dagster import DailyPartitionsDefinition

    from orchestration.project import DAILY_PARTITIONS, DailyPartitions

    plain = DailyPartitionsDefinition(
        start_date=DAILY_PARTITIONS.start.strftime("%Y-%m-%d"),
        timezone=DAILY_PARTITIONS.timezone,
    )
    assert plain == DAILY_PARTITIONS
    listed: list[datetime | None] = []
    dagsters = DailyPartitionsDefinition.get_partition_keys

    def counted(self, current_time=None, dynamic_partitions_store=None):
        listed.append(current_time)
        return dagsters(self, current_time, dynamic_partitions_store)

    monkeypatch.setattr(DailyPartitionsDefinition, "get_partition_keys", counted)
    partitions = DailyPartitions(start_date="2026-01-01", timezone="Asia/Shanghai")
    # 02:00 in Shanghai: the last complete day is 2026-06-29.
    morning = datetime.fromisoformat("2026-06-30T02:00:00+08:00")
    keys = partitions.get_partition_keys(current_time=morning)
    assert keys[0] == "2026-01-01" and keys[-1] == "2026-06-29" and len(keys) == 180
    assert partitions.get_partition_keys(current_time=morning.replace(hour=23)) == keys
    assert len(listed) == 1
    next_day = partitions.get_partition_keys(current_time=morning.replace(month=7, day=1))
    assert next_day[-1] == "2026-06-30" and len(listed) == 2


def test_runs_log_info_and_above_to_the_console(location: Location) -> None:
    """Dagster's per-event DEBUG lines stay in the event log; a run's console gets INFO."""
    for name in ("userops_daily", "userops_all"):
        job = location.defs.resolve_job_def(name)
        config = job.get_run_config_for_partition_key(PARTITION)
        assert config["loggers"]["console"]["config"]["log_level"] == "INFO", name
