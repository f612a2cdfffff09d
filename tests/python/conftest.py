"""Shared fixtures: one small generated data set and one dbt build of it per test session."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from userops.dbt import run_dbt
from userops.generate import generate

SAMPLE_END_DATE = date(2026, 6, 30)
PROJECT_DIR = Path(__file__).resolve().parents[2]
SHARED_DIR = PROJECT_DIR.parent / "shared"
ONLINE_RETAIL_INVOICES = SHARED_DIR / "data" / "online_retail" / "invoices.csv"
# 3,722 of the log's 25,943 rows (14.3 %) have no customer and 31 are duplicates: 14.5 % of the
# rows are quarantined, above the default dq_max_null_required_share (5 %) and
# dq_max_quarantined_share (10 %), so the quarantine gate fails a build with the defaults. A
# known property of this log, accepted for it as README says.
ONLINE_RETAIL_VARS = {"dq_max_null_required_share": 0.15, "dq_max_quarantined_share": 0.15}


@dataclass(frozen=True)
class Build:
    landing_dir: Path
    warehouse_path: Path
    result: subprocess.CompletedProcess[str]
    injected_defects: dict[str, dict[str, int]]


@pytest.fixture(scope="session")
def sample_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    generate(
        root / "landing", users=400, days=45, end_date=SAMPLE_END_DATE, seed=7, bad_row_share=0.02
    )
    return root / "landing"


@pytest.fixture(scope="session")
def sample_build(sample_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Build:
    work = tmp_path_factory.mktemp("sample_build")
    warehouse = work / "warehouse.duckdb"
    result = run_dbt(
        ["build"],
        landing_dir=sample_landing,
        warehouse_path=warehouse,
        capture=True,
        target_path=work / "target",
    )
    defects_file = sample_landing.parent / "ground_truth" / "injected_defects.json"
    return Build(sample_landing, warehouse, result, json.loads(defects_file.read_text()))


@pytest.fixture(scope="session")
def retail_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The real online-retail log imported with the bundled mapping and built (orders only)."""
    if not ONLINE_RETAIL_INVOICES.exists():
        pytest.skip(f"{ONLINE_RETAIL_INVOICES} not present")
    from userops.importer import import_data

    work = tmp_path_factory.mktemp("online_retail")
    report = import_data(
        ONLINE_RETAIL_INVOICES,
        PROJECT_DIR / "userops" / "mappings" / "online_retail.yml",
        work / "landing",
        fallback_date=date(2026, 1, 1),
    )
    assert report.rows_read == report.rows_written["orders"] == 25_943
    result = run_dbt(
        ["build"],
        landing_dir=work / "landing",
        warehouse_path=work / "warehouse.duckdb",
        dbt_vars=ONLINE_RETAIL_VARS,
        capture=True,
        target_path=work / "target",
    )
    return Build(work / "landing", work / "warehouse.duckdb", result, {})
