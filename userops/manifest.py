"""The dbt manifest Dagster loads its asset graph from (`dbt parse`, no database work)."""

from __future__ import annotations

import os
from pathlib import Path

from userops.dbt import run_dbt
from userops.paths import PROJECT_DIR, default_landing_dir, default_warehouse_path

DEFAULT_TARGET = PROJECT_DIR / "target" / "dagster"


def dagster_target_path() -> Path:
    """Where the Dagster code location's manifest lives: $USEROPS_DBT_TARGET_PATH or
    target/dagster (its own folder, so ad-hoc dbt runs in target/ don't replace it mid-load)."""
    return Path(os.environ.get("USEROPS_DBT_TARGET_PATH", DEFAULT_TARGET)).resolve()


def prepare_manifest(target_path: Path | None = None) -> Path:
    """Run `dbt parse` into target_path and return manifest.json; raises with dbt's output."""
    target_path = Path(target_path or dagster_target_path()).resolve()
    result = run_dbt(
        ["parse", "--quiet"],
        landing_dir=default_landing_dir(),
        warehouse_path=default_warehouse_path(),
        capture=True,
        target_path=target_path,
    )
    manifest = target_path / "manifest.json"
    if result.returncode != 0 or not manifest.exists():
        raise RuntimeError(f"dbt parse failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return manifest


def main() -> None:
    print(prepare_manifest())


if __name__ == "__main__":
    main()
