"""One dbt invocation for the consecutive dbt steps of a run.

The dbt nodes are five multi-assets (orchestration.project.split_nodes) because a multi-asset
has one partitions definition and the Python assets sit between the dbt models they read and
the ones that read them. Dagster runs them as five steps; five dbt invocations cost five times
dbt's per-command work (project and profile, the graph, the adapter's cache) and lose the
overlap dbt finds between nodes of different groups (measured at 1M events: the steps' dbt time
added up to 33.2 s against 26.7 s for the same nodes in one plain `dbt build`).

So the steps of one block (the multi-assets before the Python assets, and those after; all five
when the run has none of the Python assets the second block reads) share one in-process
`dbt build` of all their nodes, run by the block's first step to its end: that step
reports its own nodes as they finish (outputs and asset checks, as dagster-dbt would) and keeps
the other steps' events, which those steps report when they run. The first step returns only
when dbt has exited: other steps that depend on its assets (quality suites, Python assets) may
run right after it, and they must find the warehouse closed and the block built. The whole
block runs with the run's day window, as a plain day run does: only the day-partitioned models
read it (docs/orchestration.md).

A run whose steps are the block's dbt steps and nothing else (the dbt assets alone, as `make
bench` runs a day) has no step that could open the warehouse while dbt writes it: there each
step returns as soon as its own nodes have finished, and the next step reports its nodes while
dbt builds them. Otherwise the later steps' events wait for dbt's exit and were reported after
it (at 1M events: ~1,200 events, 7.4 s after dbt had finished).

Only a whole block shares: when a run selects part of a block (a subset of assets or checks, or
a re-execution of some steps), every step runs its own invocation (dbt_assets.run_dbt_build).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetsDefinition
from dagster._core.definitions.dependency import NodeHandle
from dagster_dbt.asset_utils import get_asset_check_key_for_test

from orchestration import dbt_runner
from orchestration.project import DAILY_PARTITIONS, DBT_PROJECT, TRANSLATOR

BLOCKS: Mapping[str, tuple[str, ...]] = {
    "dbt_before_python": ("dbt_upstream_models", "dbt_daily_models", "dbt_models"),
    "dbt_after_python": ("dbt_daily_models_after_python", "dbt_models_after_python"),
}
# A run without the Python assets the second block reads (a job of dbt assets only, "materialize
# all" of the dbt assets): nothing has to run between the blocks, so all five steps are one.
ONE_BLOCK = "dbt_build"
ALL_OPS: tuple[str, ...] = tuple(op for ops in BLOCKS.values() for op in ops)
FAILED_STATUSES = {"error", "fail"}

_LOCK = threading.Lock()
# The shared invocation of each (run, block) in progress in this process.
_BUILDS: dict[tuple[str, str], BlockBuild] = {}


def block_of(
    op_name: str,
    context: AssetExecutionContext | None = None,
    definitions: Mapping[str, AssetsDefinition] | None = None,
) -> str | None:
    """The block `op_name` shares a build with in this run: ONE_BLOCK when the run has none of
    the Python assets the second block reads and runs all five steps whole, else its own."""
    if (
        op_name in ALL_OPS
        and context is not None
        and definitions is not None
        and not runs_python_assets_between(context, definitions)
        and is_whole_block(context, ONE_BLOCK, definitions)
    ):
        return ONE_BLOCK
    return next((block for block, ops in BLOCKS.items() if op_name in ops), None)


def runs_python_assets_between(
    context: AssetExecutionContext, definitions: Mapping[str, AssetsDefinition]
) -> bool:
    """Whether this run materializes an asset the second block reads that no dbt step makes
    (ml.churn_scores, ml.clv_scores: Python assets; or anything else outside dbt)."""
    dbt_keys = {key for definition in definitions.values() for key in definition.keys}
    read = {
        key
        for op in BLOCKS["dbt_after_python"]
        if op in definitions
        for key in definitions[op].dependency_keys
    }
    return bool((read - dbt_keys) & set(context.job_def.asset_layer.selected_asset_keys))


def runs_only_the_block(context: AssetExecutionContext, block: str) -> bool:
    """Whether the run's steps are all dbt steps of `block`: then the only steps that can run
    while dbt is still building are the block's, which read the same stream."""
    names = {node.name for node in context.job_def.graph.nodes}
    return names <= set(block_ops(block))


def block_ops(block: str) -> tuple[str, ...]:
    return ALL_OPS if block == ONE_BLOCK else BLOCKS[block]


def present_ops(context: AssetExecutionContext, block: str) -> list[str]:
    """The block's ops in this run's job, in run order."""
    names = {node.name for node in context.job_def.graph.nodes}
    return [op for op in block_ops(block) if op in names]


def is_whole_block(
    context: AssetExecutionContext, block: str, definitions: Mapping[str, AssetsDefinition]
) -> bool:
    """Whether this run executes every asset and check of each of the block's ops it has. A
    run's job is already the subset it selected (its asset layer holds the subset definitions),
    so comparing with the full definitions covers asset and check selections."""
    run = context.run
    layer = context.job_def.asset_layer
    for op in present_ops(context, block):
        # A re-execution runs some steps only.
        if run.step_keys_to_execute is not None and op not in run.step_keys_to_execute:
            return False
        in_job = layer.get_assets_def_for_node(NodeHandle(op, None))
        full = definitions.get(op)
        if in_job is None or full is None:
            return False
        if in_job.asset_and_check_keys != full.asset_and_check_keys:
            return False
    return True


def run_window(context: AssetExecutionContext) -> tuple[date, date] | None:
    """The run's business days [start, end) from its partition tags (a block's unpartitioned
    steps have no partition of their own), or None for a run without partitions."""
    tags = context.run.tags
    first = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
    last = tags.get("dagster/asset_partition_range_end") or tags.get("dagster/partition")
    if not first or not last:
        return None
    start = DAILY_PARTITIONS.time_window_for_partition_key(first).start.date()
    end = DAILY_PARTITIONS.time_window_for_partition_key(last).end.date()
    return start, end


def wants_full_refresh(context: AssetExecutionContext, ops: Sequence[str]) -> bool:
    configs = (context.run.run_config or {}).get("ops", {})
    return any(configs.get(op, {}).get("config", {}).get("full_refresh") for op in ops)


def node_owners(
    unique_ids: Sequence[str],
    ops: Sequence[str],
    node_names: Mapping[str, Sequence[str]],
    definitions: Mapping[str, AssetsDefinition],
    manifest: Mapping[str, Any],
) -> dict[str, str]:
    """Which step reports each node dbt will run: a model, seed or snapshot its multi-asset's;
    a test the step whose multi-asset has its asset check, else the last step holding one of
    its parents (the test runs after all of them)."""
    op_of_name = {name: op for op in ops for name in node_names.get(op, ())}
    op_of_check = {key: op for op in ops for key in definitions[op].check_keys}
    owners: dict[str, str] = {}
    for unique_id in unique_ids:
        node = manifest["nodes"].get(unique_id, {})
        if not unique_id.startswith("test."):
            owners[unique_id] = op_of_name.get(node.get("name", ""), ops[-1])
            continue
        check = get_asset_check_key_for_test(manifest, TRANSLATOR, unique_id, DBT_PROJECT)
        if check is not None and check in op_of_check:
            owners[unique_id] = op_of_check[check]
            continue
        parents = [
            op_of_name[manifest["nodes"][parent]["name"]]
            for parent in node.get("depends_on", {}).get("nodes", [])
            if parent in manifest["nodes"] and manifest["nodes"][parent]["name"] in op_of_name
        ]
        owners[unique_id] = max(parents, key=ops.index) if parents else ops[-1]
    return owners


def candidates(
    ops: Sequence[str], node_names: Mapping[str, Sequence[str]], manifest: Mapping[str, Any]
) -> list[str]:
    """The block's models, seeds and snapshots, and every test on one of them: a superset of
    what `dbt build` runs (which tests run is dbt's indirect selection), so every node event
    finds its step without asking dbt first."""
    names = {name for op in ops for name in node_names.get(op, ())}
    nodes = [
        unique_id
        for unique_id, node in manifest["nodes"].items()
        if unique_id.startswith(("model.", "seed.", "snapshot.")) and node["name"] in names
    ]
    selected = set(nodes)
    tests = [
        unique_id
        for unique_id, node in manifest["nodes"].items()
        if unique_id.startswith("test.")
        and selected & set(node.get("depends_on", {}).get("nodes", []))
    ]
    return nodes + tests


def is_built(unique_id: str, manifest: Mapping[str, Any]) -> bool:
    """A model, seed or snapshot `dbt build` executes (ephemeral models are inlined)."""
    node = manifest["nodes"].get(unique_id, {})
    return unique_id.startswith(("model.", "seed.", "snapshot.")) and (
        node.get("config", {}).get("materialized") != "ephemeral"
    )


@dataclass
class BlockBuild:
    """A block's shared dbt invocation and where each of its events goes."""

    invocation: dbt_runner.Invocation
    stream: Iterator[dict[str, Any]]
    owners: dict[str, str]
    ops: list[str]
    # The models, seeds and snapshots each step must see finish.
    built: dict[str, set[str]] = field(default_factory=dict)
    buffered: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    failed: dict[str, list[str]] = field(default_factory=dict)
    exhausted: bool = False
    # Every node (models, seeds, snapshots and their tests) each step reports: dbt fires
    # NodeFinished last for each node it runs, skipped ones included.
    reported: dict[str, set[str]] = field(default_factory=dict)
    # ops.data_quality_results rows of the steps that returned while dbt was still running:
    # written once dbt has closed the warehouse.
    pending_rows: list[dict[str, Any]] = field(default_factory=list)

    def expected(self, op: str) -> set[str]:
        return self.built.get(op, set())

    def _pull(self) -> dict[str, Any] | None:
        try:
            event = next(self.stream)
        except StopIteration:
            self.exhausted = True
            return None
        info = event.get("info", {})
        node = event.get("data", {}).get("node_info") or {}
        unique_id = node.get("unique_id")
        if unique_id and info.get("name") == "NodeFinished":
            self.finished.add(unique_id)
            if node.get("node_status") in FAILED_STATUSES:
                owner = self.owners.get(unique_id, self.ops[-1])
                self.failed.setdefault(owner, []).append(unique_id)
        return event

    def drain(self) -> None:
        """Pull dbt's stream to its end (dbt has exited and released the warehouse)."""
        while not self.exhausted and self._pull() is not None:
            pass

    def has_reported(self, op: str) -> bool:
        """Whether every node of `op` dbt could run has finished (False when it has none)."""
        nodes = self.reported.get(op)
        return bool(nodes) and nodes <= self.finished

    def events_for(self, op: str, until_own_nodes_finish: bool = False) -> Iterator[dict[str, Any]]:
        """`op`'s node events as they come, pulling dbt's stream until dbt exits, or, with
        `until_own_nodes_finish`, until all of `op`'s nodes have finished (a node dbt does not
        run keeps the step to dbt's exit); other steps' events are kept for them."""
        yield from self.buffered.pop(op, [])
        while not self.exhausted:
            if until_own_nodes_finish and self.has_reported(op):
                return
            event = self._pull()
            if event is None:
                break
            unique_id = (event.get("data", {}).get("node_info") or {}).get("unique_id")
            if not unique_id:
                continue
            owner = self.owners.get(unique_id, op)
            if owner == op:
                yield event
            else:
                self.buffered.setdefault(owner, []).append(event)


def start_block(
    key: tuple[str, str],
    ops: list[str],
    args: list[str],
    target: Path,
    manifest_json: Path,
    node_names: Mapping[str, Sequence[str]],
    definitions: Mapping[str, AssetsDefinition],
    manifest: Mapping[str, Any],
) -> BlockBuild:
    """Start the block's `dbt build` (once per run and block) and map its nodes to steps."""
    with _LOCK:
        if key in _BUILDS:
            return _BUILDS[key]
        nodes = candidates(ops, node_names, manifest)
        owners = node_owners(nodes, ops, node_names, definitions, manifest)
        built: dict[str, set[str]] = {}
        reported: dict[str, set[str]] = {}
        for unique_id in nodes:
            if is_built(unique_id, manifest):
                built.setdefault(owners[unique_id], set()).add(unique_id)
            if unique_id.startswith("test.") or is_built(unique_id, manifest):
                reported.setdefault(owners[unique_id], set()).add(unique_id)
        invocation, stream = dbt_runner.invoke(args, target, manifest_json)
        build = BlockBuild(
            invocation=invocation,
            stream=stream,
            owners=owners,
            ops=ops,
            built=built,
            reported=reported,
        )
        _BUILDS[key] = build
        return build


def finish_block(key: tuple[str, str]) -> None:
    with _LOCK:
        _BUILDS.pop(key, None)
