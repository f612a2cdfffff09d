"""Resources: where the landing files and the warehouse are.

Both come from USEROPS_LANDING_DIR / USEROPS_DUCKDB_PATH, read when a step runs (not at import),
because dbt's profile and landing source read the same variables: Python checks and dbt always
look at the same files.
"""

from __future__ import annotations

from functools import cached_property
from importlib.metadata import version as package_version
from pathlib import Path

from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource
from packaging import version

from orchestration.project import DBT_PROJECT
from userops.dbt import dbt_executable
from userops.paths import PROJECT_DIR, default_landing_dir, default_warehouse_path


class Warehouse(ConfigurableResource):
    """Landing folder and DuckDB file of the current environment."""

    def landing_path(self) -> Path:
        return default_landing_dir()

    def warehouse_path(self) -> Path:
        return default_warehouse_path()


class VenvDbtCliResource(DbtCliResource):
    """DbtCliResource for the dbt installed next to this interpreter: its version is the
    dbt-core package's. dagster-dbt asks the executable (`dbt --version`, a second dbt process
    per run that costs 3-10 s on two busy cores)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if self.dbt_executable == dbt_executable() and Path(self.dbt_executable).is_absolute():
            return version.parse(package_version("dbt-core"))
        return super()._cli_version


def default_resources() -> dict[str, object]:
    return {
        # The venv's dbt, which need not be on PATH (e.g. `.venv/bin/dagster dev`).
        "dbt": VenvDbtCliResource(
            project_dir=DBT_PROJECT,
            profiles_dir=str(PROJECT_DIR),
            dbt_executable=dbt_executable(),
        ),
        "warehouse": Warehouse(),
    }
