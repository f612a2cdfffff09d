"""The landing files as observable source assets, and dbt source freshness as asset checks."""

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSpec,
    DataVersion,
    ObserveResult,
    multi_asset_check,
    multi_observable_source_asset,
)

from orchestration import dbt_blocks, dbt_runner
from orchestration.dbt_assets import scoped_environ, step_env
from orchestration.project import load_manifest, manifest_path
from orchestration.resources import Warehouse
from userops.quality.results import CheckRow, write_quality_results
from userops.quality.settings import landing_format

LANDING_TABLES = ("users", "events", "orders", "order_items", "marketing_spend")
# The operations-loop tables (docs/operations_loop.md): observed like the others; their rules
# are the quarantine rules of their base models (no Great Expectations suite of their own).
OPS_LANDING_TABLES = (
    "contact_preferences",
    "deliveries",
    "experiment_exposures",
    "feedback",
    "service_tickets",
)
MANDATORY_TABLES = ("orders",)
DAY_FOLDER = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")


def landing_files(landing_dir: Path, table: str) -> list[Path]:
    return sorted((Path(landing_dir) / table).glob(f"*/*.{landing_format()}"))


def listing_version(landing_dir: Path, files: list[Path]) -> str:
    """Data version of a table: hash of its file listing (path, size, modification time)."""
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(
            f"{file.relative_to(landing_dir)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()[:16]


def latest_day(files: list[Path]) -> str | None:
    days = [match.group(1) for file in files if (match := DAY_FOLDER.match(file.parent.name))]
    return max(days) if days else None


@multi_observable_source_asset(
    specs=[
        AssetSpec(
            key=["landing", table],
            group_name="landing",
            description=f"Landing files of `{table}` (<landing dir>/{table}/dt=YYYY-MM-DD/*), "
            "read in place by dbt. Observed: file count, latest load day, listing hash.",
        )
        for table in (*LANDING_TABLES, *OPS_LANDING_TABLES)
    ],
    name="landing_files",
)
def landing_files_observation(warehouse: Warehouse) -> Iterator[ObserveResult]:
    landing_dir = warehouse.landing_path()
    for table in (*LANDING_TABLES, *OPS_LANDING_TABLES):
        files = landing_files(landing_dir, table)
        yield ObserveResult(
            asset_key=["landing", table],
            data_version=DataVersion(listing_version(landing_dir, files)),
            metadata={
                "file_count": len(files),
                "latest_partition": latest_day(files) or "",
                "bytes": sum(file.stat().st_size for file in files),
            },
        )


def freshness_tables() -> list[str]:
    """Landing tables with a dbt freshness config (order_items opts out in the sources YAML)."""
    return [
        source["name"]
        for source in load_manifest().get("sources", {}).values()
        if source["source_name"] == "landing"
        and (source.get("freshness") or {}).get("error_after")
        and (source["freshness"]["error_after"] or {}).get("count")
    ]


def freshness_result(table: str, result: dict[str, Any] | None, has_files: bool) -> CheckRow:
    """Grade one table's `dbt source freshness` result (pass / warn / error / runtime error)."""
    if not has_files:
        mandatory = table in MANDATORY_TABLES
        return CheckRow(
            passed=not mandatory,
            severity="error" if mandatory else "warn",
            observed_value=None,
            message=f"no landing files for {table}"
            + (" (mandatory table)" if mandatory else " (optional table, nothing to judge)"),
        )
    if result is None:
        return CheckRow(False, "error", None, f"dbt source freshness returned nothing for {table}")
    status = result.get("status")
    age = result.get("max_loaded_at_time_ago_in_s")
    hours = round(float(age) / 3600, 1) if isinstance(age, int | float) else None
    criteria = result.get("criteria") or {}
    message = (
        f"{table}: newest row loaded at {result.get('max_loaded_at')} ({hours} h ago); "
        f"warn after {criteria.get('warn_after')}, error after {criteria.get('error_after')}"
        if status in ("pass", "warn", "error")
        else f"{table}: dbt source freshness {status}: {result.get('message')}"
    )
    return CheckRow(
        passed=status == "pass",
        severity="warn" if status in ("pass", "warn") else "error",
        observed_value=hours,
        message=message,
    )


def build_freshness_check() -> Any:
    tables = freshness_tables()
    if not tables:
        return None

    @multi_asset_check(
        specs=[
            AssetCheckSpec(
                "dbt_source_freshness",
                asset=["landing", table],
                description="dbt source freshness (loaded_at_field, warn_after / error_after in "
                "_landing__sources.yml); never blocks.",
            )
            for table in tables
        ],
        name="landing_source_freshness",
    )
    def landing_source_freshness(
        context: AssetCheckExecutionContext, warehouse: Warehouse
    ) -> Iterator[AssetCheckResult]:
        landing_dir = warehouse.landing_path()
        target = manifest_path().parent / "runs" / "source_freshness"
        present = [table for table in tables if landing_files(landing_dir, table)]
        by_table: dict[str, dict[str, Any]] = {}
        if present:
            selection = " ".join(f"source:landing.{table}" for table in present)
            # As a dbt build step: the code location's parse and environment (dbt_assets).
            args = ["source", "freshness", "--select", selection]
            sources_json = target / "sources.json"
            # A failed run leaves no answer rather than the last run's.
            sources_json.unlink(missing_ok=True)
            # The run's window, as its dbt build steps have it: freshness does not use it, but
            # the same environment reuses their parse of the project (~2 s on the demo).
            with scoped_environ(step_env(warehouse, dbt_blocks.run_window(context))):
                _, raw_events = dbt_runner.invoke(args, target, manifest_path())
                for _ in raw_events:
                    pass
            results = json.loads(sources_json.read_text()) if sources_json.exists() else {}
            for result in results.get("results", []):
                by_table[result["unique_id"].rsplit(".", 1)[-1]] = result
        rows = []
        for table in tables:
            graded = freshness_result(table, by_table.get(table), table in present)
            rows.append(
                graded.as_row(context.run.run_id, f"landing/{table}", "dbt_source_freshness")
            )
            yield AssetCheckResult(
                asset_key=["landing", table],
                check_name="dbt_source_freshness",
                passed=graded.passed,
                severity=AssetCheckSeverity.WARN
                if graded.severity == "warn"
                else AssetCheckSeverity.ERROR,
                metadata={"message": graded.message, "age_hours": graded.observed_value},
                description=graded.message,
            )
        write_quality_results(warehouse.warehouse_path(), rows)

    return landing_source_freshness
