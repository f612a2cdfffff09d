"""Materialize the whole graph once, in process, for the latest complete business day.

`python -m orchestration.materialize [--full-refresh] [--partition YYYY-MM-DD]` (used by
`make demo`): the same job the daily schedule runs plus the churn training, against
USEROPS_LANDING_DIR / USEROPS_DUCKDB_PATH. It parses the dbt project first (the code
location's manifest, as `make dagster-manifest` does). Exits non-zero when the run fails.
"""

import argparse
import sys
from pathlib import Path

from dagster import DagsterInstance, ExecuteInProcessResult


def print_failed_checks(result: ExecuteInProcessResult) -> None:
    """Failed checks, with the warnings about the generator's deliberate bad rows set apart."""
    from userops.paths import default_landing_dir, default_warehouse_path
    from userops.quality.expected import FailedCheck, classify, format_report

    failed = [
        FailedCheck(
            e.asset_key.to_user_string(), e.check_name, e.severity.value, e.description or ""
        )
        for e in result.get_asset_check_evaluations()
        if not e.passed
    ]
    report = classify(
        failed,
        warehouse=default_warehouse_path(),
        landing_dir=default_landing_dir(),
        run_id=result.run_id,
    )
    # A check that passed without judging says so in its metadata (compared = false).
    notes = [
        f"{e.asset_key.to_user_string()}:{e.check_name} {e.description or ''}"
        for e in result.get_asset_check_evaluations()
        if e.passed and getattr(e.metadata.get("compared"), "value", None) is False
    ]
    if text := format_report(report, notes):
        print(text)


def parse_project(partition: str) -> None:
    """The code location's manifest, parsed here with the environment the run's dbt steps will
    have (their window included): the code location loads it and the run reuses the parse."""
    from orchestration import dbt_runner
    from orchestration.dbt_assets import scoped_environ, step_env
    from orchestration.project import DAILY_PARTITIONS, DBT_PROJECT
    from orchestration.resources import Warehouse

    day = DAILY_PARTITIONS.time_window_for_partition_key(partition)
    with scoped_environ(step_env(Warehouse(), (day.start.date(), day.end.date()))):
        dbt_runner.parse_code_location(Path(DBT_PROJECT.manifest_path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partition", help="business day to build (default: the latest)")
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild incremental models from all history (new or regenerated data)",
    )
    args = parser.parse_args(argv)
    from orchestration.project import DAILY_PARTITIONS

    partition = args.partition or DAILY_PARTITIONS.get_last_partition_key()
    parse_project(partition)
    # Third-party warnings that are not the user's business are filtered where they arise
    # (orchestration/__init__.py, userops/__init__.py); anything else still shows.
    from orchestration.definitions import defs
    from orchestration.run_config import RUN_LOGGING

    run_config = {}
    if args.full_refresh:
        run_config = {
            "ops": {
                op: {"config": {"full_refresh": True}}
                for op in (
                    "dbt_upstream_models",
                    "dbt_daily_models",
                    "dbt_models",
                    "dbt_daily_models_after_python",
                    "dbt_models_after_python",
                )
            }
        }
    job = defs.resolve_job_def("userops_all")
    # Keep only ops this project has (a group with no models has no op).
    present = {node.name for node in job.graph.nodes}
    ops = {op: config for op, config in run_config.get("ops", {}).items() if op in present}
    # The jobs' own logging config (INFO, not Dagster's per-event DEBUG lines: dbt's own
    # progress is printed anyway): run_config given here replaces the job's default.
    run_config = dict(RUN_LOGGING)
    if ops:
        run_config["ops"] = ops
    result = job.execute_in_process(
        partition_key=partition,
        run_config=run_config,
        instance=DagsterInstance.get(),
        raise_on_error=False,
    )
    materialized = len(result.get_asset_materialization_events())
    print(f"Dagster run {result.run_id} for {partition}: {materialized} materializations")
    print_failed_checks(result)
    if not result.success:
        print("The run failed; see the log above or `make dagster`.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
