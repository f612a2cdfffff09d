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
from dagster_dbt import dbt_assets
from dagster_dbt.asset_utils import (
    DAGSTER_DBT_EXCLUDE_METADATA_KEY,
    DAGSTER_DBT_SELECT_METADATA_KEY,
    DAGSTER_DBT_SELECTOR_METADATA_KEY,
    get_subset_selection_for_context,
)
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from orchestration import dbt_blocks, dbt_runner
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


def dagster_events(
    context: AssetExecutionContext, raw_events: Iterator[dict[str, Any]]
) -> Iterator[Any]:
    """dbt's structured events as the Dagster events dagster-dbt makes of them (outputs for
    models, seeds and snapshots; asset check results for tests)."""
    manifest = load_manifest()
    unknown: list[str] = []
    for raw_event in raw_events:
        unique_id = (raw_event.get("data", {}).get("node_info") or {}).get("unique_id")
        if unique_id and unique_id not in manifest["nodes"] and unique_id not in unknown:
            # dbt parses the project as it is now; the code location loaded its manifest
            # earlier. A node added since then runs in dbt but has no asset or check here.
            unknown.append(unique_id)
            context.log.warning(
                f"dbt ran {unique_id}, which the code location's manifest does not have: it "
                "was added after the code location loaded. Reload the code location "
                "(`make dagster-manifest`, then Reload in the UI) to see it in Dagster."
            )
        if unique_id in unknown:
            continue
        event = DbtCoreCliEventMessage(raw_event=raw_event, event_history_metadata={})
        yield from event.to_default_asset_events(
            manifest=manifest,
            dagster_dbt_translator=TRANSLATOR,
            context=context,
            project=DBT_PROJECT,
        )


def selection_args(context: AssetExecutionContext) -> tuple[list[str], str | None]:
    """The step's dbt selection, as dagster-dbt computes it for a (possibly subset) step: the
    multi-asset's selection, or the selected assets and checks by name; and the indirect
    selection that goes with it."""
    return get_subset_selection_for_context(
        context=context,
        manifest=load_manifest(),
        select=context.op.tags.get(DAGSTER_DBT_SELECT_METADATA_KEY),
        exclude=context.op.tags.get(DAGSTER_DBT_EXCLUDE_METADATA_KEY),
        selector=context.op.tags.get(DAGSTER_DBT_SELECTOR_METADATA_KEY),
        dagster_dbt_translator=TRANSLATOR,
        current_dbt_indirect_selection_env=os.environ.get("DBT_INDIRECT_SELECTION"),
    )


# The dbt multi-assets by op name and the node names each one builds (build_dbt_assets).
DEFINITIONS: dict[str, AssetsDefinition] = {}
NODE_NAMES: dict[str, tuple[str, ...]] = {}


def run_dbt_build(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    config: DbtBuildConfig,
    window: tuple[date, date] | None = None,
) -> Iterator[Any]:
    op = context.op_execution_context.op.name
    block = dbt_blocks.block_of(op, context, DEFINITIONS)
    if block and dbt_blocks.is_whole_block(context, block, DEFINITIONS):
        yield from run_in_block(context, warehouse, block)
    else:
        yield from run_own_build(context, warehouse, config, window)


def run_in_block(context: AssetExecutionContext, warehouse: Warehouse, block: str) -> Iterator[Any]:
    """This step's part of its block's shared dbt build (orchestration/dbt_blocks.py)."""
    op = context.op_execution_context.op.name
    ops = dbt_blocks.present_ops(context, block)
    key = (context.run.run_id, block)
    is_last = op == ops[-1]
    args = ["build", "--exclude-resource-type", "unit_test"]
    if dbt_blocks.wants_full_refresh(context, ops):
        args.append("--full-refresh")
    args += ["--select", " ".join(name for name in ops for name in NODE_NAMES.get(name, ()))]
    target = manifest_path().parent / "runs" / block
    checks = []
    # Only when nothing but the block's steps can run before dbt exits (dbt_blocks docstring).
    early = not is_last and dbt_blocks.runs_only_the_block(context, block)
    with scoped_environ(step_env(warehouse, dbt_blocks.run_window(context))):
        build = dbt_blocks.start_block(
            key, ops, args, target, manifest_path(), NODE_NAMES, DEFINITIONS, load_manifest()
        )
        try:
            for event in dagster_events(context, build.events_for(op, early)):
                if isinstance(event, AssetCheckResult | AssetCheckEvaluation):
                    checks.append(event)
                yield event
        except BaseException:
            # dbt must not go on writing the warehouse in the background (or hold it open
            # while the failure is reported, or die with the process at exit).
            build.drain()
            dbt_blocks.finish_block(key)
            raise
        failed = build.failed.get(op, [])
        missing = build.expected(op) - build.finished
        if failed or missing:
            build.drain()  # the run stops here: dbt finishes and releases the warehouse first
    build.pending_rows += check_rows(context.run.run_id, checks)
    if build.exhausted:
        # dbt has exited and closed the warehouse: this step's rows and those of the block's
        # steps that returned while it ran.
        write_quality_results(warehouse.warehouse_path(), build.pending_rows)
        build.pending_rows = []
    if is_last or failed or missing:
        dbt_blocks.finish_block(key)
    if failed or missing:
        names = sorted(unique_id.rsplit(".", 1)[-1] for unique_id in (failed or missing))
        reason = "failed" if failed else "were not run"
        raise Failure(
            description=f"{build.invocation.failure_description()}\n"
            f"this step's nodes that {reason}: {', '.join(names[:20])}",
            metadata={"dbt_target": str(target)},
        )


def run_own_build(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    config: DbtBuildConfig,
    window: tuple[date, date] | None = None,
) -> Iterator[Any]:
    """A dbt invocation of this step's (selected) nodes alone."""
    # Unit tests check the SQL on fixed inputs: CI runs them (make test); scheduled runs of the
    # data skip them, as dbt Labs advises for production (and save ~0.5 s per unit test).
    args = ["build", "--exclude-resource-type", "unit_test"]
    if config.full_refresh:
        args.append("--full-refresh")
    # A folder per step: its artifacts (run_results.json, dbt.log) are that step's.
    target = manifest_path().parent / "runs" / context.op_execution_context.op.name
    env = step_env(warehouse, window)
    selection, indirect_selection = selection_args(context)
    if indirect_selection:
        env["DBT_INDIRECT_SELECTION"] = indirect_selection
    checks = []
    with scoped_environ(env):
        invocation, raw_events = dbt_runner.invoke([*args, *selection], target, manifest_path())
        try:
            for event in dagster_events(context, raw_events):
                if isinstance(event, AssetCheckResult | AssetCheckEvaluation):
                    checks.append(event)
                yield event
        except BaseException:
            for _ in raw_events:  # let dbt finish and release the warehouse first
                pass
            raise
    # After dbt has closed the warehouse (its last connection closes the file).
    write_quality_results(warehouse.warehouse_path(), check_rows(context.run.run_id, checks))
    if not invocation.success:
        raise Failure(
            description=invocation.failure_description(),
            metadata={"dbt_target": str(target)},
        )


def _select(names: Sequence[str]) -> str:
    return " ".join(names)


def register(name: str, names: Sequence[str], definition: AssetsDefinition) -> None:
    DEFINITIONS[name] = definition
    NODE_NAMES[name] = tuple(names)


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
            warehouse: Warehouse,
            config: DbtBuildConfig,
        ) -> Iterator[Any]:
            yield from run_dbt_build(context, warehouse, config)

        register(name, names, _assets)
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
            warehouse: Warehouse,
            config: DbtBuildConfig,
        ) -> Iterator[Any]:
            yield from run_dbt_build(context, warehouse, config, partition_window(context))

        register(name, names, _assets)
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
