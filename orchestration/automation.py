"""Jobs, schedules and sensors.

- `userops_daily`: every asset except the weekly churn training, for one business day
  (partition) or a range (a backfill: one run, one dbt invocation). Scheduled daily at 03:00 in
  the business time zone for the previous day (`userops_daily_schedule`) and started by
  `landing_files_sensor` when a new day's landing files appear.
- `userops_all`: the whole graph (tests, `make demo`).
- `churn_retrain` (weekly, Monday 05:00): the churn model assets from orchestration/ml.py and
  what depends on them; only defined when that module provides assets.
- `run_failure_log_sensor`: every failed run (its failed steps and errors) into ops.run_failures.
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    build_schedule_from_partitioned_job,
    define_asset_job,
    run_failure_sensor,
    schedule,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from orchestration.landing import DAY_FOLDER, LANDING_TABLES, OPS_LANDING_TABLES, landing_files
from orchestration.project import BUSINESS_TIMEZONE, DAILY_PARTITIONS, landing_key
from orchestration.resources import Warehouse
from orchestration.run_config import RUN_LOGGING
from userops.quality.results import utc_now, write_run_failures

TRAINING_ASSET_NAMES = ("churn_model",)
LANDING_CHECKS = AssetSelection.checks_for_assets(
    *[landing_key(t) for t in (*LANDING_TABLES, *OPS_LANDING_TABLES)]
)


def build_jobs(ml_keys: Sequence[AssetKey]) -> dict[str, UnresolvedAssetJobDefinition]:
    training = [key for key in ml_keys if key.path[-1] in TRAINING_ASSET_NAMES]
    daily_selection = AssetSelection.all() | LANDING_CHECKS
    if training:
        daily_selection = daily_selection - AssetSelection.assets(*training)
    jobs = {
        "userops_daily": define_asset_job(
            "userops_daily",
            selection=daily_selection,
            partitions_def=DAILY_PARTITIONS,
            config=RUN_LOGGING,
            description="Build every asset for a business day (or a range, in one run).",
        ),
        "userops_all": define_asset_job(
            "userops_all",
            selection=AssetSelection.all() | LANDING_CHECKS,
            partitions_def=DAILY_PARTITIONS,
            config=RUN_LOGGING,
            description="The whole graph: landing checks, every dbt model and test, Python assets.",
        ),
    }
    if ml_keys:
        jobs["churn_retrain"] = define_asset_job(
            "churn_retrain",
            selection=AssetSelection.assets(*(training or ml_keys)).downstream(),
            partitions_def=DAILY_PARTITIONS,
            config=RUN_LOGGING,
            description="Retrain and evaluate the churn model, rescore, rebuild what reads scores.",
        )
    return jobs


def build_schedules(jobs: dict[str, UnresolvedAssetJobDefinition]) -> list[Any]:
    """Both schedules start RUNNING (as dagster-open-platform's do): a code location that is
    deployed should build each day without someone switching it on in the UI. They need the
    daemon, which `dagster dev` (make dagster) starts."""
    schedules: list[Any] = [
        build_schedule_from_partitioned_job(
            jobs["userops_daily"],
            name="userops_daily_schedule",
            hour_of_day=3,
            minute_of_hour=0,
            default_status=DefaultScheduleStatus.RUNNING,
        )
    ]
    if "churn_retrain" in jobs:
        # Weekly on daily partitions: build_schedule_from_partitioned_job only runs every
        # partition, so the schedule picks the latest complete business day itself.
        @schedule(
            name="churn_retrain_weekly_schedule",
            job=jobs["churn_retrain"],
            cron_schedule="0 5 * * 1",
            execution_timezone=BUSINESS_TIMEZONE,
            description="Mondays 05:00 (business time zone): retrain the churn model.",
            default_status=DefaultScheduleStatus.RUNNING,
        )
        def churn_retrain_weekly_schedule(context: ScheduleEvaluationContext) -> RunRequest:
            day = DAILY_PARTITIONS.get_last_partition_key(
                current_time=context.scheduled_execution_time
            )
            return RunRequest(partition_key=day)

        schedules.append(churn_retrain_weekly_schedule)
    return schedules


def day_listing(landing_dir: Path) -> dict[str, str]:
    """Business day (dt= folder) -> hash of that day's landing files across tables."""
    by_day: dict[str, list[str]] = {}
    for table in LANDING_TABLES:
        for file in landing_files(landing_dir, table):
            match = DAY_FOLDER.match(file.parent.name)
            if match:
                stat = file.stat()
                by_day.setdefault(match.group(1), []).append(
                    f"{table}/{file.name}|{stat.st_size}|{stat.st_mtime_ns}"
                )
    return {
        day: hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]
        for day, entries in by_day.items()
    }


def landing_run_requests(
    listing: dict[str, str], cursor: dict[str, str], existing_partitions: set[str]
) -> tuple[list[RunRequest], dict[str, str]]:
    """Runs for days whose files appeared or changed since the cursor. The first evaluation
    (empty cursor) only looks at the newest day, so history is not replayed day by day (a
    backfill does that in one run). Days that are not a partition yet (today) wait."""
    candidates = sorted(day for day in listing if day in existing_partitions)
    requests = []
    seen = dict(cursor)
    if not cursor and candidates:
        # History counts as seen; only the newest day runs.
        seen = {day: listing[day] for day in candidates[:-1]}
    for day in candidates:
        if seen.get(day) != listing[day]:
            requests.append(
                RunRequest(
                    run_key=f"{day}:{listing[day]}",
                    partition_key=day,
                    tags={"userops/trigger": "landing_files"},
                )
            )
            seen[day] = listing[day]
    # Keep the cursor small: days older than the newest 60 are settled.
    kept = dict(sorted(seen.items())[-60:])
    return requests, kept


def build_landing_sensor(job: UnresolvedAssetJobDefinition) -> Any:
    # STOPPED by default: with userops_daily_schedule running, both would build the same day
    # (the schedule at 03:00, the sensor when the day's files land), and on the first start it
    # would run the newest day of whatever sits in the landing folder (e.g. the demo's data,
    # already built). Switch it on instead of the schedule where files land at irregular times.
    @sensor(
        name="landing_files_sensor",
        job=job,
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.STOPPED,
        description="Starts userops_daily for a business day when its landing files "
        "(<table>/dt=YYYY-MM-DD/) appear or change.",
    )
    def landing_files_sensor(context: SensorEvaluationContext, warehouse: Warehouse) -> Any:
        listing = day_listing(warehouse.landing_path())
        if not listing:
            return SkipReason(f"no landing files under {warehouse.landing_path()}")
        partitions = set(DAILY_PARTITIONS.get_partition_keys(current_time=datetime.now()))
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests, new_cursor = landing_run_requests(listing, cursor, partitions)
        context.update_cursor(json.dumps(new_cursor))
        return requests or SkipReason("no new or changed landing day")

    return landing_files_sensor


def error_text(error: Any) -> str:
    """A step error with its causes (the user's exception is usually the cause of Dagster's)."""
    parts = []
    while error is not None:
        parts.append(error.message.strip())
        error = error.cause
    return " | caused by: ".join(parts)


def failure_rows(context: RunFailureSensorContext) -> list[dict[str, Any]]:
    """One row per failed step (or one for the run when no step failed, e.g. a launch error)."""
    run = context.dagster_run
    failed_at = utc_now()
    rows = []
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        rows.append(
            {
                "run_id": run.run_id,
                "job_name": run.job_name,
                "step_key": event.step_key,
                "error": (error_text(error) if error else event.message or "")[:4000],
                "failed_at": failed_at,
                "logged_at": utc_now(),
            }
        )
    if not rows:
        rows.append(
            {
                "run_id": run.run_id,
                "job_name": run.job_name,
                "step_key": None,
                "error": (context.failure_event.message or "run failed").strip()[:4000],
                "failed_at": failed_at,
                "logged_at": utc_now(),
            }
        )
    return rows


@run_failure_sensor(
    name="run_failure_log_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    description="Appends every failed run's failed steps and errors to ops.run_failures.",
)
def run_failure_log_sensor(context: RunFailureSensorContext, warehouse: Warehouse) -> None:
    written = write_run_failures(warehouse.warehouse_path(), failure_rows(context))
    context.log.info(f"logged {written} failure row(s) of run {context.dagster_run.run_id}")
