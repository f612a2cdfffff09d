"""Where things live. The repository root is the dbt project; data defaults sit under data/."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]


def default_landing_dir() -> Path:
    return Path(os.environ.get("USEROPS_LANDING_DIR", PROJECT_DIR / "data" / "landing")).resolve()


def default_warehouse_path() -> Path:
    default = PROJECT_DIR / "data" / "warehouse" / "userops.duckdb"
    return Path(os.environ.get("USEROPS_DUCKDB_PATH", default)).resolve()
