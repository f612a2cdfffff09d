"""Resources: where the landing files and the warehouse are. (dbt itself runs in the run's
process, orchestration/dbt_runner.py: no dbt resource, no dbt executable to find.)

Both come from USEROPS_LANDING_DIR / USEROPS_DUCKDB_PATH, read when a step runs (not at import),
because dbt's profile and landing source read the same variables: Python checks and dbt always
look at the same files.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from userops.paths import default_landing_dir, default_warehouse_path


class Warehouse(ConfigurableResource):
    """Landing folder and DuckDB file of the current environment."""

    def landing_path(self) -> Path:
        return default_landing_dir()

    def warehouse_path(self) -> Path:
        return default_warehouse_path()


def default_resources() -> dict[str, object]:
    return {
        "warehouse": Warehouse(),
    }
