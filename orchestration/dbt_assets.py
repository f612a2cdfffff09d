"""Every dbt model, seed and snapshot as a Dagster asset, dbt tests as asset checks.

Five multi-assets (see orchestration.project.split_nodes): the two day-partitioned ones build the
incremental models for a partition range in ONE dbt invocation each (BackfillPolicy.single_run),
with the range's window in USEROPS_WINDOW_START / USEROPS_WINDOW_END; the others build all
history. Each dbt test result is also appended to ops.data_quality_results.

A step's fixed cost is kept small: no `--vars` (they would make dbt re-parse the whole project),
the same environment as the code location's `dbt parse` (userops.dbt.dbt_env; the profile's
paths are part of dbt's partial-parse key), and that parse's partial_parse.msgpack as every
step's starting point, so a step only re-parses the few files that read the window.
"""

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
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
from userops.dbt import WINDOW_END_ENV, WINDOW_START_ENV, dbt_env, window_env
from userops.quality.results import utc_now, write_quality_results


class DbtBuildConfig(Config):
    """Run config of a dbt step: full_refresh rebuilds incremental models from all history."""

    full_refresh: bool = False


def partition_window(context: AssetExecutionContext) -> tuple[date, date]:
    """A partitioned run's business days [start, end) (the end exclusive)."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def step_env(warehouse: Warehouse, window: tuple[date, date] | None) -> dict[str, str | None]:
    """Environment of a dbt step: what `dbt parse` of the code location had (paths, telemetry),
    the window's variables or, without a window, none of them (None: unset)."""
    full = dbt_env(warehouse.landing_path(), warehouse.warehouse_path())
    env: dict[str, str | None] = {
        name: value for name, value in full.items() if os.environ.get(name) != value
    }
    env[WINDOW_START_ENV] = env[WINDOW_END_ENV] = None
    env.update(window_env(*window) if window else {})
    # Tests with parents in two multi-assets (e.g. a relationships test from a mart to a seed)
    # must run in the step that builds their last parent: dbt's "buildable" indirect selection.
    # dagster-dbt reads this variable as the user's default and still overrides it when only
    # some checks are selected.
    env["DBT_INDIRECT_SELECTION"] = os.environ.get("DBT_INDIRECT_SELECTION") or "buildable"
    return env


@contextlib.contextmanager
def scoped_environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    """os.environ with `changes` (None: unset) inside the block, as it was after. dagster-dbt
    copies os.environ when it starts dbt, inside dbt.cli(); steps run one at a time (the
    in-process executor)."""
    previous = {name: os.environ.get(name) for name in changes}

    def apply(values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    apply(changes)
    try:
        yield
    finally:
        apply(previous)


def partial_parse_args(manifest: Path) -> list[str]:
    """Start from the code location's parse (next to its manifest) when there is one."""
    saved = manifest.parent / "partial_parse.msgpack"
    return ["--partial-parse-file-path", str(saved)] if saved.exists() else []


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
    window: tuple[date, date] | None = None,
) -> Iterator[Any]:
    # Unit tests check the SQL on fixed inputs: CI runs them (make test); scheduled runs of the
    # data skip them, as dbt Labs advises for production (and save ~0.5 s per unit test).
    args = ["build", "--exclude-resource-type", "unit_test", *partial_parse_args(manifest_path())]
    if config.full_refresh:
        args.append("--full-refresh")
    # A folder per step: its artifacts (run_results.json, logs) are that step's.
    target = manifest_path().parent / "runs" / context.op_execution_context.op.name
    with scoped_environ(step_env(warehouse, window)):
        invocation = dbt.cli(args, context=context, target_path=target, raise_on_error=False)
    checks = []
    for event in invocation.stream():
        if isinstance(event, AssetCheckResult | AssetCheckEvaluation):
            checks.append(event)
        yield event
    # Written after dbt exits: DuckDB allows one writing process.
    write_quality_results(warehouse.warehouse_path(), check_rows(context.run.run_id, checks))
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
            yield from run_dbt_build(context, dbt, warehouse, config, partition_window(context))

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
