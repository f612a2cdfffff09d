"""Every dbt model, seed and snapshot as a Dagster asset, dbt tests as asset checks.

Five multi-assets (see orchestration.project.split_nodes): the two day-partitioned ones build the
incremental models for a partition range in ONE dbt invocation each (BackfillPolicy.single_run),
with vars start_date / end_date from the range; the others build all history. Each dbt test
result is also appended to ops.data_quality_results.
"""

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    Failure,
)
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.project import (
    DAILY_PARTITIONS,
    DBT_PROJECT,
    TRANSLATOR,
    load_manifest,
    manifest_path,
    split_nodes,
)
from orchestration.resources import Warehouse
from userops.quality.results import utc_now, write_quality_results


class DbtBuildConfig(Config):
    """Run config of a dbt step: full_refresh rebuilds incremental models from all history."""

    full_refresh: bool = False


def partition_vars(context: AssetExecutionContext) -> dict[str, str]:
    """dbt vars of a partitioned run: the business days [start_date, end_date) of its range."""
    window = context.partition_time_window
    return {
        "start_date": window.start.date().isoformat(),
        "end_date": window.end.date().isoformat(),
    }


def check_rows(run_id: str, events: Sequence[Any]) -> list[dict[str, Any]]:
    """ops.data_quality_results rows for the dbt tests Dagster reported as asset checks."""
    checked_at = utc_now()
    rows = []
    for event in events:
        metadata = {key: getattr(value, "value", value) for key, value in event.metadata.items()}
        failures = metadata.get("dagster_dbt/failed_row_count")
        rows.append(
            {
                "run_id": run_id,
                "checked_at": checked_at,
                "asset_key": event.asset_key.to_user_string(),
                "check_name": event.check_name,
                "rule_name": "dbt_test",
                "severity": "warn" if event.severity.value == "WARN" else "error",
                "passed": bool(event.passed),
                "observed_value": float(failures) if isinstance(failures, int | float) else None,
                "message": str(metadata.get("message") or metadata.get("status") or ""),
                "details": json.dumps(metadata, default=str, sort_keys=True),
            }
        )
    return rows


def run_dbt_build(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: Warehouse,
    config: DbtBuildConfig,
    dbt_vars: dict[str, str] | None = None,
) -> Iterator[Any]:
    # Unit tests check the SQL on fixed inputs: CI runs them (make test); scheduled runs of the
    # data skip them, as dbt Labs advises for production (and save ~0.5 s per unit test).
    args = ["build", "--exclude-resource-type", "unit_test"]
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    if config.full_refresh:
        args.append("--full-refresh")
    # A stable folder per step keeps dbt's partial parse between runs (each invocation would
    # otherwise re-parse the project from scratch).
    target = manifest_path().parent / "runs" / context.op_execution_context.op.name
    # Tests with parents in two multi-assets (e.g. a relationships test from a mart to a seed)
    # must run in the step that builds their last parent: dbt's "buildable" indirect selection.
    # dagster-dbt reads this variable as the user's default and still overrides it when only
    # some checks are selected.
    # Set only around the call (which starts dbt), so the process environment stays as it was.
    previous = os.environ.get("DBT_INDIRECT_SELECTION")
    os.environ["DBT_INDIRECT_SELECTION"] = previous or "buildable"
    try:
        invocation = dbt.cli(args, context=context, target_path=target, raise_on_error=False)
    finally:
        if previous is None:
            del os.environ["DBT_INDIRECT_SELECTION"]
    checks = []
    for event in invocation.stream():
        if isinstance(event, AssetCheckResult | AssetCheckEvaluation):
            checks.append(event)
        yield event
    # Written after dbt exits: DuckDB allows one writing process.
    write_quality_results(warehouse.warehouse_path(), check_rows(context.run_id, checks))
    if not invocation.is_successful():
        raise Failure(
            description=f"dbt {' '.join(args)} failed; see the step's dbt log",
            metadata={"dbt_target": str(target)},
        )


def _select(names: Sequence[str]) -> str:
    return " ".join(names)


def build_dbt_assets() -> list[AssetsDefinition]:
    groups = split_nodes(load_manifest())
    manifest = manifest_path()
    definitions: list[AssetsDefinition] = []

    def unpartitioned(name: str, names: Sequence[str]) -> AssetsDefinition:
        @dbt_assets(
            manifest=manifest,
            project=DBT_PROJECT,
            select=_select(names),
            name=name,
            dagster_dbt_translator=TRANSLATOR,
        )
        def _assets(
            context: AssetExecutionContext,
            dbt: DbtCliResource,
            warehouse: Warehouse,
            config: DbtBuildConfig,
        ) -> Iterator[Any]:
            yield from run_dbt_build(context, dbt, warehouse, config)

        return _assets

    if groups.upstream:
        definitions.append(unpartitioned("dbt_upstream_models", groups.upstream))

    def partitioned(name: str, names: Sequence[str]) -> AssetsDefinition:
        @dbt_assets(
            manifest=manifest,
            project=DBT_PROJECT,
            select=_select(names),
            name=name,
            partitions_def=DAILY_PARTITIONS,
            backfill_policy=BackfillPolicy.single_run(),
            dagster_dbt_translator=TRANSLATOR,
        )
        def _assets(
            context: AssetExecutionContext,
            dbt: DbtCliResource,
            warehouse: Warehouse,
            config: DbtBuildConfig,
        ) -> Iterator[Any]:
            yield from run_dbt_build(context, dbt, warehouse, config, partition_vars(context))

        return _assets

    if groups.daily:
        definitions.append(partitioned("dbt_daily_models", groups.daily))
    if groups.main:
        definitions.append(unpartitioned("dbt_models", groups.main))
    if groups.daily_after_python:
        definitions.append(partitioned("dbt_daily_models_after_python", groups.daily_after_python))
    if groups.after_python:
        definitions.append(unpartitioned("dbt_models_after_python", groups.after_python))
    return definitions
