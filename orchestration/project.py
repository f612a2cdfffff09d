"""The dbt project as Dagster sees it: manifest, day partitions, and the split of dbt nodes into
the multi-assets the graph needs.

Day-partitioned models (materialized='incremental') must run between the unpartitioned models
they read and the unpartitioned models that read them, and dbt models that read tables written
by Python assets (dbt sources other than `landing`, e.g. ml.churn_scores) must run after those
assets. One multi-asset is one step, so the nodes are split into five ordered groups computed
from the manifest: upstream -> daily -> main -> daily_after_python -> after_python, where
daily_after_python holds the incremental models fed by Python assets (the tags read churn
scores) and the models between those assets and them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from dagster import AssetKey, DailyPartitionsDefinition
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject
from dagster_dbt.dbt_project import using_dagster_dev

from userops.manifest import dagster_target_path, prepare_manifest
from userops.paths import PROJECT_DIR
from userops.quality.settings import dbt_var

LANDING_SOURCE = "landing"
NODE_TYPES = ("model", "seed", "snapshot")

DBT_PROJECT = DbtProject(
    project_dir=PROJECT_DIR, target_path=dagster_target_path(), profiles_dir=PROJECT_DIR
)
# Under `dagster dev` the project is re-parsed on every load, so edits show up. Not with
# DBT_PROJECT.prepare_if_dev(): dagster-dbt's preparer runs the `dbt` on PATH, and `make dagster`
# starts `.venv/bin/dagster` with no venv on PATH; prepare_manifest runs the venv's dbt.
if using_dagster_dev():
    prepare_manifest(dagster_target_path())

BUSINESS_TIMEZONE: str = dbt_var("business_timezone")


class DailyPartitions(DailyPartitionsDefinition):
    """Dagster's daily partitions, with the list of keys kept until a new day's partition
    appears. Dagster lists every key again each time a step reads partitioned assets as a
    whole (its data-version lookup, only to count them): ~6,500 days since 2009 took 0.1 s per
    list, 21 lists (2.1 s) in one day run of the dbt assets. Equal to the plain definition."""

    def get_partition_keys(
        self,
        current_time: datetime | None = None,
        dynamic_partitions_store: Any = None,
    ) -> Sequence[str]:
        with partition_loading_context(current_time, dynamic_partitions_store):
            last = self._get_last_partition_window(self._get_current_timestamp())
        if last is None:
            return []
        key = (self, last.start.timestamp())
        keys = _PARTITION_KEYS.get(key)
        if keys is None:
            keys = tuple(super().get_partition_keys(current_time, dynamic_partitions_store))
            _PARTITION_KEYS.clear()  # only the current day's list is ever asked for again
            _PARTITION_KEYS[key] = keys
        return list(keys)


_PARTITION_KEYS: dict[tuple[DailyPartitions, float], tuple[str, ...]] = {}
DAILY_PARTITIONS = DailyPartitions(
    start_date=str(dbt_var("daily_partitions_start")), timezone=BUSINESS_TIMEZONE
)


def manifest_path() -> Path:
    """manifest.json, parsed first if absent, so loading the code location needs no manual step."""
    path = Path(DBT_PROJECT.manifest_path)
    if not path.exists():
        prepare_manifest(path.parent)
    return path


@cache
def load_manifest() -> dict[str, Any]:
    return json.loads(manifest_path().read_text())


class UseropsTranslator(DagsterDbtTranslator):
    """Keys: a model's, seed's or snapshot's key is its name (dagster-dbt would prefix the
    custom schema, e.g. marts/users; Python assets depend on AssetKey([model_name])); a landing
    source's key is [landing, table]; sources written by Python assets (e.g. ml.churn_scores)
    point at those assets' keys ([table]).
    Groups follow the folders: landing, seeds, staging, intermediate, marts_<domain>."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        resource_type = dbt_resource_props["resource_type"]
        if resource_type in NODE_TYPES:
            return AssetKey([dbt_resource_props["name"]])
        if resource_type == "source" and dbt_resource_props["source_name"] != LANDING_SOURCE:
            return AssetKey([dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        resource_type = dbt_resource_props["resource_type"]
        if resource_type == "seed":
            return "seeds"
        if resource_type == "snapshot":
            return "snapshots"
        fqn = dbt_resource_props.get("fqn", [])
        if resource_type == "model" and len(fqn) > 2:
            return fqn[1] if fqn[1] != "marts" or len(fqn) < 4 else f"marts_{fqn[2]}"
        return super().get_group_name(dbt_resource_props)


TRANSLATOR = UseropsTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dataclass(frozen=True)
class NodeGroups:
    """dbt node names per multi-asset, in run order."""

    upstream: tuple[str, ...]
    daily: tuple[str, ...]
    main: tuple[str, ...]
    daily_after_python: tuple[str, ...]
    after_python: tuple[str, ...]


def _closure(start: Iterable[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        for neighbour in edges.get(stack.pop(), set()):
            if neighbour not in seen:
                seen.add(neighbour)
                stack.append(neighbour)
    return seen


def split_nodes(manifest: Mapping[str, Any]) -> NodeGroups:
    """Split models, seeds and snapshots into the five ordered groups (see module docstring)."""
    nodes = {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in NODE_TYPES
    }
    parents: dict[str, set[str]] = {}
    children: dict[str, set[str]] = {}
    for unique_id, node in nodes.items():
        for parent in node.get("depends_on", {}).get("nodes", []):
            if parent in nodes or parent in manifest.get("sources", {}):
                parents.setdefault(unique_id, set()).add(parent)
                children.setdefault(parent, set()).add(unique_id)
    python_sources = [
        unique_id
        for unique_id, source in manifest.get("sources", {}).items()
        if source["source_name"] != LANDING_SOURCE
    ]
    # Everything that reads a Python asset's output, directly or not, runs after those assets.
    python_fed = _closure(python_sources, children)
    incremental = {
        unique_id
        for unique_id, node in nodes.items()
        if node["resource_type"] == "model"
        and node.get("config", {}).get("materialized") == "incremental"
    }
    before = incremental - python_fed
    ancestors = _closure(before, parents)
    daily = before | (ancestors & _closure(before, children))
    upstream = (ancestors - daily - python_fed) & nodes.keys()
    main = nodes.keys() - upstream - daily - python_fed
    # Python-fed incremental models, with what they read among the Python-fed nodes (views
    # such as int_churn_scores_dated: partition-agnostic, and needed before them in the step).
    after = incremental & python_fed
    daily_after_python = after | (_closure(after, parents) & python_fed)
    after_python = python_fed - daily_after_python

    def names(ids: set[str]) -> tuple[str, ...]:
        return tuple(sorted(nodes[unique_id]["name"] for unique_id in ids & nodes.keys()))

    return NodeGroups(
        names(upstream), names(daily), names(main), names(daily_after_python), names(after_python)
    )


def landing_tables(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The landing sources as declared in _landing__sources.yml (via the manifest)."""
    return sorted(
        (
            source
            for source in manifest.get("sources", {}).values()
            if source["source_name"] == LANDING_SOURCE
        ),
        key=lambda source: source["name"],
    )


def landing_key(table: str) -> AssetKey:
    return AssetKey([LANDING_SOURCE, table])


def mart_models(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(schema, name) of the models under models/marts/ that are relations (not ephemeral):
    the tables the mart quality suites look at."""
    return sorted(
        (node["schema"], node["name"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node.get("fqn", [None, None])[1] == "marts"
        and node.get("config", {}).get("materialized") != "ephemeral"
    )
